// Package runner is the runner worker: it holds one slot per core, takes run
// and run-list jobs from the engine, materialises each snapshot+artifact once
// per host, starts simulations with a private result directory, and writes
// each run's record and result files back to the engine.
package runner

import (
	"context"
	"encoding/json"
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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
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

	trees  treeCache
	stats  batchStats
	mu     sync.Mutex
	active map[string]map[*runCtx]bool // campaign -> running processes
	busy   int
	faults int // consecutive failures to prepare a run on this host
	// draining: finish the runs in progress, take no new jobs (set from
	// the dashboard through engine.DrainSubject).
	draining atomic.Bool
}

type runCtx struct {
	cancel context.CancelFunc
	runs   []string // "<campaign>.<run>" of the process
}

// Serve runs the slots until ctx ends. Running simulations are killed when
// ctx ends; their jobs go back to the queue when their lease runs out.
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
		r.ID = fmt.Sprintf("%s-%d", r.Host, os.Getpid())
	}
	r.active = map[string]map[*runCtx]bool{}
	r.trees.dir = r.Dir
	r.trees.eng = r.Eng
	r.trees.log = r.Log
	r.trees.max = r.CacheBytes
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return fmt.Errorf("runner cache dir: %w", err)
	}
	r.sweepScratch()
	runs, err := r.Eng.Jobs.Consumer(ctx, engine.ConsumerRun)
	if err != nil {
		return fmt.Errorf("runner: bind consumer: %w", err)
	}
	lists, err := r.Eng.Jobs.Consumer(ctx, engine.ConsumerList)
	if err != nil {
		return fmt.Errorf("runner: bind consumer: %w", err)
	}
	sub, err := r.Eng.NC.Subscribe(engine.SubjectCancel+".*", func(m *nats.Msg) {
		r.cancelCampaign(string(m.Data))
	})
	if err != nil {
		return fmt.Errorf("runner: subscribe: %w", err)
	}
	defer sub.Unsubscribe()
	drain, err := r.Eng.NC.Subscribe(engine.DrainSubject(r.ID), func(m *nats.Msg) {
		r.draining.Store(string(m.Data) != "resume")
		r.Log.Info("runner: drain", "draining", r.draining.Load())
	})
	if err != nil {
		return fmt.Errorf("runner: subscribe: %w", err)
	}
	defer drain.Unsubscribe()

	var wg sync.WaitGroup
	wg.Add(r.Slots + 2)
	go func() { defer wg.Done(); r.heartbeat(ctx) }()
	go func() { defer wg.Done(); r.serveLists(ctx, lists) }()
	for i := 0; i < r.Slots; i++ {
		go func() { defer wg.Done(); r.slot(ctx, runs) }()
	}
	wg.Wait()
	return nil
}

func (r *Runner) heartbeat(ctx context.Context) {
	var cache int64
	var measured time.Time
	r.Eng.Heartbeat(ctx, "runner."+keySafe(r.ID), func() simswarm.Worker {
		// Measuring the cache walks it: once a minute is enough.
		if time.Since(measured) > time.Minute {
			cache, measured = dirSize(r.Dir), time.Now()
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		w := simswarm.Worker{ID: r.ID, Host: r.Host, Role: "runner", Slots: r.Slots, Busy: r.busy,
			Version: simswarm.Version, Seen: time.Now(), CacheBytes: cache, Draining: r.draining.Load()}
		for _, m := range r.active {
			for rc := range m {
				w.Current = append(w.Current, rc.runs...)
			}
		}
		sort.Strings(w.Current)
		return w
	})
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

// slot takes run jobs one process at a time: one job, plus more of the same
// campaign when the batch policy says start-up is worth sharing.
func (r *Runner) slot(ctx context.Context, cons jetstream.Consumer) {
	for ctx.Err() == nil {
		var first []job
		for _, msg := range r.next(ctx, cons) {
			if j, ok := r.decode(ctx, msg); ok {
				first = append(first, j)
			}
		}
		if len(first) == 0 {
			continue
		}
		groups := [][]job{first}
		n := r.stats.size(first[0].BatchKey(), r.MaxBatch)
		if b := first[0].Batch; b > 0 {
			n = b
		}
		if first[0].Command.Kind != simswarm.KindOmnetpp {
			n = 1
		}
		if n > 1 {
			groups = r.fillBatch(ctx, cons, first, n-1)
		}
		for _, g := range groups {
			r.execute(ctx, g)
		}
	}
}

// next waits until this runner may take work (not paused after faults, not
// drained) and takes one job from cons, or none within a few seconds.
func (r *Runner) next(ctx context.Context, cons jetstream.Consumer) []jetstream.Msg {
	if d := r.pause(); d > 0 {
		sleep(ctx, d)
	}
	if r.draining.Load() {
		sleep(ctx, time.Second)
		return nil
	}
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	batch, err := cons.Fetch(1, jetstream.FetchContext(fctx))
	if err != nil {
		if ctx.Err() == nil {
			r.Log.Warn("runner: fetch", "err", err)
			sleep(ctx, time.Second)
		}
		return nil
	}
	var msgs []jetstream.Msg
	for msg := range batch.Messages() {
		if r.draining.Load() { // drained while this fetch waited
			_ = msg.Nak()
			continue
		}
		msgs = append(msgs, msg)
	}
	return msgs
}

// fillBatch adds up to n jobs that are waiting right now. Jobs of another
// campaign form groups of their own.
func (r *Runner) fillBatch(ctx context.Context, cons jetstream.Consumer, first []job, n int) [][]job {
	more, err := cons.FetchNoWait(n)
	if err != nil {
		return [][]job{first}
	}
	groups := map[string][]job{first[0].BatchKey(): first}
	order := []string{first[0].BatchKey()}
	for msg := range more.Messages() {
		j, ok := r.decode(ctx, msg)
		if !ok {
			continue
		}
		k := j.BatchKey()
		if _, seen := groups[k]; !seen {
			order = append(order, k)
		}
		groups[k] = append(groups[k], j)
	}
	out := make([][]job, 0, len(order))
	for _, k := range order {
		out = append(out, groups[k])
	}
	return out
}

type job struct {
	simswarm.RunJob
	msg     jetstream.Msg
	attempt int // runs of this job that failed on their own so far
}

func (r *Runner) decode(ctx context.Context, msg jetstream.Msg) (job, bool) {
	var j simswarm.RunJob
	if err := json.Unmarshal(msg.Data(), &j); err != nil {
		r.Log.Error("runner: drop malformed job", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return job{}, false
	}
	jb := job{RunJob: j, msg: msg}
	if j.Version != simswarm.Version {
		r.finish(ctx, jb, &simswarm.RunRecord{State: simswarm.RunFailed,
			Reason: fmt.Sprintf("client version %s does not match runner version %s", j.Version, simswarm.Version)})
		return job{}, false
	}
	if md, err := msg.Metadata(); err == nil && md.NumDelivered > engine.MaxDeliver {
		r.finish(ctx, jb, &simswarm.RunRecord{State: simswarm.RunFailed,
			Reason: fmt.Sprintf("gave up after %d deliveries: the workers that took it stopped", md.NumDelivered-1)})
		return job{}, false
	}
	return jb, true
}

// finish writes a run's record (under its key and in its campaign) and
// acknowledges the job. The record goes first: a job is only gone from the
// queue once its outcome is stored.
func (r *Runner) finish(ctx context.Context, j job, rec *simswarm.RunRecord) {
	rec.Key, rec.Campaign, rec.Run = j.Key, j.Campaign, j.Run
	rec.Worker, rec.Host = r.ID, r.Host
	if rec.Finished.IsZero() {
		rec.Finished = time.Now()
	}
	// Store writes must not be cut short by shutdown: the run is done.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	// The full record first, then the status: a client that sees a final
	// status must find the record it points to. The job is acknowledged
	// only once both are stored.
	if !rec.Reused && (rec.State == simswarm.RunSucceeded || rec.State == simswarm.RunFailed) {
		if err := engine.PutJSON(wctx, r.Eng.Runs, j.Key, rec); err != nil {
			r.Log.Error("runner: record run", "run", j.Run, "err", err)
			_ = j.msg.Nak()
			return
		}
	}
	if err := engine.PutJSON(wctx, r.Eng.Status, simswarm.StatusKey(j.Campaign, j.Run), rec.Compact()); err != nil {
		r.Log.Error("runner: record status", "run", j.Run, "err", err)
		_ = j.msg.Nak()
		return
	}
	_ = j.msg.Ack()
}

func (r *Runner) track(campaign string, rc *runCtx, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.active[campaign]
	if on {
		if m == nil {
			m = map[*runCtx]bool{}
			r.active[campaign] = m
		}
		m[rc] = true
		r.busy++
		return
	}
	delete(m, rc)
	if len(m) == 0 {
		delete(r.active, campaign)
	}
	r.busy--
}

func (r *Runner) cancelCampaign(campaign string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for rc := range r.active[campaign] {
		rc.cancel()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func keySafe(s string) string {
	out := []byte(s)
	for i, c := range out {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			out[i] = '_'
		}
	}
	return string(out)
}
