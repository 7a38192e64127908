package campaign

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/results"
	"github.com/simswarm/simswarm/internal/sweep"
	"github.com/simswarm/simswarm/internal/units"
)

// dryRun prints the runs a campaign would execute and those already done.
// It streams: each line is made and written in turn, so a campaign of any
// size prints in bounded memory, and an interrupt stops it at the next line.
func (c *Client) dryRun(ctx context.Context, p *prepared) (*Summary, error) {
	n := p.runs.Len()
	sum := &Summary{Campaign: p.id, Runs: n, Results: p.results, Failures: []Failure{}}
	out := bufio.NewWriterSize(c.Opt.Stdout, 64<<10)
	defer out.Flush()
	for _, pr := range p.projects {
		fmt.Fprintf(out, "project %s\t%s\t%s\n", pr.Dir, buildState(pr.Build), pr.Root)
	}
	if p.artifact == "" && p.cmd.Kind == simswarm.KindOmnetpp && p.runs.Len() == 0 {
		// Nothing to list without the build, and a dry run builds nothing.
		fmt.Fprintf(out, "campaign of %s in %s: its runs are listed by the built program, and %s has no build on this engine yet (%s); run without --dry-run to build it\n",
			describe(p.cmd), p.proj.Workdir, p.proj.Root, c.coldBuild(p.proj, p.snapshot))
		return sum, nil
	}
	size := fmt.Sprint(n)
	if p.cmd.Kind == simswarm.KindTemplate && p.cmd.Filter == "" {
		size = sweep.Size(p.cmd).String()
	}
	runs := size + " runs"
	if size == "1" {
		runs = "1 run"
	}
	fmt.Fprintf(out, "campaign %s: %s of %s in %s\n", p.id, runs, describe(p.cmd), p.proj.Workdir)
	if err := c.Opt.tooMany(bigOf(size), "this campaign"); err != nil {
		fmt.Fprintf(out, "(simswarm run would refuse it: %v)\n", err)
	}
	// A campaign never submitted has no outcomes to look up.
	_, known, _ := c.Eng.Campaign(ctx, p.id)
	var why *reasons
	own := loadOwners(p.results)
	if len(p.runs.idents) > 0 {
		why = c.reasons(ctx, p)
	}
	// Template runs name their files by run number (their console output
	// always run-#N.out), so what the same number left says what a run
	// replaces; OMNeT++ names them by variables and repetition.
	var last map[int]*results.Provenance
	if p.cmd.Kind == simswarm.KindTemplate {
		last = lastWriters(p.id, own)
	}
	hist := openHistory(c.Opt.StateDir, p.proj.Name())
	var todo []int // positions that would run, for the estimate
	for i := 0; i < n; i++ {
		select {
		case <-c.Opt.Interrupt:
			out.Flush()
			return sum, ErrInterrupted
		case <-ctx.Done():
			return sum, ctx.Err()
		default:
		}
		run := p.runs.Run(i)
		state := "would run"
		if why != nil {
			// Known by what it computes: done wherever it was done.
			state = why.state(ctx, i)
			if state == "done" {
				sum.Cached++
			}
		} else {
			state = "would run (new)"
			if known {
				if rec, ok, err := c.Eng.RunStatus(ctx, p.id, run); err == nil && ok {
					state = rerun(p.results, own, rec)
				}
			}
			if state == "done" {
				sum.Cached++
			}
		}
		if w := last[run]; state != "done" && w != nil && !strings.Contains(state, w.Campaign) {
			state += fmt.Sprintf("; replaces %s of campaign %s", strings.Join(w.Files, ", "), w.Campaign)
		}
		if state != "done" && len(todo) < estimateMax {
			todo = append(todo, i)
		}
		if _, err := fmt.Fprintf(out, "run %d\t%s\t%s\n", run, state, p.runs.Vars(i)); err != nil {
			return sum, err
		}
	}
	fmt.Fprintf(out, "%d would run, %d already done\n", n-sum.Cached, sum.Cached)
	slots, where := c.Opt.EstimateSlots, "the "+strconv.Itoa(c.Opt.EstimateSlots)+" slots asked for"
	if slots == 0 {
		slots, where = c.slots(ctx), "the runners' slots"
	}
	if len(todo) > 0 && len(todo) < estimateMax {
		sum.Estimate = estimate(hist, p, todo, slots)
		switch e := sum.Estimate; {
		case slots == 0:
			fmt.Fprintln(out, "expected wall time: unknown (no runner is connected)")
		case e == nil:
			fmt.Fprintln(out, "expected wall time: unknown (no earlier run of this campaign was timed)")
		default:
			fmt.Fprintf(out, "expected wall time: %s on %s (%s; %d of %s timed before, the others taken as their mean; longest run %s, lower bound %s)\n",
				seconds(e.Seconds), units.Count(e.Slots, "slot"), where, e.Known, units.Count(e.Runs, "run"), seconds(e.Longest), seconds(e.Lower))
		}
	}
	return sum, nil
}

// rerun says whether a run with an outcome in this campaign is done or
// why it would run again.
func rerun(dir string, own *results.ProvenanceIndex, rec *simswarm.RunRecord) string {
	switch rec.State {
	case simswarm.RunSucceeded:
		if other := replacedBy(dir, own, rec); other != "" {
			return "would run again: its files were replaced by campaign " + other
		}
		if !present(dir, rec) && !own.Holds(rec.Key) {
			return "would run again: its results are no longer in " + dir
		}
		return "done"
	case simswarm.RunFailed:
		return "would run again: it failed before (" + (&Failure{Exit: rec.Exit, Signal: rec.Signal, TimedOut: rec.TimedOut, Reason: rec.Reason}).Describe() + ")"
	case simswarm.RunCancelled:
		return "would run again: it was cancelled"
	}
	return "would run: its job is still queued or running"
}

// lastWriters maps a run number to the provenance of the last run of
// another campaign that wrote files of that number in the results
// directory and still owns them: running this campaign's run of the same
// number replaces them (a directory holds one numbering).
func lastWriters(id string, own *results.ProvenanceIndex) map[int]*results.Provenance {
	out := map[int]*results.Provenance{}
	if own == nil {
		return out
	}
	for _, pr := range own.Records {
		if pr.Campaign == id {
			continue
		}
		var still []string
		for _, f := range pr.Files {
			if own.Owner(f) == pr {
				still = append(still, f)
			}
		}
		if len(still) > 0 {
			w := *pr
			w.Files = still
			out[pr.Run] = &w
		}
	}
	return out
}

// estimateMax bounds the runs --dry-run keeps for its estimate.
const estimateMax = 10_000_000

func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(100 * time.Millisecond).String()
}

// buildState says what a project's build came to, for --dry-run.
func buildState(b *BuildInfo) string {
	switch {
	case b == nil:
		return "not built"
	case b.Cached:
		return "built (cached " + b.ID + ")"
	default:
		return fmt.Sprintf("built now (%d files compiled in %.1fs, build %s)", b.Compiled, b.Seconds, b.ID)
	}
}
