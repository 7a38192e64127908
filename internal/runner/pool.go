package runner

import (
	"context"
	"sync"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/retry"
	"github.com/simswarm/simswarm/internal/safedir"
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
	// released: jobs live runners gave back unstarted (engine.Released),
	// by stream sequence: the delivery given back and when.
	released map[uint64]releasedJob
	// hungry: other runners that said they have a free slot and found
	// the queue empty, and when they last said so.
	hungry map[string]time.Time
	// waiting: jobs the queue still held at the last take; slotsAll: the
	// slots of every runner on the engine (heartbeats), read at slotsAt.
	// Together they bound batches near the end of a campaign (share).
	waiting  uint64
	slotsAll int
	slotsAt  time.Time
	// stages: scratch stages kept for the slots' next runs (a slot's
	// stage and one its last run's recording still holds); the filler
	// removes those unused for stageIdle, all when it ends.
	stages safedir.Pool
}

// stageIdle is how long an emptied scratch stage waits for a run.
const stageIdle = 2 * time.Second

type releasedJob struct {
	delivered int
	at        time.Time
}

// hungryWait is how long a hungry runner waits for a job before it says
// again that it is hungry; hungryFor is how long that stands unless said
// again or answered (a runner that got jobs says it is fed).
const (
	hungryWait = 5 * time.Second
	hungryFor  = 2 * hungryWait
)

// maxGiveBacks bounds how often a job is given back to a hungry runner:
// each give-back is a delivery, and the engine gives up on a job after
// engine.MaxDeliver of them.
const maxGiveBacks = 2

// readyMax is how long a taken job may wait in the pool before it goes
// back to the queue, where a free slot elsewhere can take it.
const readyMax = 30 * time.Second

func newPool(r *Runner) *pool {
	p := &pool{r: r, group: 1, cancels: map[string]uint64{}, released: map[uint64]releasedJob{}, hungry: map[string]time.Time{},
		stages: safedir.Pool{Keep: []string{"results"}, Max: 2 * r.Slots}}
	p.wake = sync.NewCond(&p.mu)
	return p
}

// want is how many jobs the pool should hold: a group for every free slot,
// and spare groups for a quarter of the busy slots while runs are short
// enough for it to matter, the queue still holds a job for every slot of
// every runner (the last job taken said how many wait), and no other
// runner is hungry. Near the end of a campaign the pool holds nothing a
// slot elsewhere could start: each spare taken there would have to be
// given back, a delivery each time. The filler tops the pool up as soon
// as a slot takes from it, so spares only cover slots ending within one
// round trip of each other; every held job costs a renewal every third of
// the lease. p.mu is held.
func (p *pool) want() int {
	n := p.free
	if p.prefetch && time.Now().After(p.noPrefetchUntil) && !p.othersHungry() &&
		int(p.waiting) >= max(p.slotsAll, p.r.Slots) {
		n += max(1, (p.r.Slots-p.free+3)/4)
	}
	return min(n*p.group, p.r.Slots*p.r.MaxBatch)
}

// fill takes jobs from the engine until ctx ends.
func (p *pool) fill(ctx context.Context) {
	defer p.close()
	stopHungry, err := p.r.Eng.OnHungry(p.r.ID, p.onHungry)
	if err != nil {
		p.r.Log.Warn("runner: spare jobs are not given back to idle runners", "err", err)
	} else {
		defer stopHungry()
	}
	stopReleased, err := p.r.Eng.OnReleased(p.noteReleased)
	if err != nil {
		p.r.Log.Warn("runner: jobs other runners give back are checked as if their holder was lost", "err", err)
	} else {
		defer stopReleased()
	}
	// saidHungry: this runner said it is hungry and has not said since
	// that it got jobs.
	saidHungry := false
	say := func(free int) {
		if free > 0 && !saidHungry {
			p.r.Log.Info("runner: free slots and no job waiting: hungry", "free", free)
		}
		saidHungry = free > 0
		if err := p.r.Eng.AnnounceHungry(engine.Hungry{From: p.r.ID, Free: free}); err != nil {
			p.r.Log.Debug("runner: announce free slots", "free", free, "err", err)
		}
	}
	defer func() {
		if saidHungry {
			say(0)
		}
	}()
	defer p.stages.Close()
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
		p.stages.Expire(stageIdle)
		p.mu.Lock()
		need := p.want() - len(p.ready) - p.admitting
		free := p.free
		idle := free > 0
		p.mu.Unlock()
		if need <= 0 {
			p.waitChange(ctx, time.Second)
			continue
		}
		// Take what waits right now. With a slot free and nothing waiting,
		// the rest of the work is held unstarted by other runners, if
		// anywhere: say so, and wait for the next job to come.
		leases, err := p.r.Eng.Take(ctx, engine.QueueRun, need, 0)
		if err == nil && len(leases) == 0 && idle {
			say(free)
			leases, err = p.r.Eng.TakeOne(ctx, engine.QueueRun, hungryWait)
		}
		if err == nil {
			p.noteWaiting(ctx, leases)
		}
		if saidHungry && len(leases) >= free {
			// Fed only with a job for every free slot: a runner that says
			// so too early has the others take back as spares what it
			// still needs, and each give-back costs the job a delivery.
			say(0)
		}
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
			fresh := l.Delivered == 1 || p.releasedBefore(l)
			if !fresh || p.r.doubted(l) || p.r.hold(l) != nil {
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
		// Jobs taken while another runner said it is hungry, or asked for
		// before it said so, wait for no free slot here: they go back.
		p.shed()
	}
}

// shed gives back the spare jobs of a runner with no free slot while
// another runner is hungry.
func (p *pool) shed() {
	p.mu.Lock()
	var back []*job
	if p.free == 0 && !p.closed && len(p.ready) > 0 && p.othersHungry() {
		back = p.spares()
	}
	p.mu.Unlock()
	p.release(back, "taken while another runner is hungry")
}

// onHungry notes another runner's word: it has free slots and found the
// queue empty (Free > 0), or it got jobs. Near the end of a campaign, jobs
// this runner holds and cannot start now go back to the queue, where the
// free slots take them; while anyone stays hungry this runner takes jobs
// for its own free slots only. A runner with free slots of its own is
// hungry too: it gives back, when its last free slot takes a group, what
// is left (take).
func (p *pool) onHungry(h engine.Hungry) {
	p.mu.Lock()
	var back []*job
	if h.Free > 0 {
		p.hungry[h.From] = time.Now()
		if p.free == 0 && !p.closed {
			back = p.spares()
		}
	} else {
		delete(p.hungry, h.From)
	}
	p.mu.Unlock()
	p.release(back, "another runner is hungry")
}

// share is the most runs an adaptive batch should take: the jobs left
// (waiting in the queue and held here) spread over every runner's slots.
// A batch of more makes one slot run on after the others ran out of work:
// at the end of a campaign of 2-s runs, batches of 2 and 3 taken in the
// last rounds ran 2.8 s past the last single run. p.mu is held.
func (p *pool) share() int {
	slots := max(p.slotsAll, p.r.Slots, 1)
	return max(1, (int(p.waiting)+len(p.ready)+slots-1)/slots)
}

// slotsEvery is how often a runner counts the slots of all runners.
const slotsEvery = 10 * time.Second

// noteWaiting notes how many jobs the queue held when the last of leases
// was handed out, and now and then how many slots all runners have.
func (p *pool) noteWaiting(ctx context.Context, leases []*engine.Lease) {
	var waiting uint64
	if len(leases) > 0 {
		waiting = leases[len(leases)-1].Pending
	}
	p.mu.Lock()
	p.waiting = waiting
	stale := time.Since(p.slotsAt) > slotsEvery
	p.mu.Unlock()
	if !stale {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	heard, err := p.r.Eng.Workers(wctx)
	if err != nil {
		p.r.Log.Debug("runner: count the runners' slots", "err", err)
	}
	slots := 0
	for _, h := range heard {
		if h.Role == simswarm.RoleRunner && !h.Draining {
			slots += h.Slots
		}
	}
	p.mu.Lock()
	p.slotsAll, p.slotsAt = slots, time.Now()
	p.mu.Unlock()
}

// spares takes out of the pool the jobs that may go to a hungry runner;
// p.mu is held.
func (p *pool) spares() []*job {
	return p.remove(func(j *job) bool { return j.lease.Delivered <= maxGiveBacks })
}

// othersHungry reports whether another runner is hungry; p.mu is held.
func (p *pool) othersHungry() bool {
	for id, at := range p.hungry {
		if time.Since(at) > hungryFor {
			delete(p.hungry, id)
		}
	}
	return len(p.hungry) > 0
}

// release gives jobs back to the queue at once, naming them first so that
// whoever takes them next knows their holder let go (noteReleased).
func (p *pool) release(jobs []*job, why string) {
	if len(jobs) == 0 {
		return
	}
	p.r.Log.Info("runner: jobs given back", "jobs", len(jobs), "why", why)
	n := engine.Released{From: p.r.ID}
	for _, j := range jobs {
		n.Jobs = append(n.Jobs, j.lease.Released())
	}
	if err := p.r.Eng.AnnounceReleased(n); err != nil {
		p.r.Log.Debug("runner: announce jobs given back", "err", err)
	}
	for _, j := range jobs {
		j.lease.GiveBack()
	}
}

// releasedFor is how long a Released notice is kept: the jobs it names
// are taken again within moments, or by a runner that hears it later.
const releasedFor = time.Minute

func (p *pool) noteReleased(n engine.Released) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for seq, r := range p.released {
		if now.Sub(r.at) > releasedFor {
			delete(p.released, seq)
		}
	}
	for _, j := range n.Jobs {
		p.released[j.Seq] = releasedJob{delivered: j.Delivered, at: now}
	}
}

// releasedBefore reports whether l is the delivery right after one that a
// live runner gave back unstarted: nobody else can hold an earlier
// delivery, since that runner took it only after its own checks.
func (p *pool) releasedBefore(l *engine.Lease) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.released[l.Seq]
	return ok && r.delivered == l.Delivered-1
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
	idx := pick(views, p.free, p.r.stats.timing, min(p.r.MaxBatch, p.share()))
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
	if p.free == 1 && len(p.ready) > 0 && p.othersHungry() {
		// The last free slot is served; what is left could run elsewhere now.
		go p.release(p.spares(), "the last free slot here is served, another runner is hungry")
	}
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
	old := p.remove(func(j *job) bool { return time.Since(j.lease.Taken) > readyMax })
	if len(old) > 0 {
		p.noPrefetchUntil = time.Now().Add(time.Minute)
	}
	p.mu.Unlock()
	p.release(old, "waited too long for a slot")
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
	dropped := p.remove(func(j *job) bool { return j.Campaign == c.Campaign && j.lease.Seq <= c.UpTo })
	p.mu.Unlock()
	return dropped
}

// remove takes the jobs that match out of the pool; p.mu is held.
func (p *pool) remove(match func(*job) bool) []*job {
	var out []*job
	keep := p.ready[:0]
	for _, j := range p.ready {
		if match(j) {
			out = append(out, j)
		} else {
			keep = append(keep, j)
		}
	}
	for i := len(keep); i < len(p.ready); i++ {
		p.ready[i] = nil
	}
	p.ready = keep
	return out
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
