package runner

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/retry"
)

// Every answer to "was this job done already?" lives here: a job taken is
// admitted (answered at once from the store when its run is done), a job
// that came back waits for an earlier holder of it (here, or another
// runner after a reconnection) and asks the other runners before it runs,
// and this runner answers their questions from what it holds and what it
// stored lately. A run done twice is the failure all of this prevents.

// admit decodes a taken job and answers at once the ones that need no
// process: malformed, from another version, given up on, or already done.
// A job that came back (again: whether it came back) is looked up harder.
func (r *Runner) admit(ctx context.Context, l *engine.Lease, again bool) (*job, bool) {
	taken, err := engine.Decode[simswarm.RunJob](l, simswarm.RoleRunner)
	if err != nil {
		r.Log.Error("runner: " + err.Error())
		return nil, false
	}
	j := &job{RunJob: taken.Body, lease: l}
	if taken.Refused != "" {
		r.finish(ctx, j, &simswarm.RunRecord{State: simswarm.RunFailed, Reason: taken.Refused})
		return nil, false
	}
	if r.answerStored(ctx, j, again) {
		return nil, false
	}
	return j, true
}

// answerStored finishes a job whose outcome is already stored: its run
// succeeded under the same key (in this campaign or another: a finished run
// is never redone), or this very submission's job already ran (it came back
// because its acknowledgement was lost). For a job that came back (again),
// a miss is checked with the stream leader and the other runners.
func (r *Runner) answerStored(ctx context.Context, j *job, again bool) bool {
	prev, ok, err := r.Eng.Run(ctx, j.Key)
	if (err != nil || !ok) && again {
		prev, ok, err = r.Eng.RunSettled(ctx, j.Key, 15*time.Second)
		if err == nil && !ok {
			prev = r.settledElsewhere(ctx, j)
			ok = prev != nil
		}
	}
	if err != nil || !ok {
		return false
	}
	sameJob := j.Submission != "" && prev.Submission == j.Submission && prev.Done()
	if prev.State != simswarm.RunSucceeded && !sameJob {
		return false
	}
	// Results written straight into a client's directory, or delivered to
	// it and released from the store, are not in the store: for another
	// job they count only for that directory, and only while its files are
	// still there. This job's own outcome is answered wherever its files
	// went.
	if !sameJob && prev.LocalDir != "" && (prev.LocalDir != j.Local || !r.local(j) || !filesPresent(prev.LocalDir, prev.Files)) {
		return false
	}
	r.Log.Info("run answered from the store", "campaign", j.Campaign, "run", j.Run, "same_job", sameJob)
	if !sameJob {
		prev.Reused = true
		r.finish(ctx, j, prev)
		return true
	}
	// This job's own outcome, stored before its ack was lost: its status
	// again (where and how it ran), and the ack.
	prev.Campaign, prev.Run = j.Campaign, j.Run
	if err := j.lease.Settle(ctx, engine.StatusAnswer(prev)); err != nil {
		r.Log.Error("runner: "+err.Error(), "campaign", j.Campaign, "run", j.Run)
	}
	return true
}

func filesPresent(dir string, files []simswarm.File) bool {
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f.Name)))
		if err != nil || fi.Size() != f.Size {
			return false
		}
	}
	return true
}

// readmit admits a job that comes back, or may be held elsewhere. When this
// runner or another still holds an earlier delivery of it (its lease
// lapsed while the engine was out of reach, or a restarted server lost its
// delivery), that one's outcome, once stored, answers this one: running it
// again would do the run twice.
func (p *pool) readmit(ctx context.Context, l *engine.Lease) {
	for earlier := p.r.hold(l); earlier != nil; earlier = p.r.hold(l) {
		select {
		case <-earlier:
		case <-ctx.Done():
			l.GiveBack()
			return
		}
	}
	if !p.r.waitHolders(ctx, l) {
		l.GiveBack()
		return
	}
	if j, ok := p.r.admit(ctx, l, true); ok {
		p.add(ctx, j)
	}
}

// hold notes that this runner holds the job of l until its lease ends. When
// an earlier delivery of the same job is still held here, hold returns what
// closes when that one ends.
func (r *Runner) hold(l *engine.Lease) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if earlier, ok := r.held[l.Seq]; ok && earlier != l {
		select {
		case <-earlier.Done():
		default:
			return earlier.Done()
		}
	}
	r.held[l.Seq] = l
	go func() {
		<-l.Done()
		r.mu.Lock()
		if r.held[l.Seq] == l {
			delete(r.held, l.Seq)
		}
		r.mu.Unlock()
	}()
	return nil
}

// askFor is how long a runner whose job came back waits for another
// runner to say it holds the job or its outcome: every runner on the
// engine's connection answers at once, so silence means nobody.
const askFor = 500 * time.Millisecond

// settledElsewhere looks for the outcome of a job that came back and whose
// run has no record: another runner (or this one) may still hold an
// earlier delivery of it (its lease lapsed while a server was lost), or may
// have stored the outcome on a server killed before it wrote it to disk.
// A held job is waited for; an outcome held in a runner's memory is stored
// again. It returns nil when nobody knows the job: it runs.
func (r *Runner) settledElsewhere(ctx context.Context, j *job) *simswarm.RunRecord {
	for ctx.Err() == nil {
		if rec := r.recalled(j.Key); rec != nil {
			return r.storeAgain(ctx, j, rec, r.ID)
		}
		a := r.Eng.AskAboutJob(ctx, engine.JobQuestion{From: r.ID, Seq: j.lease.Seq, Key: j.Key}, askFor)
		switch {
		case a == nil:
			return nil
		case a.Outcome != nil:
			return r.storeAgain(ctx, j, a.Outcome, a.Outcome.Worker)
		}
		r.Log.Info("runner: a job that came back waits for the runner still holding it", "campaign", j.Campaign, "run", j.Run)
		retry.Sleep(ctx, time.Second)
		if prev, ok, err := r.Eng.RunSettled(ctx, j.Key, 15*time.Second); err == nil && ok {
			return prev
		}
	}
	return nil
}

// storeAgain writes an outcome the engine lost back into it.
func (r *Runner) storeAgain(ctx context.Context, j *job, rec *simswarm.RunRecord, from string) *simswarm.RunRecord {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), engine.SettleFor)
	defer cancel()
	if err := r.Eng.Store(wctx, engine.RunAnswer(rec)); err != nil {
		r.Log.Error("runner: store again an outcome the engine lost", "campaign", j.Campaign, "run", j.Run, "err", err)
		return nil
	}
	r.Log.Warn("runner: the engine had lost a stored outcome; stored it again", "campaign", j.Campaign, "run", j.Run, "from", from)
	return rec
}

// remembered is an outcome this runner stored, and when.
type remembered struct {
	rec *simswarm.RunRecord
	at  time.Time
}

// How long and how many stored outcomes a runner keeps in memory, and the
// largest one (inline result files) it keeps.
const (
	rememberFor   = 10 * time.Minute
	rememberMax   = 4096
	rememberBytes = 256 << 10
)

func (r *Runner) remember(rec *simswarm.RunRecord) {
	size := 0
	for _, f := range rec.Files {
		size += len(f.Data)
	}
	if size > rememberBytes {
		return
	}
	r.recentMu.Lock()
	defer r.recentMu.Unlock()
	now := time.Now()
	if len(r.recent) >= rememberMax {
		for k, m := range r.recent {
			if now.Sub(m.at) > rememberFor || len(r.recent) >= rememberMax {
				delete(r.recent, k)
			}
		}
	}
	r.recent[rec.Key] = remembered{rec: rec, at: now}
}

// recalled is the outcome of key this runner stored lately, if any.
func (r *Runner) recalled(key string) *simswarm.RunRecord {
	r.recentMu.Lock()
	defer r.recentMu.Unlock()
	m, ok := r.recent[key]
	if !ok || time.Since(m.at) > rememberFor {
		return nil
	}
	return m.rec
}

// answerJob answers another runner asking about a job that came back to it.
func (r *Runner) answerJob(q engine.JobQuestion) *engine.JobAnswer {
	if r.holds(q.Seq) {
		return &engine.JobAnswer{Held: true}
	}
	if rec := r.recalled(q.Key); rec != nil {
		return &engine.JobAnswer{Outcome: rec}
	}
	return nil
}

// holds says whether this runner holds the job of stream sequence seq.
func (r *Runner) holds(seq uint64) bool {
	r.mu.Lock()
	l, ok := r.held[seq]
	r.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case <-l.Done():
		return false
	default:
		return true
	}
}

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
	conn        uint64              // the engine connection then (Engine.Conn)
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
	r.doubt.conn = r.Eng.Conn()
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
// it was taken on a connection whose return this runner has not heard of
// yet (the connection delivers before it announces its return), or within
// the grace after this runner's reconnection, or another runner announced
// it.
func (r *Runner) doubted(l *engine.Lease) bool {
	r.doubt.mu.Lock()
	rt, conn := r.doubt.reconnected, r.doubt.conn
	r.doubt.mu.Unlock()
	if l.Conn > conn || !rt.IsZero() && !l.Taken.Before(rt) && l.Taken.Sub(rt) < reconnectGrace {
		return true
	}
	_, ok := r.heldElsewhere(l.Seq)
	return ok
}

// waitHolders waits, for a doubted job, until the grace after this runner's
// reconnection is over and no other runner announces the job any more. It
// returns false when ctx ended.
func (r *Runner) waitHolders(ctx context.Context, l *engine.Lease) bool {
	end, ok := r.graceEnd(ctx, l)
	if !ok {
		return false
	}
	if d := time.Until(end); d > 0 {
		retry.Sleep(ctx, d)
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
		retry.Sleep(ctx, 250*time.Millisecond)
	}
	return false
}

// graceEnd is when the grace ends for a job taken on l's connection: the
// grace after the reconnection it was taken on, once this runner has heard
// of that reconnection, or none for a job taken after it. (Not heard of
// within a grace, which the reconnect handler never takes: a grace from
// now.)
func (r *Runner) graceEnd(ctx context.Context, l *engine.Lease) (time.Time, bool) {
	start := time.Now()
	for {
		r.doubt.mu.Lock()
		rt, conn := r.doubt.reconnected, r.doubt.conn
		r.doubt.mu.Unlock()
		if conn >= l.Conn {
			end := rt.Add(reconnectGrace)
			if l.Taken.After(end) && conn == l.Conn {
				return time.Time{}, true
			}
			return end, true
		}
		if time.Since(start) >= reconnectGrace {
			return time.Now().Add(reconnectGrace), true
		}
		if !retry.Sleep(ctx, 20*time.Millisecond) {
			return time.Time{}, false
		}
	}
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

// survivors lists the jobs this runner holds that it took on a connection
// before its last reconnection.
func (r *Runner) survivors() []uint64 {
	r.doubt.mu.Lock()
	conn := r.doubt.conn
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
		if l.Conn < conn {
			out = append(out, seq)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}
