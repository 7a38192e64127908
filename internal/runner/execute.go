package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/omnetpp"
	"github.com/simswarm/simswarm/internal/proc"
	"github.com/simswarm/simswarm/internal/projenv"
	"github.com/simswarm/simswarm/internal/retry"
	"github.com/simswarm/simswarm/internal/safedir"
	"github.com/simswarm/simswarm/internal/sweep"
)

// tailBytes is how much of a run's console output its record keeps.
const tailBytes = 4 << 10

// execute runs a group of jobs of one campaign in one process; runs a
// failed batch leaves in doubt run again alone.
func (r *Runner) execute(ctx context.Context, jobs []*job) {
	dir, release, err := r.trees.get(ctx, jobs[0].Snapshot, jobs[0].Artifact, jobs[0].Layout)
	if err != nil {
		r.infraFault(ctx, jobs, err)
		return
	}
	defer release()
	r.healthy()
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].Run < jobs[b].Run })
	// Each pass runs alone what the previous left in doubt; attempts and
	// batch splitting only shrink the set, so this ends.
	again := r.process(ctx, dir, jobs)
	for len(again) > 0 && ctx.Err() == nil {
		var next []*job
		for _, j := range again {
			next = append(next, r.process(ctx, dir, []*job{j})...)
		}
		again = next
	}
	for _, j := range again { // the runner is stopping
		j.lease.GiveBack()
	}
}

// infraFault hands jobs back for another try later, on this runner or
// another: the run itself never started. The runner pauses, and gives back
// the jobs it holds for later too, so that healthy runners take them.
func (r *Runner) infraFault(ctx context.Context, jobs []*job, err error) {
	if ctx.Err() != nil {
		for _, j := range jobs {
			j.lease.GiveBack()
		}
		return
	}
	r.Log.Warn("runner: cannot prepare run", "campaign", jobs[0].Campaign, "err", err)
	for _, j := range jobs {
		// Back to the queue, for a healthy runner; this one pauses.
		if !j.lease.Retry(500 * time.Millisecond) {
			r.finish(ctx, j, &simswarm.RunRecord{State: simswarm.RunFailed, Reason: err.Error()})
		}
	}
	r.fault()
	r.pool.giveBack()
}

// fault notes that this host failed to prepare a job; healthy that it
// succeeded, ending the pause.
func (r *Runner) fault() {
	r.mu.Lock()
	r.faults++
	r.mu.Unlock()
}

func (r *Runner) healthy() {
	r.mu.Lock()
	r.faults = 0
	r.mu.Unlock()
}

// pause is how long a runner that keeps failing to prepare runs waits
// before taking another job: 1, 2, 4 ... 30 s after consecutive faults.
func (r *Runner) pause() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.faults == 0 {
		return 0
	}
	return min(time.Duration(1<<min(r.faults-1, 5))*time.Second, 30*time.Second)
}

// process runs jobs in one process and has the runs whose outcome is clear
// recorded (in the background: the slot moves on to its next process at
// once); it returns the runs to try again alone.
func (r *Runner) process(ctx context.Context, tree string, jobs []*job) (again []*job) {
	first := jobs[0]
	stage, err := r.scratchDir(first)
	if err != nil {
		r.infraFault(ctx, jobs, err)
		return nil
	}
	keep := false // the stage goes with the recording when there is one
	defer func() {
		if !keep {
			r.doneStage(stage)
		}
	}()
	scratch := stage.Path()
	resDir := filepath.Join(scratch, "results")
	if err := os.MkdirAll(resDir, 0o755); err != nil {
		r.infraFault(ctx, jobs, err)
		return nil
	}
	argv, err := commandLine(first.Command, runsOf(jobs), resDir)
	if err != nil {
		r.finishAll(ctx, jobs, &simswarm.RunRecord{State: simswarm.RunFailed, Reason: err.Error()})
		return nil
	}
	env := commandEnv(tree, first.Command, argv)
	consolePath := filepath.Join(scratch, "console")
	file, err := os.Create(consolePath)
	if err != nil {
		r.infraFault(ctx, jobs, err)
		return nil
	}
	console := &consoleSink{f: file}
	started := time.Now()
	// A batch's runs execute one after another in its process: each is
	// said running when its header appears, not all at once, so that what
	// clients count running never exceeds the slots.
	noteRunning := func(j *job, at time.Time) {
		r.Eng.NoteStatus(&simswarm.RunRecord{Key: j.Key, Campaign: j.Campaign, Run: j.Run, State: simswarm.RunRunning,
			Worker: r.ID, Host: r.Host, Started: at, Batch: len(jobs)})
	}
	noteRunning(first, started)
	later := map[int]*job{}
	for _, j := range jobs[1:] {
		later[j.Run] = j
	}
	// The console is cut into runs once, as it is written; each run's
	// header time marks where the previous run ended.
	var mu sync.Mutex
	at := map[int]time.Time{}
	split := &omnetpp.BatchSplitter{OnRun: func(n int) {
		now := time.Now()
		mu.Lock()
		at[n] = now
		j := later[n]
		delete(later, n)
		mu.Unlock()
		if j != nil {
			noteRunning(j, now)
		}
	}}
	var timeout time.Duration
	if first.Timeout > 0 {
		timeout = first.Timeout * time.Duration(len(jobs))
	}
	pctx, cancel := context.WithCancel(ctx)
	rc := &runCtx{cancel: cancel, jobs: jobs}
	r.track(rc, true)
	res, err := proc.Run(pctx, proc.Spec{
		Argv:      argv,
		Dir:       filepath.Join(tree, filepath.FromSlash(first.Workdir)),
		Env:       env,
		Output:    io.MultiWriter(console, split),
		Timeout:   timeout,
		TailBytes: tailBytes,
	})
	// Told to end by a cancel or the runner's stop, not merely outlived by
	// them: a process that ended on its own is a result.
	cancelled := err == nil && res.Interrupted
	r.track(rc, false)
	cancel()
	file.Close()
	split.Flush()
	if err == nil {
		r.Log.Info("process ended", "campaign", first.Campaign, "runs", omnetpp.RunNumberArg(runsOf(jobs)), "how", res.Describe(), "wall", res.Wall)
	}
	if err == nil && !cancelled && r.SignalGrace > 0 && killedFromOutside(res) {
		retry.Sleep(ctx, r.SignalGrace)
	}
	if ctx.Err() != nil && (err != nil || cancelled || res.Failed()) {
		// The runner is stopping: the runs it cut short go back to the
		// queue whole. Runs that ended well just before the stop are
		// recorded below (on a context of their own), not run again.
		for _, j := range jobs {
			j.lease.GiveBack()
		}
		return nil
	}
	if err != nil {
		// A process that never started has no exit status: the reason
		// names the program ("program ./nosuch not found ...").
		why := fmt.Sprintf("cannot start %s: %v", argv[0], err)
		if cerr := checkProgram(filepath.Join(tree, filepath.FromSlash(first.Workdir)), argv[0]); cerr != nil {
			why = cerr.Error()
		}
		r.finishAll(ctx, jobs, &simswarm.RunRecord{State: simswarm.RunFailed, Reason: why, Started: started})
		return nil
	}
	// A process that ended on its own before the cancel reached it is a
	// result like any other: a cancel racing the end loses nothing.
	if cancelled && res.Failed() {
		r.finishAll(ctx, jobs, &simswarm.RunRecord{State: simswarm.RunCancelled, Reason: "campaign cancelled", Started: started})
		return nil
	}
	if full := diskFull(console, res, resDir, r.writesInto(first)); full != nil {
		r.noSpace(ctx, jobs, full, started)
		return nil
	}
	seen := split.Runs()
	mu.Lock()
	heads := make([]time.Time, len(seen))
	for i, h := range seen {
		heads[i] = at[h.Run]
	}
	mu.Unlock()
	if !res.Failed() {
		startup := time.Duration(0)
		if len(heads) > 0 {
			startup = heads[0].Sub(started)
		}
		if len(seen) == len(jobs) || len(jobs) == 1 {
			r.stats.add(first.BatchKey(), startup, res.Wall, len(jobs))
		}
	}
	if len(jobs) == 1 {
		rec := r.outcomeOf(readRange(consolePath, 0, split.Len(), 1<<20), res, started)
		rec.Batch = 1
		if rec.State == simswarm.RunFailed && first.attempt < first.Retries {
			first.attempt++
			r.Log.Info("run failed, trying again", "campaign", first.Campaign, "run", first.Run, "attempt", first.attempt)
			return []*job{first}
		}
		keep = true
		r.background(func(ctx context.Context) {
			defer r.doneStage(stage)
			r.collect(ctx, first, stage, consolePath, 0, -1, rec)
			r.finish(ctx, first, rec)
		}, ctx)
		return nil
	}
	again, settled := r.settleBatch(jobs, res, seen, heads, consolePath, started)
	if len(settled) > 0 {
		keep = true
		r.background(func(ctx context.Context) {
			defer r.doneStage(stage)
			owners := attribute(resDir, seen)
			for _, s := range settled {
				r.collectFiles(ctx, s.job, stage, owners[s.job.Run], consolePath, s.from, s.to, s.rec)
				r.finish(ctx, s.job, s.rec)
			}
		}, ctx)
	}
	return again
}

// killedFromOutside says whether a process ended by SIGTERM or SIGKILL,
// itself or, as a shell reports it, a child (exit 128+n).
func killedFromOutside(res *proc.Result) bool {
	return res.Signal == "SIGTERM" || res.Signal == "SIGKILL" || res.Exit == 128+15 || res.Exit == 128+9
}

// background records outcomes while the slot goes on to its next process.
// At most one recording per slot is in flight: a slot that finishes faster
// than the engine stores waits here.
func (r *Runner) background(fn func(context.Context), ctx context.Context) {
	r.recordSem <- struct{}{}
	r.recording.Add(1)
	// The run is over: storing it must not be cut short by shutdown.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), engine.SettleFor)
	go func() {
		defer r.recording.Done()
		defer func() { <-r.recordSem }()
		defer cancel()
		fn(bctx)
	}()
}

// outcomeOf reads a run's record from its console output and process result.
func (r *Runner) outcomeOf(output []byte, res *proc.Result, started time.Time) *simswarm.RunRecord {
	rec := &simswarm.RunRecord{
		State: simswarm.RunSucceeded, Exit: res.Exit, Signal: res.Signal, TimedOut: res.TimedOut,
		Wall: res.Wall, CPU: res.CPU, Started: started, Finished: started.Add(res.Wall),
	}
	if res.Failed() {
		rec.State = simswarm.RunFailed
		if why := omnetpp.LibraryProblem(output); why != "" {
			rec.Reason = "on " + r.Host + ": " + why
		}
	}
	rec.Errors = omnetpp.ErrorLines(output, 10)
	if res.Failed() && len(rec.Errors) == 0 {
		// A program that never started prints no <!> line; the dynamic
		// loader's own names the library this host lacks.
		rec.Errors = loaderErrors(output, 10)
	}
	o := omnetpp.ParseOutcome(output)
	rec.Fingerprint, rec.Limit, rec.SimTime, rec.Events = o.Fingerprint, o.Limit, o.SimTime, o.Events
	rec.FingerprintCalculated = o.FingerprintCalculated
	t := output
	if len(t) > tailBytes {
		t = t[len(t)-tailBytes:]
	}
	rec.Tail = string(t)
	return rec
}

func (r *Runner) finishAll(ctx context.Context, jobs []*job, tmpl *simswarm.RunRecord) {
	for _, j := range jobs {
		rec := *tmpl
		r.finish(ctx, j, &rec)
	}
}

// scratchDir is where one process writes (see safedir: a stage, removed
// with everything in it when the process is settled, or by the next runner
// or client if this one is killed). For a job from a client on this host it
// sits inside the client's results directory, so that moving the results
// there is a rename, not a copy.
func (r *Runner) scratchDir(j *job) (*safedir.Stage, error) {
	base := r.Dir
	if r.local(j) {
		base = j.Local
	}
	return r.pool.stages.Get(base, fmt.Sprintf("%s-%d", j.Campaign, j.Run))
}

// doneStage gives back a stage whose run is over, for the slot's next run.
func (r *Runner) doneStage(st *safedir.Stage) { r.pool.stages.Put(st, true) }

func (r *Runner) local(j *job) bool {
	return r.SharedDisk && j.Local != "" && j.Host == r.Host
}

func runsOf(jobs []*job) []int {
	out := make([]int, len(jobs))
	for i, j := range jobs {
		out[i] = j.Run
	}
	return out
}

// commandEnv is the environment of a command's processes in tree: the
// runner's own with the command's share of the user's environment pointing
// into tree; a program named without a slash is looked up in it (argv[0]
// is replaced), so that INET's `inet` is the tree's launcher, not the one
// on the runner's PATH.
func commandEnv(tree string, c simswarm.Command, argv []string) []string {
	env := projenv.Environ(proc.Environ(), c.Env, tree)
	if len(c.Env) > 0 && len(argv) > 0 {
		argv[0] = projenv.LookPath(argv[0], env)
	}
	return env
}

// commandLine is the process that executes runs of a command.
func commandLine(c simswarm.Command, runs []int, resDir string) ([]string, error) {
	switch c.Kind {
	case simswarm.KindOmnetpp:
		argv := append([]string(nil), c.Argv...)
		if !omnetpp.HasOption(argv, "-s") {
			argv = append(argv, "-s")
		}
		return append(argv, "-r", omnetpp.RunNumberArg(runs), "--result-dir="+resDir), nil
	case simswarm.KindTemplate:
		if len(runs) != 1 {
			return nil, errors.New("template commands run one run per process")
		}
		line, err := sweep.Expand(c, runs[0], resDir)
		if err != nil {
			return nil, err
		}
		return []string{"/bin/sh", "-c", line}, nil
	}
	return nil, fmt.Errorf("unknown command kind %q", c.Kind)
}

// loaderErrors returns the dynamic loader's lines in a program's output
// ("prog: error while loading shared libraries: libfoo.so: cannot open
// shared object file: ..."): the runner's image lacks what the program was
// linked against.
func loaderErrors(output []byte, max int) []string {
	var errs []string
	for _, line := range strings.Split(string(output), "\n") {
		if strings.Contains(line, "error while loading shared libraries: ") {
			errs = append(errs, strings.TrimSpace(line))
			if len(errs) == max {
				break
			}
		}
	}
	return errs
}
