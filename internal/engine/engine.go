// Package engine is the JetStream side of simswarm: the embedded server, the
// stream of jobs, the key-value buckets that hold state and the object store
// that holds snapshots, artifacts and results. Clients and workers reach all of
// it only through a NATS connection, so the same code runs embedded or against
// a cluster.
package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/simswarm/simswarm"
)

// Names of everything the engine holds. They are the contract between client,
// workers and dashboard.
const (
	StreamJobs    = "SIMSWARM_JOBS"
	SubjectBuild  = "jobs.build"
	SubjectList   = "jobs.list"
	SubjectRun    = "jobs.run" // + ".<campaign>.<run>"
	ConsumerBuild = "builders"
	ConsumerList  = "listers"
	ConsumerRun   = "runners"

	BucketBuilds    = "simswarm_builds"
	BucketLists     = "simswarm_lists"
	BucketRuns      = "simswarm_runs"
	BucketStatus    = "simswarm_status"
	BucketCampaigns = "simswarm_campaigns"
	BucketWorkers   = "simswarm_workers"
	BucketBlobs     = "simswarm_blobs"

	// SubjectCancel + ".<campaign>" tells workers to kill a campaign's runs.
	SubjectCancel = "simswarm.cancel"
	// SubjectBuildLog + ".<request>" carries build output lines as they come.
	SubjectBuildLog = "simswarm.buildlog"
	// SubjectDrain + ".<worker>" tells one runner to finish its runs and take
	// no more; a message "resume" takes it back. See DrainSubject.
	SubjectDrain = "simswarm.drain"
)

// DrainSubject is the subject that drains the runner with id worker. Worker
// ids hold host names, whose dots would split a subject token.
func DrainSubject(worker string) string {
	b := []byte(worker)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return SubjectDrain + "." + string(b)
}

// DefaultLease is how long a job stays with a worker without a sign of life;
// running jobs renew it well before it runs out, so only dead workers lose
// theirs. A server may set another (simswarm server --lease).
const DefaultLease = 30 * time.Second

// MaxDeliver bounds redelivery of a job whose workers keep dying on it.
const MaxDeliver = 10

// RunSubject is the subject of a run job.
func RunSubject(campaign string, run int) string {
	return fmt.Sprintf("%s.%s.%d", SubjectRun, campaign, run)
}

// CampaignSubjects matches every run job of a campaign.
func CampaignSubjects(campaign string) string {
	return SubjectRun + "." + campaign + ".>"
}

// Engine is a connection to a simswarm engine with its streams and buckets bound.
type Engine struct {
	NC        *nats.Conn
	JS        jetstream.JetStream
	Jobs      jetstream.Stream
	Builds    jetstream.KeyValue
	Lists     jetstream.KeyValue
	Runs      jetstream.KeyValue
	Status    jetstream.KeyValue
	Campaigns jetstream.KeyValue
	Workers   jetstream.KeyValue
	Blobs     jetstream.ObjectStore
	// Lease is the job lease the server set up; workers renew at a third.
	Lease time.Duration
}

// ErrNotEngine means the server answers but holds no simswarm engine.
var ErrNotEngine = errors.New("server has no simswarm engine (streams missing); start it with `simswarm server`")

// Setup creates or updates everything the engine needs and binds it. It is
// idempotent, so every embedded start and every `simswarm server` runs it.
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
	e := &Engine{NC: nc, JS: js, Lease: lease}
	e.Jobs, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamJobs,
		Subjects:    []string{"jobs.>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  2 * time.Minute,
		AllowDirect: true,
	})
	if err != nil {
		return nil, fmt.Errorf("create job stream: %w", err)
	}
	for _, c := range []struct{ name, subject string }{
		{ConsumerBuild, SubjectBuild},
		{ConsumerList, SubjectList},
		{ConsumerRun, SubjectRun + ".>"},
	} {
		_, err := e.Jobs.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       c.name,
			FilterSubject: c.subject,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       lease,
			MaxDeliver:    MaxDeliver + 1,
			MaxAckPending: 100000,
			Replicas:      replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("create consumer %s: %w", c.name, err)
		}
	}
	kvs := []struct {
		dst *jetstream.KeyValue
		cfg jetstream.KeyValueConfig
	}{
		{&e.Builds, jetstream.KeyValueConfig{Bucket: BucketBuilds, History: 1}},
		{&e.Lists, jetstream.KeyValueConfig{Bucket: BucketLists, History: 1}},
		{&e.Runs, jetstream.KeyValueConfig{Bucket: BucketRuns, History: 1}},
		{&e.Status, jetstream.KeyValueConfig{Bucket: BucketStatus, History: 1}},
		{&e.Campaigns, jetstream.KeyValueConfig{Bucket: BucketCampaigns, History: 1}},
		{&e.Workers, jetstream.KeyValueConfig{Bucket: BucketWorkers, History: 1, TTL: time.Minute}},
	}
	for _, kv := range kvs {
		kv.cfg.Storage = jetstream.FileStorage
		kv.cfg.Replicas = replicas
		b, err := js.CreateOrUpdateKeyValue(ctx, kv.cfg)
		if err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", kv.cfg.Bucket, err)
		}
		*kv.dst = b
	}
	e.Blobs, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:   BucketBlobs,
		Storage:  jetstream.FileStorage,
		Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create object store: %w", err)
	}
	return e, nil
}

// Open binds an engine that a server already set up; it never creates
// anything, so pointing a client at the wrong server fails clearly.
func Open(ctx context.Context, nc *nats.Conn) (*Engine, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	e := &Engine{NC: nc, JS: js}
	if e.Jobs, err = js.Stream(ctx, StreamJobs); err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, ErrNotEngine
		}
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrNoResponders) {
			return nil, ErrNotEngine
		}
		return nil, fmt.Errorf("open job stream: %w", err)
	}
	for _, kv := range []struct {
		dst  *jetstream.KeyValue
		name string
	}{
		{&e.Builds, BucketBuilds}, {&e.Lists, BucketLists}, {&e.Runs, BucketRuns},
		{&e.Status, BucketStatus}, {&e.Campaigns, BucketCampaigns}, {&e.Workers, BucketWorkers},
	} {
		if *kv.dst, err = js.KeyValue(ctx, kv.name); err != nil {
			return nil, fmt.Errorf("open bucket %s: %w", kv.name, err)
		}
	}
	if e.Blobs, err = js.ObjectStore(ctx, BucketBlobs); err != nil {
		return nil, fmt.Errorf("open object store: %w", err)
	}
	e.Lease = DefaultLease
	if c, err := e.Jobs.Consumer(ctx, ConsumerRun); err == nil && c.CachedInfo().Config.AckWait > 0 {
		e.Lease = c.CachedInfo().Config.AckWait
	}
	return e, nil
}

// PutJSON stores v under key.
func PutJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("put %s/%s: %w", kv.Bucket(), key, err)
	}
	return nil
}

// GetJSON loads key into v; found is false when the key does not exist.
func GetJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) (found bool, err error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get %s/%s: %w", kv.Bucket(), key, err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return false, fmt.Errorf("decode %s/%s: %w", kv.Bucket(), key, err)
	}
	return true, nil
}

// PutAsync stores v under key in bucket without waiting for the engine's
// acknowledgement, which the returned future brings. A KV put is a publish
// on the bucket's subject; several in flight save round trips per run.
func (e *Engine) PutAsync(bucket, key string, v any) (jetstream.PubAckFuture, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	f, err := e.JS.PublishAsync("$KV."+bucket+"."+key, b)
	if err != nil {
		return nil, fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	return f, nil
}

// GetFromLeader reads key from bucket through the stream's leader. KV gets
// are direct gets that any replica may answer, and a replica can be behind
// the one that acknowledged a write (a server was just lost): a reader that
// must see a record it knows exists asks the leader.
func (e *Engine) GetFromLeader(ctx context.Context, bucket, key string, v any) (found bool, err error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + bucket + "." + key})
	msg, err := e.NC.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+bucket, req)
	if err != nil {
		return false, fmt.Errorf("get %s/%s: %w", bucket, key, err)
	}
	var resp struct {
		Message *struct {
			Data []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return false, fmt.Errorf("get %s/%s: %w", bucket, key, err)
	}
	if resp.Error != nil {
		if resp.Error.Code == 404 {
			return false, nil
		}
		return false, fmt.Errorf("get %s/%s: %s", bucket, key, resp.Error.Description)
	}
	if resp.Message == nil {
		return false, nil
	}
	if err := json.Unmarshal(resp.Message.Data, v); err != nil {
		return false, fmt.Errorf("decode %s/%s: %w", bucket, key, err)
	}
	return true, nil
}

// PublishRuns enqueues n run jobs, job(i) giving the i-th, a window at a
// time: a campaign of any size streams into the engine without waiting for
// each acknowledgement, and without holding all its jobs in memory.
func (e *Engine) PublishRuns(ctx context.Context, n int, job func(i int) simswarm.RunJob) error {
	const window = 1000
	for i := 0; i < n; i += window {
		var futures []jetstream.PubAckFuture
		for k := i; k < min(i+window, n); k++ {
			j := job(k)
			b, err := json.Marshal(j)
			if err != nil {
				return err
			}
			f, err := e.JS.PublishAsync(RunSubject(j.Campaign, j.Run), b)
			if err != nil {
				return fmt.Errorf("enqueue run %d: %w", j.Run, err)
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return fmt.Errorf("enqueue: %w", err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// Publish enqueues a job. msgID lets JetStream drop a duplicate sent within
// its window (a client retrying after a lost ack).
func (e *Engine) Publish(ctx context.Context, subject string, v any, msgID string) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	if _, err := e.JS.Publish(ctx, subject, b, opts...); err != nil {
		return fmt.Errorf("enqueue %s: %w", subject, err)
	}
	return nil
}

// Object names in the blob store.
func FileObject(hash string) string     { return "file/" + hash }
func SnapshotObject(key string) string  { return "snap/" + key }
func ArtifactObject(key string) string  { return "art/" + key }
func ResultObject(runKey string) string { return "res/" + runKey }
func BuildLogObject(key string) string  { return "log/" + key }

// PackObject holds a snapshot's files as one stream (snapshot.WritePack).
func PackObject(snapKey string) string { return "pack/" + snapKey }

// HasObject reports whether the store holds name.
func (e *Engine) HasObject(ctx context.Context, name string) (bool, error) {
	_, err := e.Blobs.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", name, err)
	}
	return true, nil
}

// PutObject stores r under name.
func (e *Engine) PutObject(ctx context.Context, name string, r io.Reader) error {
	if _, err := e.Blobs.Put(ctx, jetstream.ObjectMeta{Name: name}, r); err != nil {
		return fmt.Errorf("store %s: %w", name, err)
	}
	return nil
}

// PutBytes stores b under name.
func (e *Engine) PutBytes(ctx context.Context, name string, b []byte) error {
	return e.PutObject(ctx, name, bytes.NewReader(b))
}

// GetObject copies the object name to w.
func (e *Engine) GetObject(ctx context.Context, name string, w io.Writer) error {
	// Without a deadline the jetstream client gives the whole read its
	// default API timeout of 5 s, which a pack or an artifact of a few
	// hundred MB on a busy host outlasts ("nats: timeout" midway).
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 6*time.Hour)
		defer cancel()
	}
	r, err := e.Blobs.Get(ctx, name)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", name, err)
	}
	defer r.Close()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("fetch %s: %w", name, err)
	}
	return nil
}

// GetBytes returns the object name.
func (e *Engine) GetBytes(ctx context.Context, name string) ([]byte, error) {
	var buf bytes.Buffer
	err := e.GetObject(ctx, name, &buf)
	return buf.Bytes(), err
}

// ResetConsumers recreates the work consumers so that every job in the
// queue is delivered afresh. Only safe when no worker elsewhere holds jobs:
// the embedded engine, whose state directory is locked to one process.
func (e *Engine) ResetConsumers(ctx context.Context) error {
	for _, name := range []string{ConsumerBuild, ConsumerList, ConsumerRun} {
		c, err := e.Jobs.Consumer(ctx, name)
		if err != nil {
			return fmt.Errorf("reset consumer %s: %w", name, err)
		}
		if c.CachedInfo().NumAckPending == 0 {
			continue
		}
		cfg := c.CachedInfo().Config
		if err := e.Jobs.DeleteConsumer(ctx, name); err != nil {
			return fmt.Errorf("reset consumer %s: %w", name, err)
		}
		if _, err := e.Jobs.CreateConsumer(ctx, cfg); err != nil {
			return fmt.Errorf("reset consumer %s: %w", name, err)
		}
	}
	return nil
}

// KeepAlive renews the leases of jobs while they are worked on, so a job
// goes to another worker only when its worker stops answering.
func (e *Engine) KeepAlive(msgs ...jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	every := e.Lease / 3
	if every <= 0 {
		every = DefaultLease / 3
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	}()
	return func() { close(done) }
}

// HeartbeatEvery is how often workers announce themselves; the workers
// bucket forgets one that stayed silent for its TTL (a minute).
const HeartbeatEvery = 5 * time.Second

// Heartbeat publishes state() under key until ctx ends, then removes the key:
// a worker that stops cleanly is gone at once, a dead one after the TTL.
func (e *Engine) Heartbeat(ctx context.Context, key string, state func() simswarm.Worker) {
	t := time.NewTicker(HeartbeatEvery)
	defer t.Stop()
	for {
		_ = PutJSON(ctx, e.Workers, key, state())
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = e.Workers.Delete(dctx, key)
			cancel()
			return
		case <-t.C:
		}
	}
}
