package engine

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
)

// The job lifecycle, as every worker (builder, lister, runner) goes
// through it, on a real engine.

func takeOne(t *testing.T, e *Engine, q Queue) *Lease {
	t.Helper()
	got, err := e.Take(context.Background(), q, 1, 5*time.Second)
	if err != nil || len(got) != 1 {
		t.Fatalf("take a %s job: %d jobs, %v", q, len(got), err)
	}
	return got[0]
}

func noneLeft(t *testing.T, e *Engine, q Queue, wait time.Duration) {
	t.Helper()
	got, err := e.Take(context.Background(), q, 1, wait)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > 0 {
		t.Fatalf("a %s job came back (delivery %d): %s", q, got[0].Delivered, got[0].Data())
	}
}

// TestSettleStoresThenAcks: a settled job's answer is readable and the job
// never comes back.
func TestSettleStoresThenAcks(t *testing.T) {
	_, a, b := start(t, time.Second)
	ctx := context.Background()
	if err := a.SubmitList(ctx, simswarm.ListJob{Version: simswarm.Version, Key: "l1"}); err != nil {
		t.Fatal(err)
	}
	j, err := Decode[simswarm.ListJob](takeOne(t, b, QueueList), simswarm.RoleRunner)
	if err != nil || j.Refused != "" || j.Body.Key != "l1" {
		t.Fatalf("Decode = %+v, %v", j, err)
	}
	stored := false
	if err := j.Settle(ctx, ListAnswer(&simswarm.RunList{Key: "l1", Runs: []int{0, 1}}).OnStored(func() { stored = true })); err != nil {
		t.Fatal(err)
	}
	if !stored {
		t.Error("OnStored was not called")
	}
	rl, ok, err := a.RunList(ctx, "l1")
	if err != nil || !ok || len(rl.Runs) != 2 {
		t.Fatalf("the answer reads back as %+v, %v, %v", rl, ok, err)
	}
	noneLeft(t, a, QueueList, 2500*time.Millisecond) // past two leases
	if held, _ := b.held(); held != 0 {
		t.Errorf("the settled job is still held (%d)", held)
	}
}

// TestDecodeDropsAndRefuses: a body no worker can read is dropped for good;
// a job of another version is answered at once, naming both versions.
func TestDecodeDropsAndRefuses(t *testing.T) {
	_, a, b := start(t, time.Second)
	ctx := context.Background()
	if err := a.publish(ctx, subjectBuild, "not a job"); err != nil {
		t.Fatal(err)
	}
	if _, err := Decode[simswarm.BuildJob](takeOne(t, b, QueueBuild), simswarm.RoleBuilder); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("Decode of a string body: %v, want a malformed-job error", err)
	}
	noneLeft(t, a, QueueBuild, 2500*time.Millisecond)

	if err := a.SubmitBuild(ctx, simswarm.BuildJob{Version: "0.0.1", Key: "k"}); err != nil {
		t.Fatal(err)
	}
	j, err := Decode[simswarm.BuildJob](takeOne(t, b, QueueBuild), simswarm.RoleBuilder)
	if err != nil {
		t.Fatal(err)
	}
	want := "client version 0.0.1 does not match builder version " + simswarm.Version
	if j.Refused != want {
		t.Fatalf("Refused = %q, want %q", j.Refused, want)
	}
	if err := j.Settle(ctx, BuildAnswer("p", &simswarm.BuildRecord{Key: "k", State: simswarm.BuildFailed, Error: j.Refused})); err != nil {
		t.Fatal(err)
	}
	if rec, ok, _ := a.Build(ctx, "k"); !ok || rec.Error != want {
		t.Fatalf("build record %+v", rec)
	}
	if _, ok, _ := a.Build(ctx, simswarm.LastBuildKey("p")); ok {
		t.Error("a failed build became the project's last build")
	}
}

// TestRetryUntilLastTry: a job whose host keeps failing is retried up to
// the last try, where Retry refuses and the worker answers it; a job given
// back on its last try comes once more, refused, for its answer.
func TestRetryUntilLastTry(t *testing.T) {
	_, a, b := start(t, time.Second)
	ctx := context.Background()
	if err := a.SubmitList(ctx, simswarm.ListJob{Version: simswarm.Version, Key: "l"}); err != nil {
		t.Fatal(err)
	}
	tries := 0
	for {
		l := takeOne(t, b, QueueList)
		tries++
		if l.Delivered != tries {
			t.Fatalf("try %d is delivery %d", tries, l.Delivered)
		}
		if !l.Retry(0) {
			if !l.LastTry() || tries != MaxDeliver {
				t.Fatalf("Retry refused on delivery %d (LastTry %v), want delivery %d", l.Delivered, l.LastTry(), MaxDeliver)
			}
			// A worker that stops now gives it back: it comes once more,
			// to be answered.
			l.GiveBack()
			break
		}
	}
	j, err := Decode[simswarm.ListJob](takeOne(t, b, QueueList), simswarm.RoleRunner)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(j.Refused, "gave up after 10 deliveries") {
		t.Fatalf("the delivery after the last try: Refused = %q", j.Refused)
	}
	if err := j.Settle(ctx, ListAnswer(&simswarm.RunList{Key: "l", Error: j.Refused})); err != nil {
		t.Fatal(err)
	}
	noneLeft(t, a, QueueList, 2500*time.Millisecond)
}

type countingHandler struct {
	handled atomic.Int32
	busy    atomic.Int32
	maxBusy atomic.Int32
}

func (h *countingHandler) Handle(ctx context.Context, l *Lease) {
	h.handled.Add(1)
	j, err := Decode[simswarm.ListJob](l, simswarm.RoleRunner)
	if err != nil {
		return
	}
	_ = j.Settle(ctx, ListAnswer(&simswarm.RunList{Key: j.Body.Key}))
}

// TestServeLoop: Serve hands every job to its handler one at a time, says
// when it is busy, takes nothing while its worker waits, and returns when
// its context ends.
func TestServeLoop(t *testing.T) {
	_, a, b := start(t, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &countingHandler{}
	var hold atomic.Bool
	hold.Store(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Serve(ctx, Loop{Queue: QueueList,
			Wait: func() time.Duration {
				if hold.Load() {
					return 50 * time.Millisecond
				}
				return 0
			},
			Busy: func(on bool) {
				if on {
					n := h.busy.Add(1)
					if n > h.maxBusy.Load() {
						h.maxBusy.Store(n)
					}
				} else {
					h.busy.Add(-1)
				}
			}}, h)
	}()
	for i := range 5 {
		if err := a.SubmitList(ctx, simswarm.ListJob{Version: simswarm.Version, Key: "l" + string(rune('0'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if n := h.handled.Load(); n != 0 {
		t.Fatalf("a waiting worker handled %d jobs", n)
	}
	hold.Store(false)
	deadline := time.Now().Add(20 * time.Second)
	for h.handled.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := h.handled.Load(); n != 5 {
		t.Fatalf("handled %d of 5 jobs", n)
	}
	if m := h.maxBusy.Load(); m != 1 {
		t.Errorf("at most %d jobs at once, want 1", m)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	for i := range 5 {
		if _, ok, _ := a.RunList(context.Background(), "l"+string(rune('0'+i))); !ok {
			t.Errorf("job l%d has no answer", i)
		}
	}
}
