package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/retry"
)

// putJSON stores v under key in bucket b.
func (e *Engine) putJSON(ctx context.Context, b Bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := e.kv[b].Put(ctx, key, raw); err != nil {
		return fmt.Errorf("put %s/%s: %w", b, key, err)
	}
	return nil
}

// getJSON loads key of bucket b into v; found is false when it does not exist.
func (e *Engine) getJSON(ctx context.Context, b Bucket, key string, v any) (found bool, err error) {
	en, err := e.kv[b].Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get %s/%s: %w", b, key, err)
	}
	if err := json.Unmarshal(en.Value(), v); err != nil {
		return false, fmt.Errorf("decode %s/%s: %w", b, key, err)
	}
	return true, nil
}

// storePolicy is how long a worker keeps trying to store an outcome: while
// a stream leader moves (seconds) and a little more. Giving up would run
// a finished run again.
var storePolicy = retry.Policy{First: 100 * time.Millisecond, Max: 2 * time.Second}

// putUntilStored writes v until the engine confirms it or ctx ends.
func (e *Engine) putUntilStored(ctx context.Context, b Bucket, key string, v any) error {
	return retry.Do(ctx, storePolicy, func(attempt int) error {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err := e.putJSON(pctx, b, key, v)
		if err != nil {
			e.log().Warn("engine: store record, trying again", "bucket", b, "key", key, "attempt", attempt, "err", err)
		}
		return err
	})
}

// recordRun stores a run's outcome: the full record under its run key (for
// final outcomes that ran), then the compact one in its campaign's status,
// so that a client that sees a final status finds the record it points to.
// Each write is tried again until stored or ctx ends; ctx should outlive a
// leader election (tens of seconds).
func (e *Engine) recordRun(ctx context.Context, rec *simswarm.RunRecord) error {
	if !rec.Reused && (rec.State == simswarm.RunSucceeded || rec.State == simswarm.RunFailed) {
		if err := e.putUntilStored(ctx, BucketRuns, rec.Key, rec); err != nil {
			return fmt.Errorf("record run %d: %w", rec.Run, err)
		}
	}
	return e.recordStatus(ctx, rec)
}

// recordStatus stores only a run's compact record in its campaign, trying
// again until stored or ctx ends: for an outcome whose full record is
// stored already.
func (e *Engine) recordStatus(ctx context.Context, rec *simswarm.RunRecord) error {
	if err := e.putUntilStored(ctx, BucketStatus, simswarm.StatusKey(rec.Campaign, rec.Run), rec.Compact()); err != nil {
		return fmt.Errorf("record status of run %d: %w", rec.Run, err)
	}
	return nil
}

// NoteStatus publishes a compact run record without waiting for the
// engine: progress (a run started), not worth a round trip before a
// process starts.
func (e *Engine) NoteStatus(rec *simswarm.RunRecord) {
	b, err := json.Marshal(rec.Compact())
	if err != nil {
		return
	}
	if _, err := e.js.PublishAsync("$KV."+string(BucketStatus)+"."+simswarm.StatusKey(rec.Campaign, rec.Run), b); err != nil {
		e.log().Debug("engine: note running", "err", err)
	}
}

// getRecord reads one JSON record of bucket b; found is false where the
// key has none.
func getRecord[T any](ctx context.Context, e *Engine, b Bucket, key string) (v *T, found bool, err error) {
	v = new(T)
	if found, err = e.getJSON(ctx, b, key, v); !found || err != nil {
		return nil, false, err
	}
	return v, true, nil
}

// Run reads the full record of a run key.
func (e *Engine) Run(ctx context.Context, key string) (*simswarm.RunRecord, bool, error) {
	return getRecord[simswarm.RunRecord](ctx, e, BucketRuns, key)
}

// RunSettled reads the full record of a run key as the stream leader has
// it, trying again for up to wait while no leader answers. A job that comes
// back after its holder or a server was lost asks this before executing
// again: a replica's direct answer can be behind the record the holder
// stored, and a miss there would run a finished run twice.
func (e *Engine) RunSettled(ctx context.Context, key string, wait time.Duration) (*simswarm.RunRecord, bool, error) {
	var r simswarm.RunRecord
	var found bool
	err := retry.Do(ctx, retry.Policy{First: 200 * time.Millisecond, Max: time.Second, For: wait}, func(int) error {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		ok, err := e.getFromLeader(rctx, BucketRuns, key, &r)
		found = ok
		return err
	})
	if err != nil || !found {
		return nil, false, err
	}
	return &r, true, nil
}

// ForgetRun deletes a run key's record, so that the run executes again.
func (e *Engine) ForgetRun(ctx context.Context, key string) error {
	if err := e.kv[BucketRuns].Delete(ctx, key); err != nil {
		return fmt.Errorf("forget run %s: %w", simswarm.Short(key), err)
	}
	return nil
}

// RunFinished reads the full record of a run that is known to have been
// stored with the finish time given. On a replicated engine a read may
// reach a copy a moment behind the one the runner wrote, or time out while
// the connection moves to another server: it keeps trying, through the
// stream leader too, for up to wait.
func (e *Engine) RunFinished(ctx context.Context, key string, finished time.Time, wait time.Duration) (*simswarm.RunRecord, error) {
	var full simswarm.RunRecord
	err := retry.Do(ctx, retry.Policy{First: 200 * time.Millisecond, Max: time.Second, For: wait}, func(int) error {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ok, err := e.getJSON(rctx, BucketRuns, key, &full)
		if err != nil || !ok || !full.Finished.Equal(finished) {
			ok, err = e.getFromLeader(rctx, BucketRuns, key, &full)
		}
		if err != nil {
			return err
		}
		if !ok || !full.Finished.Equal(finished) {
			return fmt.Errorf("run record %s missing", simswarm.Short(key))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &full, nil
}

// getFromLeader reads key from bucket through the stream's leader. KV gets
// are direct gets that any replica may answer, and a replica can be behind
// the one that acknowledged a write (a server was just lost): a reader that
// must see a record it knows exists asks the leader.
func (e *Engine) getFromLeader(ctx context.Context, bucket Bucket, key string, v any) (found bool, err error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + string(bucket) + "." + key})
	msg, err := e.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+string(bucket), req)
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

// RunStatus reads the compact record of a campaign's run.
func (e *Engine) RunStatus(ctx context.Context, campaign string, run int) (*simswarm.RunRecord, bool, error) {
	return getRecord[simswarm.RunRecord](ctx, e, BucketStatus, simswarm.StatusKey(campaign, run))
}

// StatusWatch follows the run records of one campaign.
type StatusWatch struct {
	w  jetstream.KeyWatcher
	nc *nats.Conn
	ch chan *simswarm.RunRecord
}

// Updates brings the campaign's records: first those stored when the watch
// began, then nil, then every new one. It is closed when the watch ends.
func (s *StatusWatch) Updates() <-chan *simswarm.RunRecord { return s.ch }

// Stop ends the watch.
func (s *StatusWatch) Stop() { stopWatcher(s.nc, s.w) }

// stopWatcher stops a KV watch. Stopping deletes its consumer with a
// request to the server, which waits out JetStream's timeout (5 s) when
// the server is out of reach: an interrupted client then took 10 s more
// to say so. Without a connection the stop goes on in the background and
// ends with the connection.
func stopWatcher(nc *nats.Conn, w jetstream.KeyWatcher) {
	if nc != nil && !nc.IsConnected() {
		go func() { _ = w.Stop() }()
		return
	}
	_ = w.Stop()
}

// WatchStatus follows the run records of campaign id.
func (e *Engine) WatchStatus(ctx context.Context, id string) (*StatusWatch, error) {
	w, err := e.kv[BucketStatus].Watch(ctx, id+".*")
	if err != nil {
		return nil, fmt.Errorf("watch campaign %s: %w", id, err)
	}
	s := &StatusWatch{w: w, nc: e.nc, ch: make(chan *simswarm.RunRecord, 64)}
	go func() {
		defer close(s.ch)
		for en := range w.Updates() {
			var rec *simswarm.RunRecord
			if en != nil {
				if en.Operation() != jetstream.KeyValuePut {
					continue
				}
				camp, n, ok := simswarm.ParseStatusKey(en.Key())
				rec = new(simswarm.RunRecord)
				if !ok || camp != id || json.Unmarshal(en.Value(), rec) != nil {
					continue
				}
				rec.Campaign, rec.Run = camp, n
			}
			select {
			case s.ch <- rec:
			case <-ctx.Done():
				return
			}
		}
	}()
	return s, nil
}

// ErrNoCampaign means the engine holds no record of the campaign.
var ErrNoCampaign = errors.New("no such campaign")

// Campaign reads a campaign's record.
func (e *Engine) Campaign(ctx context.Context, id string) (*simswarm.Campaign, bool, error) {
	return getRecord[simswarm.Campaign](ctx, e, BucketCampaigns, id)
}

// UpdateCampaign changes a campaign's record by compare-and-set: change
// edits the current record and says whether to write it; when another
// writer came first, it runs again on the newer record. It returns the
// record as stored (ErrNoCampaign when there is none).
func (e *Engine) UpdateCampaign(ctx context.Context, id string, change func(*simswarm.Campaign) bool) (*simswarm.Campaign, error) {
	kv := e.kv[BucketCampaigns]
	for range 100 {
		en, err := kv.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("campaign %s: %w", id, ErrNoCampaign)
		}
		if err != nil {
			return nil, fmt.Errorf("read campaign %s: %w", id, err)
		}
		var c simswarm.Campaign
		if err := json.Unmarshal(en.Value(), &c); err != nil {
			return nil, fmt.Errorf("decode campaign %s: %w", id, err)
		}
		if !change(&c) {
			return &c, nil
		}
		b, _ := json.Marshal(&c)
		if _, err := kv.Update(ctx, id, b, en.Revision()); err == nil {
			return &c, nil
		} else if !isWrongRevision(err) {
			return nil, fmt.Errorf("update campaign %s: %w", id, err)
		}
	}
	return nil, fmt.Errorf("update campaign %s: too many concurrent writers", id)
}

func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return true
	}
	return errors.Is(err, jetstream.ErrKeyExists) || strings.Contains(err.Error(), "wrong last sequence")
}

// SubmitCampaign records a campaign as active (a new submit, after a
// cancel too), keeping nothing of an earlier record but what c says.
func (e *Engine) SubmitCampaign(ctx context.Context, c simswarm.Campaign) error {
	c.State = simswarm.CampaignActive
	b, _ := json.Marshal(&c)
	kv := e.kv[BucketCampaigns]
	if _, err := kv.Create(ctx, c.ID, b); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("record campaign %s: %w", c.ID, err)
	}
	_, err := e.UpdateCampaign(ctx, c.ID, func(cur *simswarm.Campaign) bool {
		*cur = c
		return true
	})
	return err
}

// FinishCampaign marks an active campaign done; a cancelled one stays
// cancelled.
func (e *Engine) FinishCampaign(ctx context.Context, id string) (*simswarm.Campaign, error) {
	return e.UpdateCampaign(ctx, id, func(c *simswarm.Campaign) bool {
		if c.State != simswarm.CampaignActive {
			return false
		}
		c.State = simswarm.CampaignDone
		return true
	})
}

// Campaigns reads every campaign record.
func (e *Engine) Campaigns(ctx context.Context) ([]simswarm.Campaign, error) {
	var out []simswarm.Campaign
	err := e.Each(ctx, BucketCampaigns, ">", func(_ string, b []byte) {
		var c simswarm.Campaign
		if json.Unmarshal(b, &c) == nil {
			out = append(out, c)
		}
	})
	return out, err
}

// WatchCampaign follows campaign id's record: the current one first, then
// every change.
func (e *Engine) WatchCampaign(ctx context.Context, id string) (*RecordWatch[simswarm.Campaign], error) {
	return watchRecord[simswarm.Campaign](ctx, e, BucketCampaigns, id, true)
}

// Build reads a build record (key is a build key or a LastBuildKey).
func (e *Engine) Build(ctx context.Context, key string) (*simswarm.BuildRecord, bool, error) {
	return getRecord[simswarm.BuildRecord](ctx, e, BucketBuilds, key)
}

// BuildKeys lists the keys of the builds bucket.
func (e *Engine) BuildKeys(ctx context.Context) ([]string, error) {
	var out []string
	err := e.Each(ctx, BucketBuilds, ">", func(k string, _ []byte) { out = append(out, k) })
	return out, err
}

// Builds reads every build record with its key.
func (e *Engine) Builds(ctx context.Context, fn func(key string, b *simswarm.BuildRecord)) error {
	return e.Each(ctx, BucketBuilds, ">", func(k string, raw []byte) {
		var b simswarm.BuildRecord
		if json.Unmarshal(raw, &b) == nil {
			fn(k, &b)
		}
	})
}

// WaitBuild follows build key: every new record of it.
func (e *Engine) WaitBuild(ctx context.Context, key string) (*RecordWatch[simswarm.BuildRecord], error) {
	return watchRecord[simswarm.BuildRecord](ctx, e, BucketBuilds, key, false)
}

// RunList reads a cached run list.
func (e *Engine) RunList(ctx context.Context, key string) (*simswarm.RunList, bool, error) {
	return getRecord[simswarm.RunList](ctx, e, BucketLists, key)
}

// WaitList follows the run list key: every new record of it.
func (e *Engine) WaitList(ctx context.Context, key string) (*RecordWatch[simswarm.RunList], error) {
	return watchRecord[simswarm.RunList](ctx, e, BucketLists, key, false)
}

// RecordWatch brings the records of one key as they are stored (and, where
// asked for, the one stored when the watch began).
type RecordWatch[T any] struct {
	w  jetstream.KeyWatcher
	nc *nats.Conn
	ch chan *T
}

// Updates brings each new record; it is closed when the watch ends.
func (w *RecordWatch[T]) Updates() <-chan *T { return w.ch }

// Stop ends the watch.
func (w *RecordWatch[T]) Stop() { stopWatcher(w.nc, w.w) }

func watchRecord[T any](ctx context.Context, e *Engine, b Bucket, key string, current bool) (*RecordWatch[T], error) {
	var opts []jetstream.WatchOpt
	if !current {
		opts = append(opts, jetstream.UpdatesOnly())
	}
	w, err := e.kv[b].Watch(ctx, key, opts...)
	if err != nil {
		return nil, fmt.Errorf("watch %s/%s: %w", b, key, err)
	}
	rw := &RecordWatch[T]{w: w, nc: e.nc, ch: make(chan *T, 4)}
	go func() {
		defer close(rw.ch)
		for en := range w.Updates() {
			if en == nil || en.Operation() != jetstream.KeyValuePut {
				continue
			}
			v := new(T)
			if json.Unmarshal(en.Value(), v) != nil {
				e.log().Warn("engine: undecodable record", "bucket", b, "key", key)
				continue
			}
			select {
			case rw.ch <- v:
			case <-ctx.Done():
				return
			}
		}
	}()
	return rw, nil
}

// HeartbeatEvery is how often workers announce themselves; the workers
// bucket forgets one that stayed silent for its TTL (a minute).
const HeartbeatEvery = 5 * time.Second

func workerKey(w simswarm.Worker) string { return string(w.Role) + "." + simswarm.Token(w.ID) }

// Heartbeat publishes state() until ctx ends, then removes it: a worker
// that stops cleanly is gone at once, a dead one after the TTL. A receive
// on changed (nil: none) publishes at once, at most once a second, so
// that a worker that fell idle is not shown busy for a whole beat.
func (e *Engine) Heartbeat(ctx context.Context, state func() simswarm.Worker, changed <-chan struct{}) {
	t := time.NewTicker(HeartbeatEvery)
	defer t.Stop()
	var key string
	var last time.Time
	for {
		w := state()
		key = workerKey(w)
		last = time.Now()
		if err := e.putJSON(ctx, BucketWorkers, key, w); err != nil && ctx.Err() == nil {
			e.log().Debug("engine: heartbeat", "err", err)
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = e.kv[BucketWorkers].Delete(dctx, key)
			cancel()
			return
		case <-t.C:
		case <-changed:
			select {
			case <-time.After(time.Until(last.Add(changeBeatEvery))):
			case <-ctx.Done():
			}
		}
	}
}

// changeBeatEvery is the least time between heartbeats sent for a change.
const changeBeatEvery = time.Second

// Poke tells a Heartbeat's changed channel that the state changed,
// without waiting.
func Poke(changed chan struct{}) {
	select {
	case changed <- struct{}{}:
	default:
	}
}

// Heard is a worker's last heartbeat and when the engine stored it (the
// server's clock: hosts' clocks may disagree).
type Heard struct {
	simswarm.Worker
	At time.Time
}

// Workers reads the heartbeats the engine holds (a worker silent for a
// minute is gone).
func (e *Engine) Workers(ctx context.Context) ([]Heard, error) {
	var out []Heard
	w, err := e.kv[BucketWorkers].WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read workers: %w", err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case en := <-w.Updates():
			if en == nil {
				return out, nil
			}
			var wk simswarm.Worker
			if json.Unmarshal(en.Value(), &wk) == nil {
				out = append(out, Heard{Worker: wk, At: en.Created()})
			}
		}
	}
}

// Entry is one key of a bucket as a watch sees it.
type Entry struct {
	Key     string
	Value   []byte
	Deleted bool
	Initial bool      // stored before the watch began
	At      time.Time // when the engine stored it (the server's clock)
}

// Follow hands every entry of bucket b to fn: those stored when it began
// (Initial), then ready is called, then every change. It returns when ctx
// ends (nil) or the watch breaks.
func (e *Engine) Follow(ctx context.Context, b Bucket, ready func(), fn func(Entry)) error {
	w, err := e.kv[b].WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", b, err)
	}
	defer w.Stop()
	initial := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case en, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("watch of %s ended", b)
			}
			if en == nil {
				if initial {
					initial = false
					ready()
				}
				continue
			}
			fn(Entry{Key: en.Key(), Value: en.Value(), Deleted: en.Operation() != jetstream.KeyValuePut, Initial: initial, At: en.Created()})
		}
	}
}

// Each calls fn with the current value of every key of b matching filter.
func (e *Engine) Each(ctx context.Context, b Bucket, filter string, fn func(key string, value []byte)) error {
	w, err := e.kv[b].Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("read %s: %w", b, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case en := <-w.Updates():
			if en == nil {
				return nil
			}
			fn(en.Key(), en.Value())
		}
	}
}
