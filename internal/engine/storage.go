package engine

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/simswarm/simswarm"
)

// What the engine stores, by kind: the object prefixes of the blob store,
// and "records" for the key-value buckets.
const (
	KindFile     = "file"
	KindSnapshot = "snap"
	KindArtifact = "art"
	KindResult   = "res"
	KindLog      = "log"
	KindBaseline = "base"
	KindRecords  = "records"
)

// Kinds lists the kinds in the order people read them.
var Kinds = []string{KindFile, KindSnapshot, KindArtifact, KindResult, KindLog, KindBaseline, KindRecords}

// RecordBuckets are the buckets whose records outlive a campaign and that
// gc may prune (workers' heartbeats expire on their own).
var RecordBuckets = []Bucket{BucketCampaigns, BucketStatus, BucketRuns, BucketBuilds, BucketLists}

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
	infos, err := e.blob.List(ctx)
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
	err := e.blob.Delete(ctx, name)
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	s, err := e.js.Stream(ctx, "OBJ_"+BucketBlobs)
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
func (e *Engine) Records(ctx context.Context, bucket Bucket) ([]Record, error) {
	s, err := e.js.Stream(ctx, "KV_"+string(bucket))
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
	prefix := "$KV." + string(bucket) + "."
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
func (e *Engine) PurgeRecords(ctx context.Context, bucket Bucket, filter string) error {
	s, err := e.js.Stream(ctx, "KV_"+string(bucket))
	if err != nil {
		return fmt.Errorf("purge %s/%s: %w", bucket, filter, err)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject("$KV."+string(bucket)+"."+filter)); err != nil {
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
	if st, err := e.js.Stream(ctx, "OBJ_"+BucketBlobs); err == nil {
		info := st.CachedInfo()
		u.Total += int64(info.State.Bytes)
		if info.Config.MaxBytes > 0 {
			u.Max = info.Config.MaxBytes
		}
	}
	var rec KindUsage
	for _, b := range RecordBuckets {
		st, err := e.js.Stream(ctx, "KV_"+string(b))
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
	st, err := e.js.Stream(ctx, "OBJ_"+BucketBlobs)
	if err != nil {
		return fmt.Errorf("bound the object store: %w", err)
	}
	cfg := st.CachedInfo().Config
	if cfg.MaxBytes == want || cfg.MaxBytes <= 0 && want <= 0 {
		return nil
	}
	cfg.MaxBytes = want
	if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
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

// ReplaceRun writes rec over the run record of key only if the record
// stored is the outcome that finished at finished, and nothing changed it
// since it was read: a newer outcome of the run key is not the caller's
// to change. replaced says whether rec was written.
func (e *Engine) ReplaceRun(ctx context.Context, key string, finished time.Time, rec *simswarm.RunRecord) (replaced bool, err error) {
	kv := e.kv[BucketRuns]
	en, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read run record %s: %w", simswarm.Short(key), err)
	}
	var now simswarm.RunRecord
	if err := json.Unmarshal(en.Value(), &now); err != nil || !now.Finished.Equal(finished) {
		return false, nil
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return false, err
	}
	if _, err := kv.Update(ctx, key, b, en.Revision()); err != nil {
		if isWrongRevision(err) {
			return false, nil
		}
		return false, fmt.Errorf("update run record %s: %w", simswarm.Short(key), err)
	}
	return true, nil
}

// RemoveCampaign removes a campaign record with a purge marker, which a
// watch of the campaigns (the dashboard) sees; the marker itself is
// dropped with the bucket's other markers.
func (e *Engine) RemoveCampaign(ctx context.Context, id string) error {
	if err := e.kv[BucketCampaigns].Purge(ctx, id); err != nil {
		return fmt.Errorf("remove campaign %s: %w", id, err)
	}
	return nil
}

// QueuedCampaigns lists the campaigns with run jobs in the queue, taken or
// not.
func (e *Engine) QueuedCampaigns(ctx context.Context) (map[string]bool, error) {
	info, err := e.jobs.Info(ctx, jetstream.WithSubjectFilter(subjectRun+".>"))
	if err != nil {
		return nil, fmt.Errorf("inspect queue: %w", err)
	}
	queued := map[string]bool{}
	for subj := range info.State.Subjects {
		parts := strings.Split(subj, ".")
		if len(parts) == 4 {
			queued[parts[2]] = true
		}
	}
	return queued, nil
}

// SetupInUse is what a build or list job in the queue names.
type SetupInUse struct {
	Snapshot string `json:"snapshot"`
	Artifact string `json:"artifact,omitempty"`
}

// SetupJobs lists the snapshots and artifacts that build and list jobs
// waiting or being worked on name: they are in use.
func (e *Engine) SetupJobs(ctx context.Context) ([]SetupInUse, error) {
	var out []SetupInUse
	for _, subj := range []string{subjectBuild, subjectList} {
		// A work queue takes no second consumer on its subjects: read the
		// few messages one by one instead.
		for seq := uint64(1); ; {
			m, err := e.jobs.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
			if err != nil {
				break // no more
			}
			var j SetupInUse
			if json.Unmarshal(m.Data, &j) == nil && j.Snapshot != "" {
				out = append(out, j)
			}
			seq = m.Sequence + 1
		}
	}
	return out, nil
}
