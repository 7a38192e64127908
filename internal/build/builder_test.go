package build

import (
	"bytes"
	"context"
	"github.com/simswarm/simswarm/internal/engine/enginetest"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/archive"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/snapshot"
)

// builderOn starts a builder on a fresh embedded engine and returns the
// client's connection to that engine.
func builderOn(t *testing.T) *engine.Engine {
	t.Helper()
	e := enginetest.Start(t)
	weng := e.Open(t, "builder")
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	b := &Builder{Eng: weng, Dir: t.TempDir(), Jobs: 2, Host: "bhost",
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	go func() { defer close(done); _ = b.Serve(wctx) }()
	t.Cleanup(func() { stop(); <-done })
	return e.Engine
}

// upload stores the snapshot of dir as a client does and returns its key.
func upload(t *testing.T, eng *engine.Engine, dir string) string {
	t.Helper()
	ctx := context.Background()
	man, err := snapshot.Scan(ctx, dir, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range man.Entries {
		if e.Hash == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(e.Path)))
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.PutBytes(ctx, engine.FileObject(e.Hash), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := eng.PutBytes(ctx, engine.SnapshotObject(man.Key()), man.Encode()); err != nil {
		t.Fatal(err)
	}
	return man.Key()
}

// buildOnce submits a build job and waits for the record answering it.
func buildOnce(t *testing.T, eng *engine.Engine, job simswarm.BuildJob) *simswarm.BuildRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := eng.WaitBuild(ctx, job.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := eng.SubmitBuild(ctx, job); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case rec := <-w.Updates():
			if rec != nil && rec.Request == job.Request {
				return rec
			}
		case <-ctx.Done():
			t.Fatalf("no build record for %s", job.Request)
		}
	}
}

// TestBuilderBuildsCachesAndFails: a build job yields an artifact holding
// what the build made (and not the sources); the same job again is
// answered from the cache; a failing build says why; a job of another
// version is refused.
func TestBuilderBuildsCachesAndFails(t *testing.T) {
	eng := builderOn(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "input.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap := upload(t, eng, dir)
	recipe := simswarm.Recipe{Command: "tr a-z A-Z < input.txt > output.txt && echo built {jobs}"}
	job := simswarm.BuildJob{Version: simswarm.Version, Key: simswarm.BuildKey(snap, recipe), Request: "r1",
		Project: "proj", Snapshot: snap, Recipe: recipe}
	rec := buildOnce(t, eng, job)
	if rec.State != simswarm.BuildSucceeded || rec.Cached || rec.Files != 1 || rec.Host != "bhost" {
		t.Fatalf("first build: %+v", rec)
	}
	ctx := context.Background()
	obj, err := eng.OpenObject(ctx, engine.ArtifactObject(rec.Artifact))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	entries, err := archive.Unpack(obj, out)
	obj.Close()
	if err != nil || len(entries) != 1 {
		t.Fatalf("artifact: %v %v", entries, err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "output.txt")); string(b) != "HELLO\n" {
		t.Errorf("artifact's output.txt = %q", b)
	}
	var logBuf bytes.Buffer
	if err := eng.GetObject(ctx, rec.Log, &logBuf); err != nil || !strings.Contains(logBuf.String(), "built 2") {
		t.Errorf("build log %q %v; want the command's output with {jobs} = 2", logBuf.String(), err)
	}
	if last, ok, _ := eng.Build(ctx, simswarm.LastBuildKey("proj")); !ok || last.Artifact != rec.Artifact {
		t.Errorf("last build of the project: %+v", last)
	}

	job.Request = "r2"
	again := buildOnce(t, eng, job)
	if again.State != simswarm.BuildSucceeded || !again.Cached || again.Artifact != rec.Artifact {
		t.Errorf("same build again: %+v; want it answered from the cache", again)
	}

	bad := simswarm.Recipe{Command: "echo compiling; echo 'error: no such thing' >&2; exit 3"}
	failed := buildOnce(t, eng, simswarm.BuildJob{Version: simswarm.Version, Key: simswarm.BuildKey(snap, bad), Request: "r3",
		Project: "proj", Snapshot: snap, Recipe: bad})
	if failed.State != simswarm.BuildFailed || !strings.Contains(failed.Error, "exit status 3") || !strings.Contains(failed.Tail, "no such thing") {
		t.Errorf("failing build: %+v", failed)
	}

	old := buildOnce(t, eng, simswarm.BuildJob{Version: "0.0.1", Key: "k-old", Request: "r4", Project: "proj", Snapshot: snap, Recipe: recipe})
	if old.State != simswarm.BuildFailed || !strings.Contains(old.Error, "client version 0.0.1") {
		t.Errorf("job of another version: %+v", old)
	}
	// The builder acknowledges a job just after storing its record.
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := eng.Depths(ctx)
		if err == nil && d[0].Waiting == 0 && d[0].Taken == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("build queue after the builds: %+v %v", d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
