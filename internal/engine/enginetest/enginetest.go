// Package enginetest gives a test a real embedded engine of its own: the
// one fixture every package's tests start engines with, so that a change
// to how an engine starts or is set up is made once.
package enginetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
)

// Engine is a fresh embedded engine and the test's own connection to it
// (the client's, which set the engine up).
type Engine struct {
	*engine.Engine
	Server *engine.Embedded
	Dir    string // the engine's state directory
}

// Start starts an embedded engine in a temporary directory and sets it up
// with the given lease (none: engine.DefaultLease). The engine and every
// connection opened on it end with the test.
func Start(t testing.TB, lease ...time.Duration) *Engine {
	t.Helper()
	dir := t.TempDir()
	srv, err := engine.StartEmbedded(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	var l time.Duration
	if len(lease) > 0 {
		l = lease[0]
	}
	nc, err := srv.Connect("test-setup")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	eng, err := engine.Setup(ctx, nc, 1, l)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	return &Engine{Engine: eng, Server: srv, Dir: dir}
}

// Open is another connection to the engine, as a worker has its own,
// closed when the test ends.
func (e *Engine) Open(t testing.TB, name string) *engine.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := e.Server.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

// The seeds below write records as a test wants them, through the API
// workers and clients use, so that the engine keeps no write path for
// tests alone.

// PutCampaign stores a campaign record as it is, whatever its state.
func PutCampaign(t testing.TB, e *engine.Engine, c simswarm.Campaign) {
	t.Helper()
	ctx := context.Background()
	if err := e.SubmitCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := e.UpdateCampaign(ctx, c.ID, func(cur *simswarm.Campaign) bool { *cur = c; return true }); err != nil {
		t.Fatal(err)
	}
}

// PutList stores a run list as a runner answers it.
func PutList(t testing.TB, e *engine.Engine, l simswarm.RunList) {
	t.Helper()
	if err := e.Store(context.Background(), engine.ListAnswer(&l)); err != nil {
		t.Fatal(err)
	}
}

// PutStatuses stores the compact records of n runs, rec(i) giving the
// i-th, from several writers at once (a test seeding 100 000 runs).
func PutStatuses(t testing.TB, e *engine.Engine, n int, rec func(i int) *simswarm.RunRecord) {
	t.Helper()
	var (
		wg    sync.WaitGroup
		slots = make(chan struct{}, 64)
		fail  atomic.Pointer[error]
	)
	for i := range n {
		r := rec(i)
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			if err := e.Store(context.Background(), engine.StatusAnswer(r)); err != nil {
				fail.Store(&err)
			}
		}()
	}
	wg.Wait()
	if err := fail.Load(); err != nil {
		t.Fatal(*err)
	}
}

// PutWorker announces a worker as its heartbeat does, until the test ends.
func PutWorker(t testing.TB, e *engine.Engine, w simswarm.Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Heartbeat(ctx, func() simswarm.Worker { return w }, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		heard, err := e.Workers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range heard {
			if h.ID == w.ID && h.Role == w.Role {
				return
			}
		}
	}
	t.Fatalf("worker %s was not heard within 10 s", w.ID)
}

// PutStatus stores one run's compact record as it is.
func PutStatus(t testing.TB, e *engine.Engine, rec *simswarm.RunRecord) {
	t.Helper()
	PutStatuses(t, e, 1, func(int) *simswarm.RunRecord { return rec })
}
