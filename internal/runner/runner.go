// Package runner is the runner worker: it holds one slot per core, takes run
// and run-list jobs from the engine, materialises each snapshot+artifact once
// per host, starts simulations with a private result directory, and writes
// each run's record and result files back to the engine.
package runner

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/treestore"
)

// Runner takes jobs from the engine with a fixed number of slots.
type Runner struct {
	Eng   *engine.Engine
	Dir   string // host cache: trees and scratch result dirs
	Slots int
	Host  string
	ID    string
	Log   *slog.Logger
	// SharedDisk lets the runner write results straight into a client's
	// directory when the job comes from this host (embedded mode).
	SharedDisk bool
	// MaxBatch bounds how many runs one process may execute (0: 8).
	MaxBatch int
	// CacheBytes bounds the host cache of trees (0: no bound); least
	// recently used trees that no process uses are evicted.
	CacheBytes int64
	// ListsOnly answers run-list jobs and runs no simulation: a Slurm
	// campaign's login node lists runs, its pilots run them.
	ListsOnly bool
	// What a Slurm pilot (internal/slurm) sets. Slurm is its job, shown in
	// heartbeats. IdleExit ends Serve after that long with nothing to run,
	// releasing the allocation; LostExit after that long without the
	// engine (its client was killed). End, less EndMargin, is when the
	// host goes away: a group this runner's measured times say cannot
	// finish by then goes back to the queue, and the runner takes no more.
	Slurm              string
	IdleExit, LostExit time.Duration
	End                time.Time
	EndMargin          time.Duration
	// SignalGrace is how long a process killed by SIGTERM or SIGKILL that
	// this runner did not send waits for the runner's own stop before it
	// counts as failed: Slurm signals every process of a job at once, and
	// a run killed with its pilot goes back to the queue, not into the
	// results as a failure.
	SignalGrace time.Duration

	trees  treeCache
	stats  batchStats
	pool   *pool
	mu     sync.Mutex
	active map[*runCtx]bool // running processes
	// changed asks the heartbeat to announce a change of busy slots now.
	changed chan struct{}
	// held maps a job's stream sequence to the lease of it this runner
	// holds, from take to ack or give-back.
	held map[uint64]*engine.Lease
	busy int
	// recent keeps the outcomes this runner stored lately, by run key: a
	// server killed before its last writes reached its disk loses them, and
	// the jobs come back.
	recent   map[string]remembered
	recentMu sync.Mutex
	// doubt: jobs that may be held by another runner after a reconnection
	// (doubt.go).
	doubt  doubt
	faults int // consecutive failures to prepare a run on this host
	// draining: finish the runs in progress, take no new jobs (set from
	// the dashboard through engine.Drain).
	draining atomic.Bool
	// ending: the host's end is near (End): take no new jobs.
	ending atomic.Bool
	// recording counts outcomes being stored after their slot moved on;
	// recordSem bounds them to one per slot.
	recording sync.WaitGroup
	recordSem chan struct{}
	// serveCtx is Serve's context, for work started from engine callbacks.
	serveCtx context.Context
}

type runCtx struct {
	cancel context.CancelFunc
	jobs   []*job
}

// Serve runs the slots until ctx ends. Running simulations are killed when
// ctx ends and their jobs go back to the queue.
func (r *Runner) Serve(ctx context.Context) error {
	if r.Slots < 1 {
		r.Slots = runtime.NumCPU()
	}
	if r.MaxBatch < 1 {
		r.MaxBatch = 8
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
	if r.ID == "" {
		r.ID = engine.WorkerID(r.Host, "")
	}
	r.serveCtx = ctx
	r.active = map[*runCtx]bool{}
	r.changed = make(chan struct{}, 1)
	r.held = map[uint64]*engine.Lease{}
	r.recent = map[string]remembered{}
	r.doubt.init()
	r.trees.dir = r.Dir
	r.trees.store = treestore.New(r.Eng)
	r.trees.log = r.Log
	r.trees.max = r.CacheBytes
	r.pool = newPool(r)
	r.recordSem = make(chan struct{}, r.Slots)
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return fmt.Errorf("runner cache dir: %w", err)
	}
	r.sweepScratch()
	stopCancel, err := r.Eng.OnCancel(func(c engine.Cancel) { r.cancelCampaign(ctx, c) })
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	defer stopCancel()
	stopDrain, err := r.Eng.OnDrain(r.ID, func(on bool) {
		r.draining.Store(on)
		r.Log.Info("runner: drain", "draining", on)
	})
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	defer stopDrain()
	stopHolds, err := r.Eng.AnswerJobQuestions(r.ID, r.answerJob)
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	defer stopHolds()
	stopNotices, err := r.Eng.OnHeldNotice(r.ID, r.noteHeld)
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	defer stopNotices()
	r.Eng.OnReconnect(r.onReconnect)

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); r.heartbeat(ctx) }()
	go func() { defer wg.Done(); r.announceHeld(ctx) }()
	go func() { defer wg.Done(); r.serveLists(ctx) }()
	go func() { defer wg.Done(); r.watch(ctx, stop) }()
	if !r.ListsOnly {
		wg.Add(r.Slots + 1)
		go func() { defer wg.Done(); r.pool.fill(ctx) }()
		for i := 0; i < r.Slots; i++ {
			go func() { defer wg.Done(); r.slot(ctx) }()
		}
	}
	wg.Wait()
	r.recording.Wait()
	return nil
}

func (r *Runner) heartbeat(ctx context.Context) {
	var cache int64
	var measured time.Time
	r.Eng.Heartbeat(ctx, func() simswarm.Worker {
		// Measuring the cache walks it: once a minute is enough.
		if time.Since(measured) > time.Minute {
			cache, measured = dirSize(r.Dir), time.Now()
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		w := simswarm.Worker{ID: r.ID, Host: r.Host, Role: simswarm.RoleRunner, Slots: r.Slots, Busy: r.busy,
			Version: simswarm.Version, Seen: time.Now(), CacheBytes: cache, Draining: r.draining.Load() || r.ending.Load(),
			Slurm: r.Slurm}
		if r.ListsOnly {
			w.Slots = 0
		}
		for rc := range r.active {
			for _, j := range rc.jobs {
				w.Current = append(w.Current, simswarm.StatusKey(j.Campaign, j.Run))
			}
		}
		sort.Strings(w.Current)
		return w
	}, r.changed)
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// slot runs one process at a time, taking each group from the pool.
func (r *Runner) slot(ctx context.Context) {
	for ctx.Err() == nil {
		group := r.pool.take()
		if group == nil {
			return
		}
		if r.pool.cancelled(group[0]) {
			r.dropCancelled(ctx, group)
			continue
		}
		if r.tooLate(group) {
			r.Log.Warn("runner: the host's end is near; runs that cannot finish by then go back to the queue",
				"end", r.End.Format(time.TimeOnly), "campaign", group[0].Campaign)
			r.ending.Store(true)
			for _, j := range group {
				j.lease.GiveBack()
			}
			r.pool.giveBack()
			continue
		}
		r.execute(ctx, group)
	}
}

// finish stores a run's record and acknowledges its job: a job leaves the
// queue only once its outcome is stored. Writes are tried again until
// stored (a stream leader may be moving): giving up would run a finished
// run again.
func (r *Runner) finish(ctx context.Context, j *job, rec *simswarm.RunRecord) {
	rec.Key, rec.Campaign, rec.Run = j.Key, j.Campaign, j.Run
	rec.Worker, rec.Host = r.ID, r.Host
	if !rec.Reused {
		rec.Submission = j.Submission
	}
	if rec.Finished.IsZero() {
		rec.Finished = time.Now()
	}
	if err := j.lease.Settle(ctx, engine.RunAnswer(rec).OnStored(func() { r.remember(rec) })); err != nil {
		r.Log.Error("runner: "+err.Error(), "campaign", j.Campaign, "run", j.Run)
	}
}

func (r *Runner) track(rc *runCtx, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer engine.Poke(r.changed)
	if on {
		r.active[rc] = true
		r.busy++
		return
	}
	delete(r.active, rc)
	r.busy--
}

// cancelCampaign stops what this runner holds of a cancelled campaign: jobs
// in the pool are answered as cancelled, running processes are killed
// (their slots record them cancelled).
func (r *Runner) cancelCampaign(ctx context.Context, c engine.Cancel) {
	dropped := r.pool.cancel(ctx, c)
	r.mu.Lock()
	for rc := range r.active {
		if rc.jobs[0].Campaign == c.Campaign && rc.jobs[0].lease.Seq <= c.UpTo {
			rc.cancel()
		}
	}
	r.mu.Unlock()
	if len(dropped) > 0 {
		r.recording.Add(1)
		go func() { defer r.recording.Done(); r.dropCancelled(ctx, dropped) }()
	}
}

// dropCancelled answers jobs of a cancelled campaign that never started.
func (r *Runner) dropCancelled(ctx context.Context, jobs []*job) {
	for _, j := range jobs {
		r.finish(ctx, j, &simswarm.RunRecord{State: simswarm.RunCancelled, Reason: "campaign cancelled"})
	}
}
