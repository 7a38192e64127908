package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/retry"
)

// Queue is one kind of job: builds, run lists, runs.
type Queue string

// The engine's queues, named as status shows them.
const (
	QueueBuild Queue = "build"
	QueueList  Queue = "list"
	QueueRun   Queue = "run"
)

// Queues lists every queue, in the order status shows them.
var Queues = []Queue{QueueBuild, QueueList, QueueRun}

func (q Queue) consumer() string {
	switch q {
	case QueueBuild:
		return ConsumerBuild
	case QueueList:
		return ConsumerList
	}
	return ConsumerRun
}

func (e *Engine) consumer(ctx context.Context, q Queue) (jetstream.Consumer, error) {
	e.consMu.Lock()
	defer e.consMu.Unlock()
	if c := e.cons[q]; c != nil {
		return c, nil
	}
	c, err := e.jobs.Consumer(ctx, q.consumer())
	if err != nil {
		return nil, fmt.Errorf("bind %s queue: %w", q, err)
	}
	e.cons[q] = c
	return c, nil
}

// SubmitBuild enqueues a build job.
func (e *Engine) SubmitBuild(ctx context.Context, j simswarm.BuildJob) error {
	return e.publish(ctx, subjectBuild, j)
}

// SubmitList enqueues a run-list job.
func (e *Engine) SubmitList(ctx context.Context, j simswarm.ListJob) error {
	return e.publish(ctx, subjectList, j)
}

func (e *Engine) publish(ctx context.Context, subject string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := e.js.Publish(ctx, subject, b); err != nil {
		return fmt.Errorf("enqueue %s: %w", subject, err)
	}
	return nil
}

// SubmitRuns enqueues n run jobs, job(i) giving the i-th, a window at a
// time: a campaign of any size streams into the engine without waiting for
// each acknowledgement, and without holding all its jobs in memory.
func (e *Engine) SubmitRuns(ctx context.Context, n int, job func(i int) simswarm.RunJob) error {
	return e.publishAll(ctx, n, func(i int) (string, any) {
		j := job(i)
		return runSubject(j.Campaign, j.Run), j
	})
}

// publishAll publishes n messages, msg(i) giving the i-th subject and
// value, a window at a time without waiting for each acknowledgement.
func (e *Engine) publishAll(ctx context.Context, n int, msg func(i int) (string, any)) error {
	const window = 1000
	for i := 0; i < n; i += window {
		var futures []jetstream.PubAckFuture
		for k := i; k < min(i+window, n); k++ {
			subject, v := msg(k)
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			f, err := e.js.PublishAsync(subject, b)
			if err != nil {
				return fmt.Errorf("publish %s: %w", subject, err)
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// Queued lists the runs of a campaign that have a job in the queue, taken
// or not: their outcome will come.
func (e *Engine) Queued(ctx context.Context, campaign string) (map[int]bool, error) {
	info, err := e.jobs.Info(ctx, jetstream.WithSubjectFilter(campaignSubjects(campaign)))
	if err != nil {
		return nil, fmt.Errorf("inspect queue: %w", err)
	}
	out := map[int]bool{}
	prefix := len(campaignSubjects(campaign)) - 1
	for subj := range info.State.Subjects {
		if n, err := strconv.Atoi(subj[prefix:]); err == nil {
			out[n] = true
		}
	}
	return out, nil
}

// Depth is how many jobs of a queue wait and how many workers hold.
type Depth struct {
	Name    string `json:"name"`    // a Queue
	Waiting uint64 `json:"waiting"` // not yet taken
	Taken   int    `json:"taken"`   // with a worker, not finished
}

// Depths reads every queue's depth.
func (e *Engine) Depths(ctx context.Context) ([]Depth, error) {
	var out []Depth
	for _, q := range Queues {
		c, err := e.consumer(ctx, q)
		if err != nil {
			return nil, err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("read queue %s: %w", q, err)
		}
		out = append(out, Depth{Name: string(q), Waiting: info.NumPending, Taken: info.NumAckPending})
	}
	return out, nil
}

// Take hands out up to n jobs of queue q, waiting up to wait for the first
// (0: only jobs waiting right now). Each comes as a Lease that this engine
// renews from this moment until it is acked, nak'd or terminated, wherever
// the job waits meanwhile.
func (e *Engine) Take(ctx context.Context, q Queue, n int, wait time.Duration) ([]*Lease, error) {
	c, err := e.consumer(ctx, q)
	if err != nil {
		return nil, err
	}
	// Fetch waits for all n; a taker that wants whatever is there asks for
	// what is waiting first and waits for one only when none is.
	batch, err := c.FetchNoWait(n)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("take %s jobs: %w", q, err)
	}
	got, err := e.collect(batch)
	if err != nil || len(got) > 0 || wait <= 0 {
		return got, err
	}
	return e.TakeOne(ctx, q, wait)
}

func (e *Engine) collect(batch jetstream.MessageBatch) ([]*Lease, error) {
	var out []*Lease
	for m := range batch.Messages() {
		l := &Lease{msg: m, eng: e, Taken: time.Now(), Conn: e.Conn(), done: make(chan struct{})}
		if md, err := m.Metadata(); err == nil {
			l.Delivered, l.Seq, l.Pending = int(md.NumDelivered), md.Sequence.Stream, md.NumPending
		}
		e.leases.add(l)
		out = append(out, l)
	}
	err := batch.Error()
	if errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		err = nil // nothing came: not an error
	}
	return out, err
}

// Lease is a job a worker holds. The engine renews it until Settle,
// Retry or GiveBack ends it (job.go); a worker that dies stops renewing, and the job goes
// to another worker when the lease runs out.
type Lease struct {
	msg   jetstream.Msg
	eng   *Engine
	Taken time.Time // when it was fetched
	// Conn is the engine connection it was taken on (Engine.Conn): a job
	// taken on a connection that came back may still be held by a worker
	// whose delivery a restarted server lost.
	Conn uint64
	// Delivered counts deliveries of the job, this one included.
	Delivered int
	// Seq is the job's stream sequence: a cancel names the last one it
	// covers.
	Seq uint64
	// Pending is how many jobs still waited in the queue when this one
	// was handed out.
	Pending uint64

	mu    sync.Mutex
	ended bool
	done  chan struct{}
}

// Done is closed when the lease ends: acked (its outcome stored first),
// given back or dropped.
func (l *Lease) Done() <-chan struct{} { return l.done }

// Data is the job as submitted.
func (l *Lease) Data() []byte { return l.msg.Data() }

// Subject is the job's subject.
func (l *Lease) Subject() string { return l.msg.Subject() }

func (l *Lease) end() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return false
	}
	l.ended = true
	close(l.done)
	l.eng.leases.remove(l)
	return true
}

// ack ends the lease: the job is done and leaves the queue. The server
// confirms it; a lost confirmation (the stream leader moved) is retried for
// a while, and an error is returned only when none came. Only Settle calls
// it, once the job's answer is stored: a job acked too early is lost with
// its worker.
func (l *Lease) ack(ctx context.Context) error {
	if !l.end() {
		return nil
	}
	err := retry.Do(ctx, retry.Policy{For: 30 * time.Second}, func(int) error {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err := l.msg.DoubleAck(actx)
		if errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			return nil
		}
		return err
	})
	if err != nil {
		l.eng.log().Warn("engine: acknowledge job", "subject", l.msg.Subject(), "err", err)
		return fmt.Errorf("acknowledge %s: %w", l.msg.Subject(), err)
	}
	return nil
}

// giveBack ends the lease and gives the job back for another delivery
// after delay (0: at once).
func (l *Lease) giveBack(delay time.Duration) {
	if !l.end() {
		return
	}
	var err error
	if delay > 0 {
		err = l.msg.NakWithDelay(delay)
	} else {
		err = l.msg.Nak()
	}
	if err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		// The lease lapses instead: the job comes back a little later.
		l.eng.log().Warn("engine: give job back", "subject", l.msg.Subject(), "err", err)
	}
}

// drop ends the lease and drops the job for good (it cannot be read).
func (l *Lease) drop() {
	if !l.end() {
		return
	}
	if err := l.msg.Term(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		l.eng.log().Warn("engine: drop job", "subject", l.msg.Subject(), "err", err)
	}
}

// leaseKeeper renews every lease an engine holds, from one goroutine: a
// runner's slots, prefetched jobs, batch members and runs waiting to be
// retried alike.
type leaseKeeper struct {
	eng     *Engine
	mu      sync.Mutex
	live    map[*Lease]struct{}
	running bool
	done    chan struct{}
	// renewals counts renewals sent (for benchmarks and tests).
	renewals uint64
}

func (k *leaseKeeper) add(l *Lease) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.live == nil {
		k.live = map[*Lease]struct{}{}
	}
	k.live[l] = struct{}{}
	if !k.running {
		k.running = true
		k.done = make(chan struct{})
		go k.loop(k.done)
	}
}

func (k *leaseKeeper) remove(l *Lease) {
	k.mu.Lock()
	delete(k.live, l)
	k.mu.Unlock()
}

func (k *leaseKeeper) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.running {
		close(k.done)
		k.running = false
	}
}

// renewEvery is how often held jobs are renewed: a third of the lease, so
// that two renewals in a row can be late or lost before the job lapses.
func (e *Engine) renewEvery() time.Duration {
	if e.Lease <= 0 {
		return DefaultLease / 3
	}
	return e.Lease / 3
}

func (k *leaseKeeper) loop(done chan struct{}) {
	t := time.NewTicker(k.eng.renewEvery())
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		k.mu.Lock()
		held := make([]*Lease, 0, len(k.live))
		for l := range k.live {
			held = append(held, l)
		}
		k.mu.Unlock()
		failed := 0
		var last error
		for _, l := range held {
			if err := l.msg.InProgress(); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
				failed++
				last = err
			}
		}
		k.mu.Lock()
		k.renewals += uint64(len(held) - failed)
		k.mu.Unlock()
		if failed > 0 {
			k.eng.log().Warn("engine: renew job leases", "failed", failed, "held", len(held), "err", last)
		}
	}
}

// held is how many leases this engine holds now, and renewals how many
// renewals it has sent.
func (e *Engine) held() (held int, renewals uint64) {
	e.leases.mu.Lock()
	defer e.leases.mu.Unlock()
	return len(e.leases.live), e.leases.renewals
}

// Cancel is what workers are told when a campaign is cancelled: its jobs up
// to stream sequence UpTo are void. Jobs a later submit enqueues come after.
type Cancel struct {
	Campaign string `json:"campaign"`
	UpTo     uint64 `json:"up_to"`
}

// CancelCampaign cancels a campaign: its record says cancelled (so a client
// following it stops waiting and submits nothing more), its waiting jobs
// are purged, and workers stop the ones they hold. It is the one
// definition of cancel, for Ctrl-C and the dashboard alike.
func (e *Engine) CancelCampaign(ctx context.Context, id string) error {
	if _, err := e.UpdateCampaign(ctx, id, func(c *simswarm.Campaign) bool {
		if c.State == simswarm.CampaignCancelled {
			return false
		}
		c.State = simswarm.CampaignCancelled
		return true
	}); err != nil && !errors.Is(err, ErrNoCampaign) {
		return err
	}
	info, err := e.jobs.Info(ctx)
	if err != nil {
		return fmt.Errorf("cancel campaign %s: %w", id, err)
	}
	if err := e.jobs.Purge(ctx, jetstream.WithPurgeSubject(campaignSubjects(id))); err != nil {
		return fmt.Errorf("purge the queue of campaign %s: %w", id, err)
	}
	b, _ := json.Marshal(Cancel{Campaign: id, UpTo: info.State.LastSeq})
	if err := e.nc.Publish(subjectCancel+"."+simswarm.Token(id), b); err != nil {
		return fmt.Errorf("tell runners to stop campaign %s: %w", id, err)
	}
	if err := e.nc.FlushTimeout(5 * time.Second); err != nil {
		return fmt.Errorf("tell runners to stop campaign %s: %w", id, err)
	}
	return nil
}

// OnCancel calls fn for every campaign cancel until stop is called.
func (e *Engine) OnCancel(fn func(Cancel)) (stop func(), err error) {
	sub, err := e.nc.Subscribe(subjectCancel+".*", func(m *nats.Msg) {
		var c Cancel
		if json.Unmarshal(m.Data, &c) == nil && c.Campaign != "" {
			fn(c)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to cancels: %w", err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// Drain tells the runner with id worker to finish its runs and take no
// more (on), or to take jobs again (off).
func (e *Engine) Drain(worker string, on bool) error {
	msg := "drain"
	if !on {
		msg = "resume"
	}
	if err := e.nc.Publish(subjectDrain+"."+simswarm.Token(worker), []byte(msg)); err != nil {
		return fmt.Errorf("tell worker %s: %w", worker, err)
	}
	return e.nc.FlushTimeout(5 * time.Second)
}

// OnDrain calls fn with true when the runner with id worker is drained and
// false when it may take jobs again, until stop is called.
func (e *Engine) OnDrain(worker string, fn func(on bool)) (stop func(), err error) {
	sub, err := e.nc.Subscribe(subjectDrain+"."+simswarm.Token(worker), func(m *nats.Msg) {
		fn(string(m.Data) != "resume")
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to drain: %w", err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// JobQuestion is what a worker asks the others about a job that came back
// to it: does anyone still hold an earlier delivery of it (the job's stream
// sequence), or hold the outcome it stored for the run key?
type JobQuestion struct {
	From string `json:"from"` // the asking worker, which does not answer itself
	Seq  uint64 `json:"seq"`
	Key  string `json:"key"`
}

// JobAnswer is a worker's answer: it still holds the job, or it stored
// this outcome of it (which the engine may have lost: a server killed
// before its last writes reached the disk).
type JobAnswer struct {
	Held    bool                `json:"held,omitempty"`
	Outcome *simswarm.RunRecord `json:"outcome,omitempty"`
}

// AnswerJobQuestions answers other workers' JobQuestions with fn until stop
// is called; fn returns nil where this worker knows nothing of the job, and
// then nothing is answered.
func (e *Engine) AnswerJobQuestions(worker string, fn func(JobQuestion) *JobAnswer) (stop func(), err error) {
	sub, err := e.nc.Subscribe(subjectJobs, func(m *nats.Msg) {
		var q JobQuestion
		if json.Unmarshal(m.Data, &q) != nil || q.From == worker {
			return
		}
		if a := fn(q); a != nil {
			b, _ := json.Marshal(a)
			_ = m.Respond(b)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to job questions: %w", err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// AskAboutJob asks every other worker about a job that came back and
// returns the first answer, or nil when none came within wait (nobody holds
// it, or its holder is gone).
func (e *Engine) AskAboutJob(ctx context.Context, q JobQuestion, wait time.Duration) *JobAnswer {
	b, _ := json.Marshal(q)
	rctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	m, err := e.nc.RequestWithContext(rctx, subjectJobs, b)
	if err != nil {
		return nil
	}
	var a JobAnswer
	if json.Unmarshal(m.Data, &a) != nil {
		return nil
	}
	return &a
}

// HeldNotice is what a worker whose engine connection came back publishes
// while it still holds jobs it took before: a single server killed and
// restarted may have lost those deliveries (JetStream writes a consumer's
// state lazily) or see their leases as lapsed, and hand the jobs out again,
// as first deliveries or later ones.
type HeldNotice struct {
	From string   `json:"from"`
	Seqs []uint64 `json:"seqs"` // the jobs' stream sequences
}

// AnnounceHeld publishes a HeldNotice. It is news, repeated by its sender
// every renewal period while it holds the jobs: a notice not repeated
// within HeldNoticeFor has lapsed.
func (e *Engine) AnnounceHeld(n HeldNotice) error {
	b, _ := json.Marshal(n)
	if err := e.nc.Publish(subjectHeld, b); err != nil {
		return fmt.Errorf("announce held jobs: %w", err)
	}
	return nil
}

// HeldNoticeFor is how long a HeldNotice stands unless repeated: three
// renewal periods, as for a lease.
func (e *Engine) HeldNoticeFor() time.Duration { return 3 * e.renewEvery() }

// RenewEvery is how often held jobs are renewed (and HeldNotices repeated).
func (e *Engine) RenewEvery() time.Duration { return e.renewEvery() }

// OnHeldNotice calls fn with the other workers' HeldNotices until stop is
// called.
func (e *Engine) OnHeldNotice(worker string, fn func(HeldNotice)) (stop func(), err error) {
	sub, err := e.nc.Subscribe(subjectHeld, func(m *nats.Msg) {
		var n HeldNotice
		if json.Unmarshal(m.Data, &n) == nil && n.From != worker {
			fn(n)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to held-job notices: %w", err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// PublishBuildProgress tells a waiting client how its build goes; it is
// news, not state: nobody listening loses nothing.
func (e *Engine) PublishBuildProgress(request string, p simswarm.BuildProgress) {
	b, _ := json.Marshal(p)
	_ = e.nc.Publish(subjectBuildLog+"."+simswarm.Token(request), b)
}

// OnBuildProgress calls fn with the progress of the build request.
func (e *Engine) OnBuildProgress(request string, fn func(simswarm.BuildProgress)) (stop func(), err error) {
	sub, err := e.nc.Subscribe(subjectBuildLog+"."+simswarm.Token(request), func(m *nats.Msg) {
		var p simswarm.BuildProgress
		if json.Unmarshal(m.Data, &p) == nil {
			fn(p)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to build progress: %w", err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// ResetConsumers recreates the work consumers so that every job in the
// queue is delivered afresh. Only safe when no worker elsewhere holds jobs:
// the embedded engine, whose state directory is locked to one process.
func (e *Engine) ResetConsumers(ctx context.Context) error {
	for _, name := range []string{ConsumerBuild, ConsumerList, ConsumerRun} {
		c, err := e.jobs.Consumer(ctx, name)
		if err != nil {
			return fmt.Errorf("reset consumer %s: %w", name, err)
		}
		if c.CachedInfo().NumAckPending == 0 {
			continue
		}
		cfg := c.CachedInfo().Config
		if err := e.jobs.DeleteConsumer(ctx, name); err != nil {
			return fmt.Errorf("reset consumer %s: %w", name, err)
		}
		if _, err := e.jobs.CreateConsumer(ctx, cfg); err != nil {
			return fmt.Errorf("reset consumer %s: %w", name, err)
		}
	}
	e.consMu.Lock()
	e.cons = map[Queue]jetstream.Consumer{}
	e.consMu.Unlock()
	return nil
}
