package engine

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// What the engine stores, by kind: the object prefixes of the blob store,
// and "records" for the key-value buckets.
const (
	KindFile     = "file"
	KindSnapshot = "snap"
	KindArtifact = "art"
	KindResult   = "res"
	KindLog      = "log"
	KindRecords  = "records"
)

// Kinds lists the kinds in the order people read them.
var Kinds = []string{KindFile, KindSnapshot, KindArtifact, KindResult, KindLog, KindRecords}

// RecordBuckets are the buckets whose records outlive a campaign and that
// gc may prune (workers' heartbeats expire on their own).
var RecordBuckets = []string{BucketCampaigns, BucketStatus, BucketRuns, BucketBuilds, BucketLists}

// KindOf is the kind of an object name ("res/<key>" is "res").
func KindOf(object string) string {
	k, _, _ := strings.Cut(object, "/")
	return k
}

// StoredObject is one object of the blob store.
type StoredObject struct {
	Name     string
	Size     int64
	Modified time.Time
}

// Objects lists every object in the blob store (sizes as stored: the blob
// store compresses nothing).
func (e *Engine) Objects(ctx context.Context) ([]StoredObject, error) {
	infos, err := e.Blobs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	out := make([]StoredObject, 0, len(infos))
	for _, i := range infos {
		out = append(out, StoredObject{Name: i.Name, Size: int64(i.Size), Modified: i.ModTime})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

// DeleteObject removes an object and its metadata: its chunks go, and no
// tombstone stays behind to grow the store by one entry per result ever
// written. A missing object is not an error.
func (e *Engine) DeleteObject(ctx context.Context, name string) error {
	err := e.Blobs.Delete(ctx, name)
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	s, err := e.JS.Stream(ctx, "OBJ_"+BucketBlobs)
	if err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	// The object store's layout (ADR-20): metadata on $O.<bucket>.M.<base64url name>.
	meta := "$O." + BucketBlobs + ".M." + base64.URLEncoding.EncodeToString([]byte(name))
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(meta)); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// Record is one key of a bucket as gc and usage see it: no value.
type Record struct {
	Key     string
	Created time.Time
	Size    int64 // bytes of the value
}

// Records lists the live keys of a bucket without reading their values,
// which for runs may be large (small result files travel inline).
func (e *Engine) Records(ctx context.Context, bucket string) ([]Record, error) {
	s, err := e.JS.Stream(ctx, "KV_"+bucket)
	if err != nil {
		return nil, fmt.Errorf("records of %s: %w", bucket, err)
	}
	if s.CachedInfo().State.Msgs == 0 {
		return nil, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
		HeadersOnly:   true,
	})
	if err != nil {
		return nil, fmt.Errorf("records of %s: %w", bucket, err)
	}
	prefix := "$KV." + bucket + "."
	var out []Record
	for {
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("records of %s: %w", bucket, err)
		}
		n, last := 0, uint64(0)
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			last = md.NumPending
			if op := m.Headers().Get("KV-Operation"); op == "DEL" || op == "PURGE" {
				continue
			}
			var size int64
			fmt.Sscan(m.Headers().Get("Nats-Msg-Size"), &size)
			out = append(out, Record{Key: strings.TrimPrefix(m.Subject(), prefix), Created: md.Timestamp, Size: size})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("records of %s: %w", bucket, err)
		}
		if n == 0 || last == 0 {
			return out, nil
		}
	}
}

// PurgeRecords removes the keys of a bucket that match filter (a subject
// filter on keys: "k", "<campaign>.*") with their history and without a
// delete marker: gone, not tombstoned.
func (e *Engine) PurgeRecords(ctx context.Context, bucket, filter string) error {
	s, err := e.JS.Stream(ctx, "KV_"+bucket)
	if err != nil {
		return fmt.Errorf("purge %s/%s: %w", bucket, filter, err)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject("$KV."+bucket+"."+filter)); err != nil {
		return fmt.Errorf("purge %s/%s: %w", bucket, filter, err)
	}
	return nil
}

// KindUsage is what one kind takes.
type KindUsage struct {
	Count int   `json:"count"`
	Bytes int64 `json:"bytes"`
}

// Usage is what the engine stores, by kind; Total is the disk the object
// store and the record buckets take (with their overhead).
type Usage struct {
	Kinds map[string]KindUsage `json:"kinds"`
	Total int64                `json:"total_bytes"`
	// Max is the object store's bound (simswarm server --max-store); 0: none.
	Max int64 `json:"max_bytes,omitempty"`
}

// StoreUsage reads the usage. It lists every object's metadata, so callers
// that poll do it seldom.
func (e *Engine) StoreUsage(ctx context.Context) (*Usage, error) {
	u := &Usage{Kinds: map[string]KindUsage{}}
	objs, err := e.Objects(ctx)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		k := u.Kinds[KindOf(o.Name)]
		k.Count++
		k.Bytes += o.Size
		u.Kinds[KindOf(o.Name)] = k
	}
	if st, err := e.JS.Stream(ctx, "OBJ_"+BucketBlobs); err == nil {
		info := st.CachedInfo()
		u.Total += int64(info.State.Bytes)
		if info.Config.MaxBytes > 0 {
			u.Max = info.Config.MaxBytes
		}
	}
	var rec KindUsage
	for _, b := range RecordBuckets {
		st, err := e.JS.Stream(ctx, "KV_"+b)
		if err != nil {
			return nil, fmt.Errorf("usage of %s: %w", b, err)
		}
		info := st.CachedInfo()
		rec.Count += int(info.State.NumSubjects)
		rec.Bytes += int64(info.State.Bytes)
		u.Total += int64(info.State.Bytes)
	}
	u.Kinds[KindRecords] = rec
	return u, nil
}

// BoundStore sets the most bytes the object store may hold (0: no bound).
// The store refuses what would go past it: an upload or a run's results
// then fail with ErrStoreFull, until extraction or gc frees room. Setup
// lifts the bound, so servers set it after Setup, each with the same
// value; while a cluster forms, the update is tried again for a while.
func (e *Engine) BoundStore(ctx context.Context, max int64) error {
	want := int64(-1)
	if max > 0 {
		want = max
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := e.boundStore(ctx, want)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Second)
	}
}

func (e *Engine) boundStore(ctx context.Context, want int64) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := e.JS.Stream(ctx, "OBJ_"+BucketBlobs)
	if err != nil {
		return fmt.Errorf("bound the object store: %w", err)
	}
	cfg := st.CachedInfo().Config
	if cfg.MaxBytes == want || cfg.MaxBytes <= 0 && want <= 0 {
		return nil
	}
	cfg.MaxBytes = want
	if _, err := e.JS.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("bound the object store: %w", err)
	}
	return nil
}

// ErrStoreFull means the object store reached its bound (--max-store).
var ErrStoreFull = errors.New("the engine's object store is full (simswarm server --max-store): results that clients fetched are freed at once; `simswarm gc` frees old campaigns")

// failedPut cleans up after a put the store refused and names a refusal
// for the store's bound as such. Chunks and metadata are published
// asynchronously, so the metadata can land while a chunk was refused: an
// object that would be listed but cannot be read must not stay.
func (e *Engine) failedPut(ctx context.Context, name string, err error) error {
	if !strings.Contains(err.Error(), "maximum bytes exceeded") {
		return err
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = e.DeleteObject(dctx, name)
	return fmt.Errorf("%w (%v)", ErrStoreFull, err)
}

// EachValue calls fn with the key and current value of every key of kv
// matching filter (">" for all).
func EachValue(ctx context.Context, kv jetstream.KeyValue, filter string, fn func(key string, value []byte)) error {
	w, err := kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("read %s: %w", kv.Bucket(), err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e := <-w.Updates():
			if e == nil {
				return nil
			}
			fn(e.Key(), e.Value())
		}
	}
}
