package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/retry"
)

// The life of a job, written once for every worker: take it, read it,
// refuse what cannot be tried here, try it, and settle it (store its
// answer, then acknowledge). A job leaves the queue only once its answer is
// stored, so a worker that dies holding one loses nothing: the job comes
// back when its lease runs out, and the last delivery is kept for an
// answer, so that no client waits for a job nobody will answer.

// Body is what a job carries: every job names the protocol version its
// client wrote it in.
type Body interface{ JobVersion() string }

// Job is a taken job, its body read.
type Job[T Body] struct {
	Body T
	*Lease
	// Refused says why the job is answered with a failure at once, without
	// being tried: another version wrote it, or every worker that took it
	// stopped on it and this is the delivery kept for the answer. Empty:
	// try it.
	Refused string
}

// Decode reads a taken job for a worker of the given role. A body that no
// worker can read is dropped for good: Decode returns an error and the lease
// is over.
func Decode[T Body](l *Lease, role simswarm.Role) (*Job[T], error) {
	var body T
	if err := json.Unmarshal(l.Data(), &body); err != nil {
		l.drop()
		return nil, fmt.Errorf("drop malformed job %s: %w", l.Subject(), err)
	}
	j := &Job[T]{Body: body, Lease: l}
	switch {
	case body.JobVersion() != simswarm.Version:
		j.Refused = fmt.Sprintf("client version %s does not match %s version %s", body.JobVersion(), role, simswarm.Version)
	case l.Delivered > MaxDeliver:
		j.Refused = fmt.Sprintf("gave up after %d deliveries: the %ss that took it stopped while it ran (see their logs)", l.Delivered-1, role)
	}
	return j, nil
}

// LastTry says that a fault on this delivery ends the job: a worker that
// cannot do it now answers it with a failure instead of giving it back.
// This is the one give-up rule; Retry applies it.
func (l *Lease) LastTry() bool { return l.Delivered >= MaxDeliver }

// Retry gives the job back for another try after delay, on this worker or
// another, after a fault of this host (not of the job). On the last try it
// gives nothing back and returns false: the caller settles the job with a
// failure naming the fault.
func (l *Lease) Retry(delay time.Duration) bool {
	if l.LastTry() {
		return false
	}
	l.giveBack(delay)
	return true
}

// GiveBack returns a job this worker will not try (it stops, drains, or
// held the job too long unstarted) to the queue at once. A job given back
// does not count as a try that failed.
func (l *Lease) GiveBack() { l.giveBack(0) }

// SettleFor bounds how long a worker keeps storing an answer after its own
// context ended: the job is done, and giving up would do it again; long
// enough for a stream leader to move, several times over.
const SettleFor = 10 * time.Minute

// An Answer is what settles a job: a record that the engine stores before
// the job is acknowledged.
type Answer struct {
	what   string
	store  func(ctx context.Context, e *Engine) error
	stored func()
}

// OnStored has fn called once the answer is stored, before the job is
// acknowledged: a worker that remembers what it stored must remember it
// while the acknowledgement may still be lost.
func (a Answer) OnStored(fn func()) Answer {
	a.stored = fn
	return a
}

// RunAnswer answers a run job with its outcome: the full record (for runs
// that ran) and the compact one in its campaign.
func RunAnswer(rec *simswarm.RunRecord) Answer {
	return Answer{what: fmt.Sprintf("run %d of %s", rec.Run, rec.Campaign), store: func(ctx context.Context, e *Engine) error {
		return e.recordRun(ctx, rec)
	}}
}

// StatusAnswer answers a run job whose full record is stored already (the
// job came back because its acknowledgement was lost): only the compact
// record in its campaign is written again.
func StatusAnswer(rec *simswarm.RunRecord) Answer {
	return Answer{what: fmt.Sprintf("run %d of %s", rec.Run, rec.Campaign), store: func(ctx context.Context, e *Engine) error {
		return e.recordStatus(ctx, rec)
	}}
}

// BuildAnswer answers a build job. A successful build also becomes its
// project's last build, which seeds the next build's estimate.
func BuildAnswer(project string, rec *simswarm.BuildRecord) Answer {
	return Answer{what: "build " + simswarm.Short(rec.Key), store: func(ctx context.Context, e *Engine) error {
		if rec.State == simswarm.BuildSucceeded {
			last := simswarm.BuildRecord{Key: rec.Key, State: simswarm.BuildSucceeded, Artifact: rec.Artifact, Finished: rec.Finished}
			if err := e.putUntilStored(ctx, BucketBuilds, simswarm.LastBuildKey(project), &last); err != nil {
				// Only an estimate is lost: the build itself is answered.
				e.log().Warn("engine: record the project's last build", "project", project, "err", err)
			}
		}
		return e.putUntilStored(ctx, BucketBuilds, rec.Key, rec)
	}}
}

// ListAnswer answers a run-list job.
func ListAnswer(rl *simswarm.RunList) Answer {
	return Answer{what: "run list " + simswarm.Short(rl.Key), store: func(ctx context.Context, e *Engine) error {
		return e.putUntilStored(ctx, BucketLists, rl.Key, rl)
	}}
}

// Settle stores the job's answer, trying again until it is stored (on a
// context that outlives ctx's cancellation by at most SettleFor), then
// acknowledges the job. When the answer cannot be stored, the job goes
// back to the queue and Settle says why. An acknowledgement that is lost
// after the answer was stored is only logged: the job's next delivery
// finds its answer stored.
func (l *Lease) Settle(ctx context.Context, a Answer) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), SettleFor)
	defer cancel()
	if err := a.store(sctx, l.eng); err != nil {
		l.giveBack(0)
		return fmt.Errorf("store the answer of %s; its job goes back to the queue: %w", a.what, err)
	}
	if a.stored != nil {
		a.stored()
	}
	if err := l.ack(sctx); err != nil {
		l.eng.log().Warn("engine: acknowledge a settled job", "job", a.what, "err", err)
	}
	return nil
}

// Store writes an answer without a job to settle, trying again until it
// is stored or ctx ends: an outcome the engine lost, written back by the
// worker that remembers it, or a client's note that a run is done.
func (e *Engine) Store(ctx context.Context, a Answer) error {
	if err := a.store(ctx, e); err != nil {
		return fmt.Errorf("store %s: %w", a.what, err)
	}
	return nil
}

// A Handler does one taken job to its end: it settles it, retries it or
// gives it back.
type Handler interface {
	Handle(ctx context.Context, l *Lease)
}

// Loop is how a worker takes the jobs of one queue, one at a time.
type Loop struct {
	Queue Queue
	Log   *slog.Logger
	// Wait, when set, is how long to wait before the next take: a host
	// pausing after faults, or one being drained. It is asked again after.
	Wait func() time.Duration
	// Busy, when set, is told when a job starts (true) and ends.
	Busy func(bool)
}

// takeWait is how long one take waits for a job: the loop looks at ctx,
// Wait and its worker's drain this often while the queue is empty.
const takeWait = 5 * time.Second

// Serve takes and handles jobs until ctx ends. A failed take (the engine
// out of reach) is tried again a second later.
func (e *Engine) Serve(ctx context.Context, loop Loop, h Handler) {
	log := loop.Log
	if log == nil {
		log = e.log()
	}
	for ctx.Err() == nil {
		if loop.Wait != nil {
			if d := loop.Wait(); d > 0 {
				retry.Sleep(ctx, d)
				continue
			}
		}
		leases, err := e.Take(ctx, loop.Queue, 1, takeWait)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("take a job", "queue", loop.Queue, "err", err)
				retry.Sleep(ctx, time.Second)
			}
			continue
		}
		for _, l := range leases {
			if loop.Busy != nil {
				loop.Busy(true)
			}
			h.Handle(ctx, l)
			if loop.Busy != nil {
				loop.Busy(false)
			}
		}
	}
}

// WorkerID names a worker process on host: one host may run several.
func WorkerID(host, kind string) string {
	if kind == "" {
		return fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	return fmt.Sprintf("%s-%s-%d", host, kind, os.Getpid())
}

// Exits are the reasons a worker that is a batch job (a Slurm pilot, a
// build job) ends by itself, releasing its allocation: nothing to do for
// Idle, no engine for Lost (its client was killed), or Ending (its job's
// end is near) once it is idle. Zero values never end it.
type Exits struct {
	Idle, Lost time.Duration
	Ending     func() bool
	// Work is what the worker does, for the reason it ends: "nothing to
	// run for 1m".
	Work string
}

// exitTick is how often WatchExits looks.
const exitTick = 250 * time.Millisecond

// WatchExits calls stop, naming why, once one of x's reasons holds; idle
// says whether the worker holds and runs nothing. It returns when ctx
// ends or after stop.
func (e *Engine) WatchExits(ctx context.Context, x Exits, idle func() bool, stop func(why string)) {
	if x.Idle <= 0 && x.Lost <= 0 && x.Ending == nil {
		return
	}
	t := time.NewTicker(exitTick)
	defer t.Stop()
	idleSince, lostSince := time.Now(), time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			still := idle()
			switch {
			case !still:
				idleSince = time.Time{}
			case idleSince.IsZero():
				idleSince = now
			}
			switch {
			case e.Connected():
				lostSince = time.Time{}
			case lostSince.IsZero():
				lostSince = now
			}
			var why string
			switch {
			case x.Idle > 0 && !idleSince.IsZero() && now.Sub(idleSince) >= x.Idle:
				why = "nothing to " + cmp.Or(x.Work, "do") + " for " + x.Idle.String()
			case x.Lost > 0 && !lostSince.IsZero() && now.Sub(lostSince) >= x.Lost:
				why = "no engine for " + x.Lost.String()
			case x.Ending != nil && x.Ending() && still:
				why = "its host's end is near"
			}
			if why != "" {
				stop(why)
				return
			}
		}
	}
}
