package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func testEngine(t *testing.T) (*Engine, context.Context) {
	t.Helper()
	srv, err := StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	eng, err := srv.Setup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	return eng, ctx
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestStorageByKind: usage counts objects and records by kind, deleting an
// object gives its bytes back and leaves no tombstone, records are listed
// and purged without their values.
func TestStorageByKind(t *testing.T) {
	eng, ctx := testEngine(t)
	for name, n := range map[string]int{"file/a": 1000, "file/b": 2000, "snap/s": 300, "res/r1": 500 << 10, "res/r2": 10} {
		if err := eng.PutBytes(ctx, name, random(n)); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"c1.0", "c1.1", "c2.0"} {
		if err := eng.putJSON(ctx, BucketStatus, k, map[string]string{"state": "succeeded", "pad": strings.Repeat("x", 100)}); err != nil {
			t.Fatal(err)
		}
	}
	u, err := eng.StoreUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]KindUsage{KindFile: {2, 3000}, KindSnapshot: {1, 300}, KindResult: {2, 500<<10 + 10}}
	for k, w := range want {
		if u.Kinds[k] != w {
			t.Errorf("%s: %+v, want %+v", k, u.Kinds[k], w)
		}
	}
	if r := u.Kinds[KindRecords]; r.Count != 3 || r.Bytes < 300 {
		t.Errorf("records: %+v", r)
	}
	before := u.Total
	if err := eng.DeleteObject(ctx, "res/r1"); err != nil {
		t.Fatal(err)
	}
	if err := eng.DeleteObject(ctx, "res/never"); err != nil {
		t.Errorf("deleting a missing object: %v", err)
	}
	u, _ = eng.StoreUsage(ctx)
	if u.Kinds[KindResult] != (KindUsage{1, 10}) || before-u.Total < 500<<10 {
		t.Errorf("after delete: %+v, total %d -> %d", u.Kinds[KindResult], before, u.Total)
	}
	// No metadata of the deleted object stays.
	st, _ := eng.js.Stream(ctx, "OBJ_"+BucketBlobs)
	if n := st.CachedInfo().State.NumSubjects; n != 2*4 { // 4 objects: a chunk and a meta subject each
		t.Errorf("%d subjects in the object stream after the delete, want 8", n)
	}
	recs, err := eng.Records(ctx, BucketStatus)
	if err != nil || len(recs) != 3 || recs[0].Key != "c1.0" || recs[0].Size < 100 || time.Since(recs[0].Created) > time.Minute {
		t.Fatalf("records: %+v %v", recs, err)
	}
	if err := eng.PurgeRecords(ctx, BucketStatus, "c1.*"); err != nil {
		t.Fatal(err)
	}
	if recs, _ := eng.Records(ctx, BucketStatus); len(recs) != 1 || recs[0].Key != "c2.0" {
		t.Errorf("after purging c1.*: %+v", recs)
	}
}

// TestBoundStore: a bounded store refuses what goes past its bound with
// ErrStoreFull, keeps what it holds, and takes more once room is freed.
func TestBoundStore(t *testing.T) {
	eng, ctx := testEngine(t)
	if err := eng.BoundStore(ctx, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := eng.PutBytes(ctx, "res/a", random(600<<10)); err != nil {
		t.Fatal(err)
	}
	err := eng.PutBytes(ctx, "res/b", random(600<<10))
	if !errors.Is(err, ErrStoreFull) {
		t.Fatalf("put past the bound: %v, want ErrStoreFull", err)
	}
	got, err := eng.GetBytes(ctx, "res/a")
	if err != nil || len(got) != 600<<10 {
		t.Fatalf("what the store held: %d bytes, %v", len(got), err)
	}
	if ok, _ := eng.HasObject(ctx, "res/b"); ok {
		t.Error("the refused object is listed")
	}
	if err := eng.DeleteObject(ctx, "res/a"); err != nil {
		t.Fatal(err)
	}
	b := random(600 << 10)
	if err := eng.PutBytes(ctx, "res/b", b); err != nil {
		t.Fatalf("put after freeing room: %v", err)
	}
	if got, _ := eng.GetBytes(ctx, "res/b"); !bytes.Equal(got, b) {
		t.Error("res/b differs")
	}
	u, _ := eng.StoreUsage(ctx)
	if u.Max != 1<<20 || u.Total > 1<<20+64<<10 {
		t.Errorf("usage %+v", u)
	}
	if err := eng.BoundStore(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if u, _ := eng.StoreUsage(ctx); u.Max != 0 {
		t.Errorf("bound still %d after lifting it", u.Max)
	}
}

// slowWriter takes its time with each chunk, as a full disk's writer or a
// busy host does.
type slowWriter struct{}

func (slowWriter) Write(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	return len(p), nil
}

// TestObjectReadCancelled: a read of an object whose context ends midway
// returns at once, wherever the read was (a runner fetching a tree's files
// cancels the others when one fails on a full disk, and hung there).
func TestObjectReadCancelled(t *testing.T) {
	_, a, _ := start(t, time.Second)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB: many chunks
	if err := a.PutBytes(context.Background(), "file/big", data); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.GetObject(ctx, "file/big", slowWriter{}) }()
		time.Sleep(time.Duration(i%10) * 3 * time.Millisecond)
		cancel()
		select {
		case err := <-done:
			if err == nil {
				t.Logf("read %d ended before its cancel", i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("read %d still blocked 10 s after its context ended", i)
		}
	}
}

// TestSetupBindsWhatIsAsWanted: a second Setup with the same settings (an
// embedded engine starting for the next campaign) writes none of the
// server's object metadata; one with another lease updates the run
// queue's AckWait, and a bucket whose settings drifted is set right.
func TestSetupBindsWhatIsAsWanted(t *testing.T) {
	dir := t.TempDir()
	srv, err := StartEmbedded(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	setup := func(lease time.Duration) *Engine {
		t.Helper()
		nc, err := srv.Connect("setup")
		if err != nil {
			t.Fatal(err)
		}
		e, err := Setup(ctx, nc, 1, lease)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		return e
	}
	// meta.inf is where the server keeps each stream's and consumer's
	// configuration; an update rewrites it.
	metas := func() map[string]time.Time {
		m := map[string]time.Time{}
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Name() == "meta.inf" {
				if st, err := os.Stat(p); err == nil {
					m[p] = st.ModTime()
				}
			}
			return nil
		})
		return m
	}
	setup(2 * time.Second)
	before := metas()
	if len(before) < 10 {
		t.Fatalf("found %d metadata files; want one per stream and consumer", len(before))
	}
	time.Sleep(20 * time.Millisecond)
	setup(2 * time.Second)
	if after := metas(); !maps.Equal(before, after) {
		t.Errorf("a second Setup with the same settings rewrote metadata:\nbefore %v\nafter  %v", before, after)
	}
	e := setup(3 * time.Second)
	c, err := e.jobs.Consumer(ctx, ConsumerRun)
	if err != nil || c.CachedInfo().Config.AckWait != 3*time.Second {
		t.Fatalf("run queue after Setup with a 3 s lease: %v %v", c, err)
	}
	if _, err := e.js.UpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: string(BucketWorkers), History: 1, TTL: 2 * time.Minute, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	e = setup(3 * time.Second)
	if st, err := e.kv[BucketWorkers].Status(ctx); err != nil || st.TTL() != time.Minute {
		t.Errorf("workers bucket after Setup: %v %v; want its 1 min TTL back", st, err)
	}
}
