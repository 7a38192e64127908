package runner

import (
	"context"
	"github.com/simswarm/simswarm/internal/engine/enginetest"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/retry"
	"github.com/simswarm/simswarm/internal/testkit"
)

// twoEngines starts an embedded engine with the given lease (0: the
// default) and returns two connections to it: the test's and the runner's.
func twoEngines(t *testing.T, _ context.Context, lease time.Duration) (eng, weng *engine.Engine) {
	t.Helper()
	e := enginetest.Start(t, lease)
	return e.Engine, e.Open(t, "runner")
}

// TestRedeliveredJobAnsweredFromItsOutcome: a job that comes back after
// its outcome was stored (its ack lost with a server) is answered from the
// store, failed outcome included, and never executed again; a job of
// another submission of the same failed run does execute.
func TestRedeliveredJobAnsweredFromItsOutcome(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	eng, weng := twoEngines(t, ctx, 0)
	log := filepath.Join(t.TempDir(), "log")
	c := simswarm.Campaign{ID: "0a0a0a0a0a0a0a0a", Workdir: ".", Snapshot: "s", Artifact: "a",
		Command: simswarm.Command{Kind: simswarm.KindTemplate, Template: "echo ran >> " + log + "; : {resultdir}"}}
	j := c.RunJob(0, "", "sub-1")
	stored := &simswarm.RunRecord{Key: j.Key, Campaign: c.ID, Run: 0, State: simswarm.RunFailed, Exit: 3, Submission: "sub-1",
		Host: "elsewhere", Finished: time.Now().Add(-time.Minute).Round(0)}
	if err := eng.Store(ctx, engine.RunAnswer(stored)); err != nil {
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

// TestJobHeldElsewhereWaits: a job that another runner announces it still
// holds (as a runner does after its connection to a restarted server came
// back) is not executed while the announcements go on: when its holder
// stores the outcome and stops announcing, the job is answered from the
// store; when its holder falls silent without an outcome (it died), the
// job runs.
func TestJobHeldElsewhereWaits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A 1 s lease: renewals and notices every third of it, a notice
	// standing for 1 s.
	eng, weng := twoEngines(t, ctx, time.Second)
	c := simswarm.Campaign{ID: "0b0b0b0b0b0b0b0b", Workdir: ".", Snapshot: "s", Artifact: "a",
		Command: simswarm.Command{Kind: simswarm.KindTemplate, Template: "true {resultdir}"}}
	stored, silent := c.RunJob(0, "", "sub-1"), c.RunJob(1, "", "sub-1")
	// The holder announces both jobs: the first two messages of a fresh
	// stream, sequences 1 and 2.
	held := []uint64{1, 2}
	var mu sync.Mutex
	announce := func() []uint64 {
		mu.Lock()
		defer mu.Unlock()
		return held
	}
	actx, stopAnnouncing := context.WithCancel(ctx)
	defer stopAnnouncing()
	go func() {
		for actx.Err() == nil {
			if seqs := announce(); len(seqs) > 0 {
				_ = eng.AnnounceHeld(engine.HeldNotice{From: "holder", Seqs: seqs})
			}
			retry.Sleep(actx, eng.RenewEvery())
		}
	}()
	var logged testkit.SyncBuffer
	r := &Runner{Eng: weng, Dir: t.TempDir(), Slots: 2, Host: "here",
		Log: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Serve(rctx) }()
	defer func() { stop(); <-done }()
	// The runner has heard a notice before the jobs come.
	time.Sleep(eng.RenewEvery() + 500*time.Millisecond)
	if err := eng.SubmitRuns(ctx, 2, func(i int) simswarm.RunJob { return []simswarm.RunJob{stored, silent}[i] }); err != nil {
		t.Fatal(err)
	}

	// While the holder announces them, neither job is tried, for several
	// notice lifetimes.
	deadline := time.Now().Add(2 * eng.HeldNoticeFor())
	for time.Now().Before(deadline) {
		if strings.Contains(logged.String(), "cannot prepare run") || strings.Contains(logged.String(), "answered from the store") {
			t.Fatalf("a job announced as held elsewhere was handled:\n%s", logged.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(logged.String(), "waits for the runner still holding it") {
		t.Errorf("the runner does not say why the jobs wait:\n%s", logged.String())
	}
	// The holder stores the first job's outcome, then stops announcing
	// both (it acked the first; it died holding the second).
	rec := &simswarm.RunRecord{Key: stored.Key, Campaign: c.ID, Run: 0, State: simswarm.RunSucceeded, Submission: "sub-1",
		Host: "elsewhere", Worker: "holder", Finished: time.Now().Round(0)}
	if err := eng.Store(ctx, engine.RunAnswer(rec)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	held = nil
	mu.Unlock()
	deadline = time.Now().Add(30 * time.Second)
	for {
		st, ok, err := eng.RunStatus(ctx, c.ID, 0)
		if err == nil && ok && st.Finished.Equal(rec.Finished) && strings.Contains(logged.String(), "cannot prepare run") {
			if st.Host != "elsewhere" {
				t.Errorf("the held job's status names host %q, want the holder's", st.Host)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("within 30 s of the holder's silence: run 0 status %+v %v %v; log:\n%s", st, ok, err, logged.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The job whose holder stored its outcome was answered from it, not
	// tried (an infrastructure fault records nothing before its tenth
	// delivery, so its status would not be the holder's).
	if !strings.Contains(logged.String(), "run answered from the store\" campaign="+c.ID+" run=0") {
		t.Errorf("the stored job was not answered from the store:\n%s", logged.String())
	}
}

// TestRunEndedBeforeTheStopIsRecorded: a run whose process ended on its
// own, well, just before the runner was told to stop (as Slurm signals a
// pilot's processes one by one, the run's first) is a result: it is
// recorded, not handed back to run a second time. The process leaves a
// child holding its output, so the runner is still collecting it when
// the stop comes.
func TestRunEndedBeforeTheStopIsRecorded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	eng, weng := twoEngines(t, ctx, 0)
	dir := t.TempDir()
	runs, pid := filepath.Join(dir, "runs.log"), filepath.Join(dir, "pid")
	submitRuns(t, ctx, eng, 1, "(sleep 5 &); echo {run} >> "+runs+"; echo $$ > "+pid+"; : {resultdir}", 0)
	r := &Runner{Eng: weng, Dir: t.TempDir(), Slots: 1, Host: "here", ID: "here"}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Serve(rctx) }()
	defer func() { stop(); <-done }()
	for ended := false; !ended; time.Sleep(10 * time.Millisecond) {
		if ctx.Err() != nil {
			t.Fatal("the run's process never ended")
		}
		b, err := os.ReadFile(pid)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			continue
		}
		_, err = os.Stat("/proc/" + strings.TrimSpace(string(b)))
		ended = os.IsNotExist(err)
	}
	stop()
	<-done
	st, ok, err := eng.RunStatus(ctx, "0c0c0c0c0c0c0c0c", 0)
	if err != nil || !ok || st.State != simswarm.RunSucceeded {
		t.Errorf("run status %+v %v %v; want succeeded", st, ok, err)
	}
	if q, err := eng.Queued(ctx, "0c0c0c0c0c0c0c0c"); err != nil || len(q) != 0 {
		t.Errorf("queued after the stop: %v %v; want nothing (the run was done)", q, err)
	}
	if got := lines(t, runs); len(got) != 1 {
		t.Errorf("the run executed %d times", len(got))
	}
}
