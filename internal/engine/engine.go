// Package engine is the JetStream side of simswarm: the embedded server, the
// stream of jobs, the key-value buckets that hold state and the object store
// that holds snapshots, artifacts and results. Clients and workers reach all of
// it only through a NATS connection, so the same code runs embedded or against
// a cluster.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names of the engine's stream, consumers and subjects: the wire contract
// between client, workers and dashboard, spoken only by this package.
const (
	StreamJobs    = "SIMSWARM_JOBS"
	subjectBuild  = "jobs.build"
	subjectList   = "jobs.list"
	subjectRun    = "jobs.run" // + ".<campaign>.<run>"
	ConsumerBuild = "builders"
	ConsumerList  = "listers"
	ConsumerRun   = "runners"
	BucketBlobs   = "simswarm_blobs"

	// subjectCancel + ".<campaign>" tells workers to stop a campaign's runs.
	subjectCancel = "simswarm.cancel"
	// subjectBuildLog + ".<request>" carries build output lines as they come.
	subjectBuildLog = "simswarm.buildlog"
	// subjectDrain + ".<worker>" tells one runner to finish its runs and take
	// no more; a message "resume" takes it back.
	subjectDrain = "simswarm.drain"
	// subjectJobs carries JobQuestions: a worker whose job came back asks
	// the others whether one still holds it or stored its outcome.
	subjectJobs = "simswarm.jobquestion"
	// subjectHeld carries HeldNotices: a worker whose connection came back
	// names the jobs it still holds from before.
	subjectHeld = "simswarm.jobsheld"
)

// DefaultLease is how long a job stays with a worker that shows no sign of
// life. Workers renew every job they hold every third of it from the moment
// they fetch it, so only a dead worker (SIGKILL, host lost) loses its jobs,
// and they go to another worker within the lease. A server may set another
// (simswarm server --lease); see docs/architecture.md for the choice.
const DefaultLease = 6 * time.Second

// MinLease is the shortest lease a server accepts: renewals every third of
// it must get through a loaded machine.
const MinLease = time.Second

// MaxDeliver bounds redelivery of a job whose workers keep dying on it.
const MaxDeliver = 10

func runSubject(campaign string, run int) string {
	return fmt.Sprintf("%s.%s.%d", subjectRun, campaign, run)
}

func campaignSubjects(campaign string) string {
	return subjectRun + "." + campaign + ".>"
}

// Bucket names a key-value bucket of the engine.
type Bucket string

// The engine's buckets.
const (
	BucketBuilds    Bucket = "simswarm_builds"
	BucketLists     Bucket = "simswarm_lists"
	BucketRuns      Bucket = "simswarm_runs"
	BucketStatus    Bucket = "simswarm_status"
	BucketCampaigns Bucket = "simswarm_campaigns"
	BucketWorkers   Bucket = "simswarm_workers"
)

// Engine is a connection to a simswarm engine with its streams and buckets
// bound. It is the only holder of JetStream handles: every other package
// speaks to the engine through its typed methods.
type Engine struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	jobs jetstream.Stream
	kv   map[Bucket]jetstream.KeyValue
	blob jetstream.ObjectStore
	// Lease is the job lease the server set up; workers renew at a third.
	Lease time.Duration
	// Log receives what the engine's retries and renewals see (nil: slog's
	// default logger).
	Log *slog.Logger

	consMu sync.Mutex
	cons   map[Queue]jetstream.Consumer
	leases leaseKeeper

	reconnMu sync.Mutex
	onReconn []func()
}

// asyncError logs what the connection reports on its own (a watch's
// consumer gone while the server is away, a slow subscriber) instead of
// the library's default, which writes raw lines to stderr: the retries and
// the client's own messages already say what matters to the user.
func asyncError(log *slog.Logger, sub *nats.Subscription, err error) {
	subject := ""
	if sub != nil {
		subject = sub.Subject
	}
	log.Info("engine: connection", "err", err, "subject", subject)
}

// quietErrors routes a connection's async errors to slog until an Engine
// takes the connection over (newEngine) with its own logger.
var quietErrors = nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
	asyncError(slog.Default(), sub, err)
})

func (e *Engine) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.Default()
}

// Close closes the engine's connection; leases still held lapse and go
// back to the queue.
func (e *Engine) Close() {
	e.leases.stop()
	e.nc.Close()
}

// Connected reports whether the connection to the server is up now (not
// closed, not reconnecting), as the connection last knew it.
func (e *Engine) Connected() bool { return e.nc.IsConnected() }

// Responds reports whether the server answers a round trip within d. A
// server killed a moment ago leaves a connection that still says it is
// up until it reads the close; a server cut off by the network, until
// pings go unanswered for minutes.
func (e *Engine) Responds(d time.Duration) bool {
	return e.nc.IsConnected() && e.nc.FlushTimeout(d) == nil
}

// Flush waits until the server has everything this connection sent.
func (e *Engine) Flush(timeout time.Duration) error { return e.nc.FlushTimeout(timeout) }

var buckets = []Bucket{BucketBuilds, BucketLists, BucketRuns, BucketStatus, BucketCampaigns, BucketWorkers}

// ErrNotEngine means the server answers but holds no simswarm engine.
var ErrNotEngine = errors.New("server has no simswarm engine (streams missing); start it with `simswarm server`")

// Setup creates or updates everything the engine needs and binds it. It is
// idempotent, so every embedded start and every `simswarm server` runs it.
// What is already configured as wanted is bound without an update: an
// embedded engine starts with every campaign, and each update has the
// server rewrite the object's metadata (about 18 ms of CPU per start for
// the eleven objects, in a profile of aloha campaigns).
func Setup(ctx context.Context, nc *nats.Conn, replicas int, lease time.Duration) (*Engine, error) {
	if replicas < 1 {
		replicas = 1
	}
	if lease <= 0 {
		lease = DefaultLease
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	e := newEngine(nc, js, lease)
	want := jetstream.StreamConfig{
		Name:        StreamJobs,
		Subjects:    []string{"jobs.>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  2 * time.Minute,
		AllowDirect: true,
	}
	if s, err := js.Stream(ctx, StreamJobs); err == nil && sameStream(s.CachedInfo().Config, want) {
		e.jobs = s
	} else if e.jobs, err = js.CreateOrUpdateStream(ctx, want); err != nil {
		return nil, fmt.Errorf("create job stream: %w", err)
	}
	for _, c := range []struct{ name, subject string }{
		{ConsumerBuild, subjectBuild},
		{ConsumerList, subjectList},
		{ConsumerRun, subjectRun + ".>"},
	} {
		want := jetstream.ConsumerConfig{
			Durable:       c.name,
			FilterSubject: c.subject,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       lease,
			MaxDeliver:    MaxDeliver + 1,
			MaxAckPending: 100000,
			Replicas:      replicas,
		}
		if have, err := e.jobs.Consumer(ctx, c.name); err == nil && sameConsumer(have.CachedInfo().Config, want) {
			continue
		}
		if _, err := e.jobs.CreateOrUpdateConsumer(ctx, want); err != nil {
			return nil, fmt.Errorf("create consumer %s: %w", c.name, err)
		}
	}
	for _, name := range buckets {
		cfg := jetstream.KeyValueConfig{Bucket: string(name), History: 1, Storage: jetstream.FileStorage, Replicas: replicas}
		if name == BucketWorkers {
			cfg.TTL = time.Minute
		}
		if b, ok := boundBucket(ctx, js, cfg); ok {
			e.kv[name] = b
			continue
		}
		b, err := js.CreateOrUpdateKeyValue(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", name, err)
		}
		e.kv[name] = b
	}
	blobs := jetstream.ObjectStoreConfig{Bucket: BucketBlobs, Storage: jetstream.FileStorage, Replicas: replicas}
	if o, ok := boundObjects(ctx, js, blobs); ok {
		e.blob = o
	} else if e.blob, err = js.CreateOrUpdateObjectStore(ctx, blobs); err != nil {
		return nil, fmt.Errorf("create object store: %w", err)
	}
	return e, nil
}

// sameStream says whether a stream has the settings Setup gives it.
func sameStream(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Retention == want.Retention && have.Storage == want.Storage &&
		sameReplicas(have.Replicas, want.Replicas) && have.Duplicates == want.Duplicates && have.AllowDirect == want.AllowDirect
}

// sameConsumer says whether a job queue's consumer has the settings Setup
// gives it: a server restarted with another --lease has its AckWait
// updated.
func sameConsumer(have, want jetstream.ConsumerConfig) bool {
	return have.FilterSubject == want.FilterSubject && len(have.FilterSubjects) == 0 && have.AckPolicy == want.AckPolicy &&
		have.AckWait == want.AckWait && have.MaxDeliver == want.MaxDeliver && have.MaxAckPending == want.MaxAckPending &&
		sameReplicas(have.Replicas, want.Replicas) && len(have.BackOff) == 0
}

// boundBucket binds a key-value bucket that exists with cfg's settings.
func boundBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, bool) {
	b, err := js.KeyValue(ctx, cfg.Bucket)
	if err != nil {
		return nil, false
	}
	st, err := b.Status(ctx)
	if err != nil {
		return nil, false
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return nil, false
	}
	info := bs.StreamInfo().Config
	return b, st.History() == int64(cfg.History) && st.TTL() == cfg.TTL && info.Storage == cfg.Storage && sameReplicas(info.Replicas, cfg.Replicas)
}

// boundObjects binds an object store that exists with cfg's settings.
func boundObjects(ctx context.Context, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, bool) {
	o, err := js.ObjectStore(ctx, cfg.Bucket)
	if err != nil {
		return nil, false
	}
	st, err := o.Status(ctx)
	return o, err == nil && st.Storage() == cfg.Storage && sameReplicas(st.Replicas(), cfg.Replicas) && st.TTL() == cfg.TTL
}

// sameReplicas: a server outside a cluster may report one replica as 0.
func sameReplicas(have, want int) bool { return max(have, 1) == max(want, 1) }

// Open binds an engine that a server already set up; it never creates
// anything, so pointing a client at the wrong server fails clearly.
func Open(ctx context.Context, nc *nats.Conn) (*Engine, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	e := newEngine(nc, js, DefaultLease)
	if e.jobs, err = js.Stream(ctx, StreamJobs); err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, ErrNotEngine
		}
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrNoResponders) {
			return nil, ErrNotEngine
		}
		return nil, fmt.Errorf("open job stream: %w", err)
	}
	for _, name := range buckets {
		b, err := js.KeyValue(ctx, string(name))
		if err != nil {
			return nil, fmt.Errorf("open bucket %s: %w", name, err)
		}
		e.kv[name] = b
	}
	if e.blob, err = js.ObjectStore(ctx, BucketBlobs); err != nil {
		return nil, fmt.Errorf("open object store: %w", err)
	}
	if c, err := e.jobs.Consumer(ctx, ConsumerRun); err == nil && c.CachedInfo().Config.AckWait > 0 {
		e.Lease = c.CachedInfo().Config.AckWait
		e.cons[QueueRun] = c
	}
	return e, nil
}

func newEngine(nc *nats.Conn, js jetstream.JetStream, lease time.Duration) *Engine {
	e := &Engine{nc: nc, js: js, Lease: lease, kv: map[Bucket]jetstream.KeyValue{}, cons: map[Queue]jetstream.Consumer{}}
	e.leases.eng = e
	// The engine owns its connection, so it owns the connection's one
	// reconnect handler and hands the event on (OnReconnect).
	nc.SetErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) { asyncError(e.log(), sub, err) })
	nc.SetReconnectHandler(func(*nats.Conn) {
		e.reconnMu.Lock()
		fns := append([]func(){}, e.onReconn...)
		e.reconnMu.Unlock()
		for _, fn := range fns {
			fn()
		}
	})
	return e
}

// Conn counts the times the engine's connection came back. The count grows
// before the first message of the new connection is read, while the
// OnReconnect functions run only later: a job can be taken on a connection
// whose return they have not announced yet.
func (e *Engine) Conn() uint64 { return e.nc.Stats().Reconnects }

// OnReconnect calls fn each time the engine's connection is re-established
// after it was lost (a server restarted, or the client moved to another
// server of a cluster).
func (e *Engine) OnReconnect(fn func()) {
	e.reconnMu.Lock()
	defer e.reconnMu.Unlock()
	e.onReconn = append(e.onReconn, fn)
}
