// Package enginetest gives a test a real embedded engine of its own: the
// one fixture every package's tests start engines with, so that a change
// to how an engine starts or is set up is made once.
package enginetest

import (
	"context"
	"testing"
	"time"

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
