package runner

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/archive"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/testkit"
)

// TestCancelSeenAfterReconnect: a cancel reaches runners as a core message;
// a runner whose connection was down when it was sent never gets it. When
// its connection comes back it reads the campaigns of the jobs it holds,
// stops the running one and drops the waiting one: the waiting run never
// starts.
func TestCancelSeenAfterReconnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	eng, weng := twoEngines(t, ctx, 0)
	root := t.TempDir()
	log := filepath.Join(t.TempDir(), "log")
	// Run 0 is short, so that the runner measures the campaign's runs as
	// short and keeps a spare job in its pool; the others take a while.
	os.WriteFile(filepath.Join(root, "job.sh"), []byte("echo start $1 >> "+log+"\nif [ $1 = 0 ]; then sleep 0.5; else sleep 20; fi\n"), 0o755)
	snap, _ := storeSnapshot(t, ctx, eng, root)
	var art bytes.Buffer
	if _, err := archive.Pack(&art, root, nil); err != nil {
		t.Fatal(err)
	}
	if err := eng.PutBytes(ctx, engine.ArtifactObject("art"), art.Bytes()); err != nil {
		t.Fatal(err)
	}
	c := simswarm.Campaign{ID: "0b0b0b0b0b0b0b0b", Workdir: ".", Snapshot: snap, Artifact: "art",
		Command: simswarm.Command{Kind: simswarm.KindTemplate, Template: "sh job.sh {run}; : {resultdir}", Repeat: 3}}
	if err := eng.SubmitCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := eng.SubmitRuns(ctx, 3, func(i int) simswarm.RunJob { return c.RunJob(i, "", "sub") }); err != nil {
		t.Fatal(err)
	}
	var logged testkit.SyncBuffer
	r := &Runner{Eng: weng, Dir: t.TempDir(), Slots: 1, Host: "here",
		Log: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Serve(rctx) }()
	defer func() { stop(); <-done }()
	// Wait for run 1 to run and run 2 to wait in the pool.
	for {
		b, _ := os.ReadFile(log)
		if strings.Contains(string(b), "start 1") { // Serve made its pool before any run
			r.pool.mu.Lock()
			pooled := len(r.pool.ready)
			r.pool.mu.Unlock()
			if pooled == 1 {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("run 1 never ran with run 2 in the pool; log %q\n%s", b, logged.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The cancel as the engine keeps it, without the message a connected
	// runner would have got.
	if _, err := eng.UpdateCampaign(ctx, c.ID, func(c *simswarm.Campaign) bool { c.State = simswarm.CampaignCancelled; return true }); err != nil {
		t.Fatal(err)
	}
	r.onReconnect()
	for _, run := range []int{1, 2} {
		for {
			st, ok, err := eng.RunStatus(ctx, c.ID, run)
			if err == nil && ok && st.State == simswarm.RunCancelled {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("run %d not cancelled: %+v %v\n%s", run, st, err, logged.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if b, _ := os.ReadFile(log); strings.Contains(string(b), "start 2") {
		t.Fatalf("the waiting run started after the cancel:\n%s", b)
	}
}
