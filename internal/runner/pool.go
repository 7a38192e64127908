package runner

import (
	"context"
	"sync"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/retry"
)

// job is a run job this runner holds: its lease is renewed by the engine
// from the moment it was taken until it is acked or given back, wherever it
// waits (in the pool, in a batch, for a retry alone).
type job struct {
	simswarm.RunJob
	lease   *engine.Lease
	attempt int // runs of this job that failed on their own so far
}

// pool holds the jobs a runner has taken and not yet started, so that a
// slot whose process ends finds its next job already taken: the gap between
// two runs of a slot is the process start-up alone, not a round trip to the
// engine. One filler keeps it at about one group per slot.
type pool struct {
	r     *Runner
	mu    sync.Mutex
	wake  *sync.Cond
	ready []*job
	// admitting counts jobs taken and not yet in ready: those that came
	// back, or may be held elsewhere, wait for their earlier holder.
	admitting int
	free      int // slots waiting for a group
	group     int // the batch size the last group's campaign wants: what the next will want
	// prefetch: the last group's runs are short enough that holding the
	// next groups pays (measured). noPrefetchUntil: a held job waited too
	// long anyway, so for a while the pool takes jobs for free slots only.
	prefetch        bool
	noPrefetchUntil time.Time
	cancels         map[string]uint64 // campaign -> stream sequence its cancel covers
	closed          bool
}

// readyMax is how long a taken job may wait in the pool before it goes
// back to the queue, where a free slot elsewhere can take it.
const readyMax = 30 * time.Second

func newPool(r *Runner) *pool {
	p := &pool{r: r, group: 1, cancels: map[string]uint64{}}
	p.wake = sync.NewCond(&p.mu)
	return p
}

// want is how many jobs the pool should hold: a group for every free slot,
// and, while runs are short enough for it to matter, spare groups for a
// quarter of the busy slots. The filler tops the pool up as soon as a slot
// takes from it, so spares only cover slots ending within one round trip
// of each other; every held job costs a renewal every third of the lease.
func (p *pool) want() int {
	n := p.free
	if p.prefetch && time.Now().After(p.noPrefetchUntil) {
		n += max(1, (p.r.Slots-p.free+3)/4)
	}
	return min(n*p.group, p.r.Slots*p.r.MaxBatch)
}

// fill takes jobs from the engine until ctx ends.
func (p *pool) fill(ctx context.Context) {
	for ctx.Err() == nil {
		if d := p.r.pause(); d > 0 {
			retry.Sleep(ctx, d)
			continue
		}
		if p.r.draining.Load() || p.r.ending.Load() {
			p.giveBack()
			retry.Sleep(ctx, time.Second)
			continue
		}
		p.expire()
		p.mu.Lock()
		need := p.want() - len(p.ready) - p.admitting
		idle := p.free > 0
		p.mu.Unlock()
		if need <= 0 {
			p.waitChange(ctx, time.Second)
			continue
		}
		// With a slot free, wait for the next job to come; otherwise take
		// only what waits right now and look again soon.
		wait := 5 * time.Second
		if !idle {
			wait = 0
		}
		leases, err := p.r.Eng.Take(ctx, engine.QueueRun, need, wait)
		if err != nil {
			if ctx.Err() == nil {
				p.r.Log.Warn("runner: take jobs", "err", err)
				retry.Sleep(ctx, time.Second)
			}
			continue
		}
		if len(leases) == 0 && !idle {
			// Nothing waits: look again when a slot frees, not before.
			p.waitChange(ctx, 2*time.Second)
			continue
		}
		for _, l := range leases {
			// A job that comes back, or that may be held by another runner
			// after a reconnection, or whose earlier delivery this runner
			// still holds, waits for its earlier holder.
			if l.Delivered > 1 || p.r.doubted(l) || p.r.hold(l) != nil {
				p.mu.Lock()
				p.admitting++
				p.mu.Unlock()
				go func() {
					p.readmit(ctx, l)
					p.mu.Lock()
					p.admitting--
					p.mu.Unlock()
					p.wake.Broadcast()
				}()
				continue
			}
			if j, ok := p.r.admit(ctx, l, false); ok {
				p.add(ctx, j)
			}
		}
	}
	p.close()
}

// add puts a job in the pool, unless the runner is drained meanwhile or its
// campaign was cancelled.
func (p *pool) add(ctx context.Context, j *job) {
	p.mu.Lock()
	if upTo, ok := p.cancels[j.Campaign]; ok && j.lease.Seq <= upTo {
		p.mu.Unlock()
		p.r.dropCancelled(ctx, []*job{j})
		return
	}
	if p.r.draining.Load() || p.r.ending.Load() || p.closed {
		p.mu.Unlock()
		j.lease.GiveBack()
		return
	}
	p.ready = append(p.ready, j)
	p.mu.Unlock()
	p.wake.Broadcast()
}

// take blocks until a group is ready for a free slot and returns it; nil
// when the pool closed.
func (p *pool) take() []*job {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free++
	p.wake.Broadcast() // the filler sees a free slot
	defer func() { p.free-- }()
	for len(p.ready) == 0 && !p.closed {
		p.wake.Wait()
	}
	if p.closed {
		return nil
	}
	views := make([]*simswarm.RunJob, len(p.ready))
	for i, j := range p.ready {
		views[i] = &j.RunJob
	}
	idx := pick(views, p.free, p.r.stats.timing, p.r.MaxBatch)
	group := make([]*job, 0, len(idx))
	taken := make(map[int]bool, len(idx))
	for _, i := range idx {
		group = append(group, p.ready[i])
		taken[i] = true
	}
	rest := p.ready[:0]
	for i, j := range p.ready {
		if !taken[i] {
			rest = append(rest, j)
		}
	}
	for i := len(rest); i < len(p.ready); i++ {
		p.ready[i] = nil
	}
	p.ready = rest
	t := p.r.stats.timing(group[0].BatchKey())
	p.group = batchSize(&group[0].RunJob, t, p.r.MaxBatch)
	p.prefetch = t.Known && t.Startup+t.PerRun*time.Duration(len(group)) < readyMax/2
	p.wake.Broadcast()
	return group
}

// waitChange waits until a slot frees or a job arrives, at most d.
func (p *pool) waitChange(ctx context.Context, d time.Duration) {
	t := time.AfterFunc(d, p.wake.Broadcast)
	defer t.Stop()
	stop := context.AfterFunc(ctx, p.wake.Broadcast)
	defer stop()
	p.mu.Lock()
	if ctx.Err() == nil {
		p.wake.Wait()
	}
	p.mu.Unlock()
}

// expire gives back jobs that waited in the pool longer than readyMax: the
// campaign's runs are long, so holding their next jobs gains nothing and
// keeps them from free slots elsewhere.
func (p *pool) expire() {
	p.mu.Lock()
	var old []*job
	keep := p.ready[:0]
	for _, j := range p.ready {
		if time.Since(j.lease.Taken) > readyMax {
			old = append(old, j)
		} else {
			keep = append(keep, j)
		}
	}
	for i := len(keep); i < len(p.ready); i++ {
		p.ready[i] = nil
	}
	p.ready = keep
	if len(old) > 0 {
		p.noPrefetchUntil = time.Now().Add(time.Minute)
	}
	p.mu.Unlock()
	for _, j := range old {
		j.lease.GiveBack()
	}
}

// giveBack returns every job of the pool to the queue.
func (p *pool) giveBack() {
	p.mu.Lock()
	jobs := p.ready
	p.ready = nil
	p.mu.Unlock()
	for _, j := range jobs {
		j.lease.GiveBack()
	}
}

// cancel drops the pool's jobs of a cancelled campaign and remembers the
// cancel for jobs being taken right now.
func (p *pool) cancel(ctx context.Context, c engine.Cancel) []*job {
	p.mu.Lock()
	if c.UpTo > p.cancels[c.Campaign] {
		p.cancels[c.Campaign] = c.UpTo
	}
	var dropped []*job
	keep := p.ready[:0]
	for _, j := range p.ready {
		if j.Campaign == c.Campaign && j.lease.Seq <= c.UpTo {
			dropped = append(dropped, j)
		} else {
			keep = append(keep, j)
		}
	}
	p.ready = keep
	p.mu.Unlock()
	return dropped
}

// cancelled reports whether j belongs to a cancel seen by this runner.
func (p *pool) cancelled(j *job) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	upTo, ok := p.cancels[j.Campaign]
	return ok && j.lease.Seq <= upTo
}

func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	jobs := p.ready
	p.ready = nil
	p.mu.Unlock()
	p.wake.Broadcast()
	for _, j := range jobs {
		j.lease.GiveBack()
	}
}
