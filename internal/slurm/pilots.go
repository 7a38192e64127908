package slurm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
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
// for them, a build job when a build waits and no builder is connected,
// and cancels them all at the end. The first wave goes when the
// campaign's runs are queued; when pilots end (their time ran out, they
// were cancelled, their node went down) while runs remain, a top-up wave
// replaces them, bounded by MaxFruitlessWaves. Which pilots live comes from their
// heartbeats on the engine; squeue is asked at most every squeueEvery,
// only about pilots never heard from.
type Pilots struct {
	S        Settings
	D        Durations
	Limits   Limits
	URL      string // the engine address pilots dial
	Creds    creds.Creds
	Eng      *engine.Engine
	Log      *slog.Logger
	Progress io.Writer // a line per wave
	// Build: submit a build job (a `simswarm builder` as a Slurm job) when
	// a build waits and no builder is heard; BuildArgs are more flags for
	// it (the client's --ccache-dir).
	Build     bool
	BuildArgs []string

	mu       sync.Mutex
	arrays   []string         // every job submitted (arrays and build jobs), for cancelling
	tasks    map[string]*task // every pilot submitted, by "array_index"
	waves    int
	asked    time.Time // the last squeue
	blocked  time.Time // a job limit took nothing: no wave before then
	said     string    // the last limit line shown
	builder  string    // the last build job
	builtAt  time.Time // when it was submitted
	waitSaid string    // the build job whose wait in the queue was said
	builds   int       // build jobs submitted
	// work is what the last wave was sent for, least the least left since
	// (seen every step); fruitless counts the waves in a row after which
	// never less was left.
	work, least, fruitless int
	Submits                int // sbatch calls that submitted
}

// task is a pilot submitted: seen when its runner's heartbeat was last
// there; gone once squeue no longer lists it, never heard from.
type task struct {
	seen time.Time
	gone bool
}

// endedAfter: a pilot heard from whose heartbeat has not been there for
// this long has ended (a runner that stops removes its heartbeat; one
// look may miss a heartbeat being renewed, so one look is not enough).
const endedAfter = 2 * time.Second

// Bounds of what one campaign submits: top-up waves after which no run
// was done, and build jobs. Pilots or builders that keep ending without
// doing the work mean something is wrong (runs longer than the time
// limit allows, a broken node); the campaign then ends, saying so,
// instead of queueing jobs without end.
const (
	MaxFruitlessWaves = 3
	MaxBuildJobs      = 3
)

// lookEvery is how often the queues and heartbeats are looked at.
const lookEvery = 250 * time.Millisecond

// squeueEvery bounds how often a client asks squeue: sites rate-limit
// Slurm's RPCs, and the heartbeats tell most of what squeue would.
const squeueEvery = 30 * time.Second

// staleAfter: a pilot silent this long is gone (a killed job's runner
// cannot remove its heartbeat; the engine keeps it for a minute).
const staleAfter = 3 * engine.HeartbeatEvery

// buildWaitSaid: a build job not started this long is said to wait.
const buildWaitSaid = 10 * time.Second

// BuildIdleExit is how long a build job waits for another build once its
// own is done, before it releases its allocation.
const BuildIdleExit = 2 * time.Second

// Check asks sbatch whether it would take the pilots (sbatch --test-only),
// so that a bad account, partition or limit is refused before anything is
// built or queued. A job limit reached is no refusal: the pilots wait for
// it (submit), and Check says so.
func (p *Pilots) Check(ctx context.Context) error {
	args := append([]string{"--test-only"}, p.S.options(p.D)...)
	_, err := command(ctx, []byte("#!/bin/sh\ntrue\n"), "sbatch", args...)
	if JobLimit(err) {
		fmt.Fprintf(p.Progress, "slurm: at the site's job limit (%v): the jobs are submitted when it allows\n", err)
		return nil
	}
	return err
}

// Run watches the queues and submits until ctx ends. It returns the error
// of a submission Slurm refused for another reason than a job limit while
// nothing of the campaign runs, or the bound of waves or build jobs
// reached: the campaign cannot run.
func (p *Pilots) Run(ctx context.Context) error {
	// Looks at the engine only (squeue is bounded apart), so often enough
	// that a build or a wave is not left waiting for the next look.
	t := time.NewTicker(lookEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		heard, err := p.Eng.Workers(ctx)
		if err != nil {
			continue // cannot tell who lives: submit nothing
		}
		if err := p.step(ctx, heard); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// Start runs Run in the background; stop ends it and scancels every job
// submitted (within 10 s). fail gets the error Run ends with.
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

// step is one look at the queues and the heartbeats.
func (p *Pilots) step(ctx context.Context, heard []engine.Heard) error {
	ds, err := p.Eng.Depths(ctx)
	if err != nil {
		return nil
	}
	depth := map[string]engine.Depth{}
	for _, d := range ds {
		depth[d.Name] = d
	}
	if p.Build && depth[string(engine.QueueBuild)].Waiting > 0 {
		if err := p.buildJob(ctx, heard); err != nil {
			return err
		}
	}
	alive, pending := p.mark(heard)
	run := depth[string(engine.QueueRun)]
	work := int(run.Waiting) + run.Taken
	p.mu.Lock()
	p.least = min(p.least, work)
	p.mu.Unlock()
	need := p.Size(work) - alive - pending
	if need <= 0 || time.Now().Before(p.blocked) {
		return nil
	}
	if pending > 0 {
		// Pilots never heard from may be queued still, or gone without
		// a word (failed at start): squeue tells, at most every 30 s.
		p.mu.Lock()
		recent := time.Since(p.asked) < squeueEvery
		p.mu.Unlock()
		if recent {
			return nil
		}
		p.unheardGone(ctx)
		alive, pending = p.mark(heard)
		if need = p.Size(work) - alive - pending; need <= 0 {
			return nil
		}
	}
	p.mu.Lock()
	waves, fruitless, none := p.waves, p.fruitless, p.least >= p.work
	if waves > 0 && none {
		fruitless++
	}
	p.mu.Unlock()
	if fruitless > MaxFruitlessWaves {
		limit := "the partition's time limit"
		if p.S.Time != "" {
			limit = "--time " + p.S.Time
		}
		return fmt.Errorf("%d waves of pilots ended without finishing a run: do the runs fit in %s, less the end signal's %s? (the pilots' output: --sbatch-option=--output=...)",
			MaxFruitlessWaves, limit, p.D.EndSignal)
	}
	taken, err := p.submit(ctx, need, alive, pending, work)
	if err != nil || taken == 0 {
		return err
	}
	p.mu.Lock()
	if waves > 0 && none {
		p.fruitless++
	} else {
		p.fruitless = 0
	}
	p.work, p.least = work, work
	p.mu.Unlock()
	return nil
}

// mark notes which pilots are heard; alive are the pilots heard lately,
// pending those submitted, never heard and not known gone.
func (p *Pilots) mark(heard []engine.Heard) (alive, pending int) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range heard {
		if t, ok := p.tasks[w.Slurm]; ok && w.Role == simswarm.RoleRunner && now.Sub(w.At) < staleAfter {
			t.seen = now
		}
	}
	for _, t := range p.tasks {
		switch {
		case !t.seen.IsZero() && now.Sub(t.seen) < endedAfter:
			alive++
		case t.seen.IsZero() && !t.gone:
			pending++
		}
	}
	return alive, pending
}

// unheardGone asks squeue which pilots never heard from it still lists;
// the others are gone.
func (p *Pilots) unheardGone(ctx context.Context) {
	p.mu.Lock()
	p.asked = time.Now()
	var ids []string
	arrays := map[string]bool{}
	for id, t := range p.tasks {
		if t.seen.IsZero() && !t.gone {
			ids = append(ids, id)
			arrays[ArrayOf(id)] = true
		}
	}
	p.mu.Unlock()
	listed, err := p.squeue(ctx, slices.Collect(maps.Keys(arrays)))
	if err != nil {
		return // cannot tell: they may be queued still
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		if !listed[id] {
			p.tasks[id].gone = true
		}
	}
}

// squeue lists the tasks of jobs that are pending, running or completing
// ("12_3"; a job not an array as "12").
func (p *Pilots) squeue(ctx context.Context, jobs []string) (map[string]bool, error) {
	out, err := command(ctx, nil, "squeue", "--noheader", "--array", "--format=%i", "--jobs="+strings.Join(jobs, ","))
	if err != nil {
		var se *Error
		if errors.As(err, &se) && strings.Contains(se.Msg, "Invalid job id") {
			// Jobs purged from the controller's memory are "invalid": gone.
			return map[string]bool{}, nil
		}
		p.Log.Info("slurm: squeue", "err", err)
		return nil, err
	}
	listed := map[string]bool{}
	for _, f := range strings.Fields(string(out)) {
		listed[f] = true
	}
	return listed, nil
}

// ArrayOf is the array job id of a pilot's job ("12_3" -> "12").
func ArrayOf(job string) string {
	a, _, _ := strings.Cut(job, "_")
	return a
}

// Size is how many pilots a wave of runs gets: never more cores than runs,
// at most MaxPilots and the site's job limits.
func (p *Pilots) Size(runs int) int {
	n := (runs + p.S.CPUs - 1) / p.S.CPUs
	n = min(n, p.S.MaxPilots)
	if p.Limits.MaxJobCount > 0 {
		n = min(n, p.Limits.MaxJobCount)
	}
	if p.Limits.MaxSubmitJobs > 0 {
		n = min(n, p.Limits.MaxSubmitJobs)
	}
	return max(0, n)
}

// submit sends one wave of n pilots: arrays of at most MaxArraySize
// tasks. At a job limit it submits what fits, halving the array until
// Slurm takes it, and says so; when nothing fits it tries again after
// squeueEvery, the campaign waiting meanwhile. Another refusal ends the
// campaign when nothing of it runs (first), else the wave is smaller.
func (p *Pilots) submit(ctx context.Context, n, alive, pending, work int) (int, error) {
	none := alive+pending == 0
	chunk := max(1, p.Limits.MaxArraySize)
	script := p.script()
	var ranges []string
	taken, try := 0, n
	var limit error
	for taken < n {
		k := min(chunk, n-taken, try)
		args := append([]string{"--parsable", "--job-name=simswarm-pilot", fmt.Sprintf("--array=0-%d%%%d", k-1, k)}, p.S.options(p.D)...)
		if !p.hasOutput() {
			args = append(args, "--output=/dev/null")
		}
		out, err := command(ctx, []byte(script), "sbatch", args...)
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			if JobLimit(err) {
				limit = err
				if k == 1 {
					break
				}
				try = k / 2
				continue
			}
			if none && taken == 0 {
				return 0, err
			}
			fmt.Fprintf(p.Progress, "slurm: %d of %d pilots submitted; the rest refused: %v\n", taken, n, err)
			break
		}
		id, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";") // "id;cluster"
		p.mu.Lock()
		if p.tasks == nil {
			p.tasks = map[string]*task{}
		}
		for i := range k {
			p.tasks[fmt.Sprintf("%s_%d", id, i)] = &task{}
		}
		p.arrays = append(p.arrays, id)
		p.Submits++
		p.mu.Unlock()
		ranges = append(ranges, fmt.Sprintf("%s[0-%d]", id, k-1))
		taken += k
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if limit != nil {
		line := fmt.Sprintf("slurm: at the site's job limit, %d of %d pilots submitted (%v)", taken, n, limit)
		if taken == 0 {
			line += fmt.Sprintf("; trying again in %s", squeueEvery)
			p.blocked = time.Now().Add(squeueEvery)
		}
		// Said when it changes what the campaign has: pilots, or none at
		// all; a retry for more pilots while some run stays quiet.
		if (taken > 0 || none) && line != p.said {
			fmt.Fprintln(p.Progress, line)
			p.said = line
		} else {
			p.Log.Info(line)
		}
	}
	if taken == 0 {
		return 0, nil
	}
	p.waves++
	p.asked = time.Now()
	if p.waves == 1 {
		fmt.Fprintf(p.Progress, "slurm: submitted %d pilots of %d cores for %d runs (%s)\n", taken, p.S.CPUs, work, strings.Join(ranges, " "))
	} else {
		fmt.Fprintf(p.Progress, "slurm: topped up with %d pilots of %d cores for %d runs left, %d pilots alive, %d queued (%s)\n",
			taken, p.S.CPUs, work, alive, pending, strings.Join(ranges, " "))
	}
	return taken, nil
}

// JobLimit says whether Slurm refused a submission for a limit on the
// number of jobs (the association's or QOS's MaxSubmitJobs, the
// controller's MaxJobCount): what fits may be submitted, the rest later.
func JobLimit(err error) bool {
	var se *Error
	if !errors.As(err, &se) {
		return false
	}
	for _, s := range []string{"accounting/QOS policy", "job submit limit", "MaxSubmit", "temporarily unable to accept job", "Resource temporarily unavailable"} {
		if strings.Contains(se.Msg, s) {
			return true
		}
	}
	return false
}

// buildJob submits a build job when a build waits and no builder is
// heard, unless the last one submitted is still queued (squeue, at most
// every squeueEvery).
func (p *Pilots) buildJob(ctx context.Context, heard []engine.Heard) error {
	for _, w := range heard {
		if w.Role == simswarm.RoleBuilder && time.Since(w.At) < staleAfter {
			return nil
		}
	}
	p.mu.Lock()
	last, recent, builds := p.builder, time.Since(p.asked) < squeueEvery, p.builds
	if last != "" && p.waitSaid != last && time.Since(p.builtAt) >= buildWaitSaid {
		// Nothing else tells the user why nothing happens.
		p.waitSaid = last
		fmt.Fprintf(p.Progress, "slurm: build job %s not started after %s: waiting for Slurm (squeue --job %s)\n", last, buildWaitSaid, last)
	}
	p.mu.Unlock()
	if last != "" {
		if recent {
			return nil
		}
		p.mu.Lock()
		p.asked = time.Now()
		p.mu.Unlock()
		listed, err := p.squeue(ctx, []string{last})
		if err != nil || len(listed) > 0 {
			return nil
		}
	}
	if builds >= MaxBuildJobs {
		return fmt.Errorf("%d build jobs ended without taking the build: see their output (--sbatch-option=--output=...)", builds)
	}
	args := append([]string{"--parsable", "--job-name=simswarm-build"}, p.S.options(p.D)...)
	if !p.hasOutput() {
		args = append(args, "--output=/dev/null")
	}
	out, err := command(ctx, []byte(p.buildScript()), "sbatch", args...)
	if err != nil {
		if JobLimit(err) {
			p.mu.Lock()
			p.asked = time.Now() // try again after squeueEvery
			p.mu.Unlock()
			fmt.Fprintf(p.Progress, "slurm: at the site's job limit, the build job waits (%v)\n", err)
			return nil
		}
		return err
	}
	id, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";")
	p.mu.Lock()
	p.builder, p.builds, p.asked, p.builtAt = id, p.builds+1, time.Now(), time.Now()
	p.arrays = append(p.arrays, id)
	p.Submits++
	p.mu.Unlock()
	fmt.Fprintf(p.Progress, "slurm: submitted build job %s\n", id)
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

// script is a pilot's batch script: the runner in the shell's place, so
// that Slurm's signals reach it.
func (p *Pilots) script() string {
	cache := `"${TMPDIR:-/tmp}/simswarm-runner"`
	if p.S.Cache != "" {
		cache = quote(p.S.Cache)
	}
	return p.jobScript("a runner taking runs", fmt.Sprintf("runner --slurm --slots %d --cache %s --idle-exit %s --lost-exit %s --end-margin %s",
		p.S.CPUs, cache, p.D.IdleExit, p.D.LostExit, p.D.EndSignal))
}

// buildScript is a build job's script: a builder that builds what waits,
// with the job's cores, and ends soon after.
func (p *Pilots) buildScript() string {
	args := fmt.Sprintf("builder --jobs %d --idle-exit %s --lost-exit %s", p.S.CPUs, BuildIdleExit, p.D.LostExit)
	for _, a := range p.BuildArgs {
		args += " " + quote(a)
	}
	return p.jobScript("a builder taking builds", args)
}

// jobScript is a batch script starting simswarm with args: the site's
// prologue, the engine's credentials written to a private file on the
// node (no shared file system needed), then simswarm in the shell's place.
func (p *Pilots) jobScript(what, args string) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# simswarm: " + what + " from the engine at " + p.URL + "\n")
	for _, l := range p.S.Prologue {
		b.WriteString(l + "\n")
	}
	bin := p.S.Simswarm
	if bin == "" {
		bin, _ = os.Executable()
	}
	fmt.Fprintf(&b, "creds=\"${TMPDIR:-/tmp}/simswarm-$SLURM_JOB_ID.creds\"\n")
	fmt.Fprintf(&b, "(umask 077; cat > \"$creds\") <<'SIMSWARM_CREDS_END'\nuser = %q\npassword = %q\nSIMSWARM_CREDS_END\n", p.Creds.User, p.Creds.Password)
	fmt.Fprintf(&b, "exec %s %s --server %s --creds \"$creds\" --creds-remove\n", quote(bin), args, quote(p.URL))
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
