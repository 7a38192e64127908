package runner

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/simswarm/simswarm/internal/engine"
)

// A single server killed (SIGKILL) and started again hands out jobs whose
// holders are alive and still running or storing them: JetStream writes a
// consumer's state lazily (at most every 100 ms; an fsync policy syncs
// those writes but makes none sooner), so deliveries of its last moments are lost and come out again as
// first deliveries; and the pending ones it did write carry the time of
// their last renewal before the kill, so after a restart longer than the
// lease they are redelivered within a second or two, before their holders
// have reconnected to renew them. The stream's own writes (run records, the
// removal of acked jobs) are written through before they are acknowledged
// and survive a process kill.
//
// So a runner whose connection came back announces the jobs it still holds
// from before (engine.AnnounceHeld, every renewal period while it holds
// them), every runner keeps what the others announce, and a job taken
// within reconnectGrace of this runner's own reconnection waits until that
// grace is over (the other holders have reconnected and announced by then)
// and then for as long as another runner announces it. Only then is it
// checked against the store like any job that came back.

// reconnectGrace is how long after its own reconnection a runner waits
// before it starts a job taken meanwhile: long enough for the other
// runners, which retry every 0.5 s, to be back and say what they hold.
const reconnectGrace = 3 * time.Second

// doubt is what a runner knows about jobs that may be held elsewhere.
type doubt struct {
	mu          sync.Mutex
	reconnected time.Time           // the last time the engine connection came back
	elsewhere   map[uint64]heldNote // stream sequence -> who announced it, until when
	kick        chan struct{}       // a reconnection: announce at once
}

type heldNote struct {
	from  string
	until time.Time
}

func (d *doubt) init() {
	d.elsewhere = map[uint64]heldNote{}
	d.kick = make(chan struct{}, 1)
}

// onReconnect notes that the engine connection came back.
func (r *Runner) onReconnect() {
	r.Log.Info("runner: engine connection back; jobs taken now wait for the other runners to say what they hold", "grace", reconnectGrace)
	r.doubt.mu.Lock()
	r.doubt.reconnected = time.Now()
	r.doubt.mu.Unlock()
	select {
	case r.doubt.kick <- struct{}{}:
	default:
	}
	go r.recheckCancels(r.serveCtx)
}

// noteHeld records another runner's HeldNotice.
func (r *Runner) noteHeld(n engine.HeldNotice) {
	now := time.Now()
	until := now.Add(r.Eng.HeldNoticeFor())
	r.doubt.mu.Lock()
	defer r.doubt.mu.Unlock()
	for seq, h := range r.doubt.elsewhere {
		if now.After(h.until) {
			delete(r.doubt.elsewhere, seq)
		}
	}
	for _, seq := range n.Seqs {
		r.doubt.elsewhere[seq] = heldNote{from: n.From, until: until}
	}
}

// heldElsewhere names the runner that announced it still holds the job of
// stream sequence seq, if one did lately.
func (r *Runner) heldElsewhere(seq uint64) (string, bool) {
	r.doubt.mu.Lock()
	defer r.doubt.mu.Unlock()
	h, ok := r.doubt.elsewhere[seq]
	if !ok || time.Now().After(h.until) {
		return "", false
	}
	return h.from, true
}

// doubted says whether a job just taken may be held by another runner:
// it was taken within the grace after this runner's reconnection, or
// another runner announced it.
func (r *Runner) doubted(l *engine.Lease) bool {
	r.doubt.mu.Lock()
	rt := r.doubt.reconnected
	r.doubt.mu.Unlock()
	if !rt.IsZero() && !l.Taken.Before(rt) && l.Taken.Sub(rt) < reconnectGrace {
		return true
	}
	_, ok := r.heldElsewhere(l.Seq)
	return ok
}

// waitHolders waits, for a doubted job, until the grace after this runner's
// reconnection is over and no other runner announces the job any more. It
// returns false when ctx ended.
func (r *Runner) waitHolders(ctx context.Context, l *engine.Lease) bool {
	r.doubt.mu.Lock()
	end := r.doubt.reconnected.Add(reconnectGrace)
	r.doubt.mu.Unlock()
	if d := time.Until(end); d > 0 && !l.Taken.After(end) {
		sleep(ctx, d)
	}
	logged := false
	for ctx.Err() == nil {
		from, ok := r.heldElsewhere(l.Seq)
		if !ok {
			return true
		}
		if !logged {
			r.Log.Info("runner: a job handed out again waits for the runner still holding it", "subject", l.Subject(), "holder", from)
			logged = true
		}
		sleep(ctx, 250*time.Millisecond)
	}
	return false
}

// announceHeld publishes, after each reconnection and then every renewal
// period, the jobs this runner took before its last reconnection and still
// holds, until it holds none of them.
func (r *Runner) announceHeld(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.doubt.kick:
		}
		for ctx.Err() == nil {
			seqs := r.survivors()
			if len(seqs) == 0 {
				break
			}
			if err := r.Eng.AnnounceHeld(engine.HeldNotice{From: r.ID, Seqs: seqs}); err != nil {
				r.Log.Debug("runner: announce held jobs", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(r.Eng.RenewEvery()):
			case <-r.doubt.kick:
			}
		}
	}
}

// survivors lists the jobs this runner holds that it took before its last
// reconnection.
func (r *Runner) survivors() []uint64 {
	r.doubt.mu.Lock()
	rt := r.doubt.reconnected
	r.doubt.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint64
	for seq, l := range r.held {
		select {
		case <-l.Done():
			continue
		default:
		}
		if l.Taken.Before(rt) {
			out = append(out, seq)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}
