package slurm

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/creds"
	"github.com/simswarm/simswarm/internal/engine"
)

// Pilots submits a campaign's pilot arrays as its engine's run queue asks
// for them, and cancels them. A wave is submitted when runs wait and none
// of the pilots submitted so far is alive: the first when the campaign's
// runs are queued, another only after the earlier pilots ended (their time
// ran out, they were cancelled, or they went idle before a later round).
// Whether pilots are alive comes from their heartbeats on the engine;
// squeue is asked at most every squeueEvery, only about pilots not yet
// heard from.
type Pilots struct {
	S        Settings
	D        Durations
	Limits   Limits
	URL      string // the engine address pilots dial
	Creds    creds.Creds
	Eng      *engine.Engine
	Log      *slog.Logger
	Progress io.Writer // a line per wave

	mu      sync.Mutex
	arrays  []string // every array submitted, for cancelling
	wave    []string // the arrays of the last wave
	asked   time.Time
	Submits int // sbatch calls that submitted
}

// squeueEvery bounds how often a client asks squeue: sites rate-limit
// Slurm's RPCs, and the heartbeats tell most of what squeue would.
const squeueEvery = 30 * time.Second

// Check asks sbatch whether it would take the pilots (sbatch --test-only),
// so that a bad account, partition or limit is refused before anything is
// built or queued.
func (p *Pilots) Check(ctx context.Context) error {
	args := append([]string{"--test-only"}, p.S.options(p.D)...)
	_, err := command(ctx, []byte("#!/bin/sh\ntrue\n"), "sbatch", args...)
	return err
}

// Run watches the run queue and submits waves until ctx ends. It returns
// the error of a wave of which Slurm took nothing: the campaign cannot run.
func (p *Pilots) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		work, err := p.work(ctx)
		if err != nil || work == 0 {
			continue
		}
		if p.alive(ctx) {
			continue
		}
		p.mu.Lock()
		recent := time.Since(p.asked) < squeueEvery
		waiting := len(p.wave) > 0
		p.mu.Unlock()
		if waiting && (recent || p.queued(ctx)) {
			continue
		}
		if err := p.submit(ctx, work); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// Start runs Run in the background; stop ends it and scancels every
// pilot submitted (within 10 s). fail gets the error Run ends with.
func (p *Pilots) Start(ctx context.Context, fail func(error)) (stop func()) {
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.Run(rctx); err != nil {
			fail(err)
		}
	}()
	return func() {
		cancel()
		<-done
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		if err := p.Cancel(cctx); err != nil {
			fmt.Fprintf(p.Progress, "slurm: cancel the pilots: %v\n", err)
		}
	}
}

// work is how many runs wait for a slot or are held by one.
func (p *Pilots) work(ctx context.Context) (int, error) {
	ds, err := p.Eng.Depths(ctx)
	if err != nil {
		return 0, err
	}
	for _, d := range ds {
		if d.Name == string(engine.QueueRun) {
			return int(d.Waiting) + d.Taken, nil
		}
	}
	return 0, nil
}

// alive says whether a pilot of this client's arrays is heard from.
func (p *Pilots) alive(ctx context.Context) bool {
	heard, err := p.Eng.Workers(ctx)
	if err != nil {
		return true // cannot tell: submit nothing
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range heard {
		if w.Role == simswarm.RoleRunner && w.Slurm != "" && slices.Contains(p.arrays, ArrayOf(w.Slurm)) {
			return true
		}
	}
	return false
}

// ArrayOf is the array job id of a pilot's job ("12_3" -> "12").
func ArrayOf(job string) string {
	a, _, _ := strings.Cut(job, "_")
	return a
}

// queued says whether squeue still lists a task of the last wave.
func (p *Pilots) queued(ctx context.Context) bool {
	p.mu.Lock()
	ids := strings.Join(p.wave, ",")
	p.asked = time.Now()
	p.mu.Unlock()
	out, err := command(ctx, nil, "squeue", "--noheader", "--format=%i", "--jobs="+ids)
	if err != nil {
		// Jobs purged from the controller's memory are "invalid": gone.
		p.Log.Info("slurm: squeue", "err", err)
		return false
	}
	return strings.TrimSpace(string(out)) != ""
}

// Size is how many pilots a wave of runs gets: never more cores than runs,
// at most MaxPilots and what the controller holds.
func (p *Pilots) Size(runs int) int {
	n := (runs + p.S.CPUs - 1) / p.S.CPUs
	return max(0, min(n, p.S.MaxPilots, p.Limits.MaxJobCount))
}

// submit sends one wave: arrays of at most MaxArraySize tasks. A chunk
// refused after others were taken leaves the wave smaller, and says so.
func (p *Pilots) submit(ctx context.Context, runs int) error {
	n := p.Size(runs)
	chunk := max(1, p.Limits.MaxArraySize)
	script := p.script()
	var ids []string
	var ranges []string
	for off := 0; off < n; off += chunk {
		k := min(chunk, n-off)
		args := append([]string{"--parsable", "--job-name=simswarm-pilot", fmt.Sprintf("--array=0-%d%%%d", k-1, k)}, p.S.options(p.D)...)
		if !p.hasOutput() {
			args = append(args, "--output=/dev/null")
		}
		out, err := command(ctx, []byte(script), "sbatch", args...)
		if err != nil {
			if len(ids) == 0 {
				return err
			}
			fmt.Fprintf(p.Progress, "slurm: %d of %d pilots submitted; the rest refused: %v\n", off, n, err)
			break
		}
		id, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";") // "id;cluster"
		ids = append(ids, id)
		ranges = append(ranges, fmt.Sprintf("%s[0-%d]", id, k-1))
	}
	p.mu.Lock()
	p.arrays = append(p.arrays, ids...)
	p.wave = ids
	p.asked = time.Now()
	p.Submits += len(ids)
	p.mu.Unlock()
	fmt.Fprintf(p.Progress, "slurm: submitted %d pilots of %d cores for %d runs (%s)\n", n, p.S.CPUs, runs, strings.Join(ranges, " "))
	return nil
}

func (p *Pilots) hasOutput() bool {
	for _, o := range p.S.Options {
		if strings.HasPrefix(o, "--output") || strings.HasPrefix(o, "-o") {
			return true
		}
	}
	return false
}

// Cancel scancels every pilot submitted; their runners hand back what they
// hold and end.
func (p *Pilots) Cancel(ctx context.Context) error {
	p.mu.Lock()
	ids := append([]string(nil), p.arrays...)
	p.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	_, err := command(ctx, nil, "scancel", ids...)
	return err
}

// script is a pilot's batch script: the site's prologue, the engine's
// credentials written to a private file on the node (no shared file system
// needed), then the runner in the shell's place, so that Slurm's signals
// reach it.
func (p *Pilots) script() string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# simswarm pilot: a runner taking runs from the engine at " + p.URL + "\n")
	for _, l := range p.S.Prologue {
		b.WriteString(l + "\n")
	}
	bin := p.S.Simswarm
	if bin == "" {
		bin, _ = os.Executable()
	}
	cache := `"${TMPDIR:-/tmp}/simswarm-runner"`
	if p.S.Cache != "" {
		cache = quote(p.S.Cache)
	}
	fmt.Fprintf(&b, "creds=\"${TMPDIR:-/tmp}/simswarm-pilot-$SLURM_JOB_ID.creds\"\n")
	fmt.Fprintf(&b, "(umask 077; cat > \"$creds\") <<'SIMSWARM_CREDS_END'\nuser = %q\npassword = %q\nSIMSWARM_CREDS_END\n", p.Creds.User, p.Creds.Password)
	fmt.Fprintf(&b, "exec %s runner --slurm --server %s --creds \"$creds\" --creds-remove --slots %d --cache %s --idle-exit %s --lost-exit %s --end-margin %s\n",
		quote(bin), quote(p.URL), p.S.CPUs, cache, p.D.IdleExit, p.D.LostExit, p.D.EndSignal)
	return b.String()
}

// quote makes s one word of sh.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Pilot is what a runner started by Slurm knows of its job.
type Pilot struct {
	Job  string    // "12_3" for task 3 of array 12, else the job id
	Node string    // SLURMD_NODENAME
	End  time.Time // when Slurm ends the job (zero: no limit known)
}

// Here describes the Slurm job this process runs in; ok is false outside
// one. The end time comes from SLURM_JOB_END_TIME (Slurm 23.02 and later),
// else from scontrol.
func Here(ctx context.Context) (Pilot, bool) {
	id := os.Getenv("SLURM_JOB_ID")
	if id == "" {
		return Pilot{}, false
	}
	p := Pilot{Job: id, Node: os.Getenv("SLURMD_NODENAME")}
	if a, t := os.Getenv("SLURM_ARRAY_JOB_ID"), os.Getenv("SLURM_ARRAY_TASK_ID"); a != "" && t != "" {
		p.Job = a + "_" + t
	}
	if s, err := strconv.ParseInt(os.Getenv("SLURM_JOB_END_TIME"), 10, 64); err == nil && s > 0 {
		p.End = time.Unix(s, 0)
	} else if out, err := command(ctx, nil, "scontrol", "show", "job", "--oneliner", id); err == nil {
		p.End = endTime(string(out), time.Now())
	}
	return p, true
}

// endTime reads EndTime= of scontrol's job line (the controller's local
// time). A job without a limit shows an end a year or more away: none.
func endTime(line string, now time.Time) time.Time {
	for _, f := range strings.Fields(line) {
		v, ok := strings.CutPrefix(f, "EndTime=")
		if !ok {
			continue
		}
		t, err := time.ParseInLocation("2006-01-02T15:04:05", v, time.Local)
		if err != nil || t.Sub(now) > 300*24*time.Hour {
			return time.Time{}
		}
		return t
	}
	return time.Time{}
}
