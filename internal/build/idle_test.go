package build

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine/enginetest"
)

// TestBuilderIdleExit: a builder with IdleExit (a Slurm build job) builds
// what waits, then ends on its own once nothing came for IdleExit,
// announced no more, releasing its allocation.
func TestBuilderIdleExit(t *testing.T) {
	e := enginetest.Start(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "input.txt"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap := upload(t, e.Engine, dir)
	recipe := simswarm.Recipe{Command: "cp input.txt output.txt"}
	job := simswarm.BuildJob{Version: simswarm.Version, Key: simswarm.BuildKey(snap, recipe), Request: "r1",
		Project: "proj", Snapshot: snap, Recipe: recipe}
	const idle = 2 * time.Second
	b := &Builder{Eng: e.Open(t, "builder"), Dir: t.TempDir(), Jobs: 1, Host: "bhost", IdleExit: idle,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Serve(ctx) }()
	if rec := buildOnce(t, e.Engine, job); rec.State != simswarm.BuildSucceeded {
		t.Fatalf("build: %+v", rec)
	}
	built := time.Now()
	select {
	case <-done:
	case <-time.After(idle + 15*time.Second):
		t.Fatalf("the builder did not end %s after its last build", idle)
	}
	if since := time.Since(built); since < idle-500*time.Millisecond {
		t.Errorf("the builder ended %s after its build; want no sooner than %s", since, idle)
	}
	heard, err := e.Engine.Workers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range heard {
		if w.Role == simswarm.RoleBuilder {
			t.Errorf("builder still announced after it ended: %+v", w)
		}
	}
}
