package runner

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/testkit"
)

// TestRedeliveredJobAnsweredFromItsOutcome: a job that comes back after
// its outcome was stored (its ack lost with a server) is answered from the
// store, failed outcome included, and never executed again; a job of
// another submission of the same failed run does execute.
func TestRedeliveredJobAnsweredFromItsOutcome(t *testing.T) {
	srv, err := engine.StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	eng, err := srv.Setup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	weng, err := srv.Open(ctx, "runner")
	if err != nil {
		t.Fatal(err)
	}
	defer weng.Close()
	log := filepath.Join(t.TempDir(), "log")
	c := simswarm.Campaign{ID: "0a0a0a0a0a0a0a0a", Workdir: ".", Snapshot: "s", Artifact: "a",
		Command: simswarm.Command{Kind: simswarm.KindTemplate, Template: "echo ran >> " + log + "; : {resultdir}"}}
	j := c.RunJob(0, "", "sub-1")
	stored := &simswarm.RunRecord{Key: j.Key, Campaign: c.ID, Run: 0, State: simswarm.RunFailed, Exit: 3, Submission: "sub-1",
		Host: "elsewhere", Finished: time.Now().Add(-time.Minute).Round(0)}
	if err := eng.RecordRun(ctx, stored); err != nil {
		t.Fatal(err)
	}
	if err := eng.SubmitRuns(ctx, 1, func(int) simswarm.RunJob { return j }); err != nil {
		t.Fatal(err)
	}
	var logged testkit.SyncBuffer
	r := &Runner{Eng: weng, Dir: t.TempDir(), Slots: 1, Host: "here",
		Log: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Serve(rctx) }()
	defer func() { stop(); <-done }()
	waitQueue := func() {
		t.Helper()
		for {
			if q, _ := eng.Queued(ctx, c.ID); len(q) == 0 {
				return
			}
			if ctx.Err() != nil {
				t.Fatal("job never acknowledged")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitQueue()
	st, ok, err := eng.RunStatus(ctx, c.ID, 0)
	if err != nil || !ok || st.State != simswarm.RunFailed || !st.Finished.Equal(stored.Finished) || st.Host != "elsewhere" || st.Reused {
		t.Fatalf("status %+v %v %v; want the stored outcome, as it ran", st, ok, err)
	}
	if _, err := os.Stat(log); !os.IsNotExist(err) {
		t.Fatalf("the run executed again (log: %v)", err)
	}
	if strings.Contains(logged.String(), "cannot prepare") {
		t.Fatalf("the answered job was prepared: %s", logged.String())
	}
	// A new submission of the failed run executes it (it cannot: the
	// snapshot does not exist, so the tree cannot be made; what matters is
	// that the runner tries instead of answering from the store).
	j2 := c.RunJob(0, "", "sub-2")
	if err := eng.SubmitRuns(ctx, 1, func(int) simswarm.RunJob { return j2 }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logged.String(), "cannot prepare run") {
		if time.Now().After(deadline) {
			t.Fatalf("the new submission was not run: %s", logged.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
