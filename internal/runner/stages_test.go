package runner

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/safedir"
	"github.com/simswarm/simswarm/internal/testkit"
)

// TestStagesReused: a slot's runs use the same few scratch stages, emptied
// between runs, not a new directory each (a third of a runner's CPU on
// short runs); each run still finds its result directory empty, and when
// the runner stops no stage is left.
func TestStagesReused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	eng, weng := twoEngines(t, ctx, 0)
	marks := t.TempDir()
	const n = 8
	// Each run notes its result directory and what it found in it, then
	// leaves a file there.
	submitRuns(t, ctx, eng, n, `echo "{resultdir} $(ls -A {resultdir} | wc -l)" >> `+marks+`/dirs; echo x > {resultdir}/left-{run}.txt`, 0)
	var logged testkit.SyncBuffer
	dir := t.TempDir()
	r := &Runner{Eng: weng, Dir: dir, Slots: 1, Host: "h", ID: "h",
		Log: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Serve(rctx) }()
	deadline := time.Now().Add(45 * time.Second)
	for len(lines(t, filepath.Join(marks, "dirs"))) < n {
		if time.Now().After(deadline) {
			t.Fatalf("runs done: %q\n%s", lines(t, filepath.Join(marks, "dirs")), logged.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	seen := map[string]bool{}
	for _, l := range lines(t, filepath.Join(marks, "dirs")) {
		var d string
		var files int
		if _, err := fmt.Sscan(l, &d, &files); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if files != 0 {
			t.Errorf("a run found %d files in its result directory %s; want none", files, d)
		}
		seen[d] = true
	}
	// One slot: its stage, and one more while the previous run's outcome
	// is being recorded.
	if len(seen) > 2 {
		t.Errorf("%d runs of one slot used %d scratch stages; want at most 2", n, len(seen))
	}
	stop()
	<-done
	if left, _ := filepath.Glob(filepath.Join(dir, safedir.ScratchName, "*")); len(left) > 0 {
		t.Errorf("stages left after the runner stopped: %q", left)
	}
	if _, err := os.Stat(filepath.Join(dir, safedir.ScratchName)); err == nil {
		t.Errorf("%s left after the runner stopped", safedir.ScratchName)
	}
}
