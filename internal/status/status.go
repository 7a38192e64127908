// Package status reads where an engine stands: its queues, its workers and
// its campaigns. `simswarm status` prints it; the dashboard serves it.
package status

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/simswarm/simswarm/internal/units"
	"io"
	"sort"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
)

// Queue is one kind of job.
type Queue = engine.Depth

// Campaign is a campaign with its run counts.
type Campaign struct {
	simswarm.Campaign
	Counts map[simswarm.RunState]int `json:"counts"` // by run state
}

// Report is the engine's state.
type Report struct {
	Queues    []Queue           `json:"queues"`
	Workers   []simswarm.Worker `json:"workers"`
	Campaigns []Campaign        `json:"campaigns"`
	Stored    uint64            `json:"stored_bytes"`
	// Usage is what is stored, by kind (object prefixes and records).
	Usage *engine.Usage `json:"usage,omitempty"`
}

// Collect reads the report. Campaigns are the most recent `recent`.
func Collect(ctx context.Context, eng *engine.Engine, recent int) (*Report, error) {
	r := &Report{}
	var err error
	if r.Queues, err = eng.Depths(ctx); err != nil {
		return nil, err
	}
	heard, err := eng.Workers(ctx)
	if err != nil {
		return nil, err
	}
	for _, h := range heard {
		r.Workers = append(r.Workers, h.Worker)
	}
	sort.Slice(r.Workers, func(a, b int) bool { return r.Workers[a].ID < r.Workers[b].ID })
	camps, err := eng.Campaigns(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(camps, func(a, b int) bool { return camps[a].Submitted.After(camps[b].Submitted) })
	if len(camps) > recent {
		camps = camps[:recent]
	}
	for _, c := range camps {
		sc := Campaign{Campaign: c, Counts: map[simswarm.RunState]int{}}
		seen := 0
		_ = eng.Each(ctx, engine.BucketStatus, c.ID+".*", func(_ string, b []byte) {
			var rec struct {
				State simswarm.RunState `json:"state"`
			}
			if json.Unmarshal(b, &rec) == nil {
				sc.Counts[rec.State]++
				seen++
			}
		})
		sc.Counts[simswarm.RunPending] = c.Runs - seen
		r.Campaigns = append(r.Campaigns, sc)
	}
	if n, err := eng.StoredBytes(ctx); err == nil {
		r.Stored = n
	}
	u, err := eng.StoreUsage(ctx)
	if err != nil {
		return nil, err
	}
	r.Usage = u
	return r, nil
}

// Print writes the report for people.
func (r *Report) Print(w io.Writer, now time.Time) {
	fmt.Fprintln(w, "QUEUE   WAITING  TAKEN")
	for _, q := range r.Queues {
		fmt.Fprintf(w, "%-7s %7d  %5d\n", q.Name, q.Waiting, q.Taken)
	}
	fmt.Fprintf(w, "\nWORKERS (%d)\n", len(r.Workers))
	for _, x := range r.Workers {
		load := fmt.Sprintf("%d/%d busy", x.Busy, x.Slots)
		switch {
		case x.Draining:
			load += ", draining"
		case x.Busy == 0:
			load = "idle, 1 slot"
			if x.Slots != 1 {
				load = fmt.Sprintf("idle, %d slots", x.Slots)
			}
		}
		pilot := ""
		if x.Slurm != "" {
			pilot = fmt.Sprintf("  slurm job %s on %s", x.Slurm, x.Host)
		}
		fmt.Fprintf(w, "%-8s %-28s %-16s v%s  seen %s ago  cache %s%s\n", x.Role, x.ID, load, x.Version,
			now.Sub(x.Seen).Round(time.Second), HumanBytes(x.CacheBytes), pilot)
	}
	fmt.Fprintf(w, "\nCAMPAIGNS (%d most recent)\n", len(r.Campaigns))
	for _, c := range r.Campaigns {
		fmt.Fprintf(w, "%s  %-9s %10s: %d succeeded, %d failed, %d running, %d pending  %s (%s)\n", c.ID, c.State, units.Count(c.Runs, "run"),
			c.Counts[simswarm.RunSucceeded], c.Counts[simswarm.RunFailed], c.Counts[simswarm.RunRunning], c.Counts[simswarm.RunPending],
			c.Project, c.Workdir)
	}
	fmt.Fprintf(w, "\nstored: %s\n", HumanBytes(int64(r.Stored)))
	if r.Usage != nil {
		r.printUsage(w)
	}
}

// printUsage shows what the store holds by kind, and its bound.
func (r *Report) printUsage(w io.Writer) {
	for _, k := range engine.Kinds {
		name := k + "/"
		if k == engine.KindRecords {
			name = k
		}
		u := r.Usage.Kinds[k]
		fmt.Fprintf(w, "  %-8s %7d  %10s\n", name, u.Count, HumanBytes(u.Bytes))
	}
	line := "  on disk  " + HumanBytes(r.Usage.Total)
	if r.Usage.Max > 0 {
		line += " of " + HumanBytes(r.Usage.Max) + " (--max-store)"
	}
	fmt.Fprintln(w, line)
}

// HumanBytes renders a size in binary units, as status and the dashboard
// show sizes.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
