package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
)

// start runs an embedded engine with the given lease and returns two
// connections to it: two workers, or a worker and a client.
func start(t *testing.T, lease time.Duration) (*Embedded, *Engine, *Engine) {
	t.Helper()
	srv, err := StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := srv.SetupCluster(ctx, 1, lease)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	b, err := srv.Open(ctx, "second")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if b.Lease != lease {
		t.Fatalf("Open read lease %s, server set %s", b.Lease, lease)
	}
	return srv, a, b
}

func campaign(id string) simswarm.Campaign {
	return simswarm.Campaign{ID: id, Workdir: ".", Artifact: "art", Snapshot: "snap", Runs: 3,
		Command:  simswarm.Command{Kind: simswarm.KindOmnetpp, Argv: []string{"./sim"}},
		Settings: simswarm.JobSettings{Batch: 2, Retries: 1, Timeout: time.Minute, Local: "/r", Host: "h"}}
}

func submit(t *testing.T, e *Engine, c simswarm.Campaign, runs ...int) {
	t.Helper()
	if err := e.SubmitRuns(context.Background(), len(runs), func(i int) simswarm.RunJob { return c.RunJob(runs[i], "", "sub1") }); err != nil {
		t.Fatal(err)
	}
}

// TestLeaseRenewedWhileHeld: a job held three times as long as the lease
// is never handed to another worker, and once acked it is gone.
func TestLeaseRenewedWhileHeld(t *testing.T) {
	_, a, b := start(t, time.Second)
	ctx := context.Background()
	submit(t, a, campaign("c1"), 0)
	got, err := a.Take(ctx, QueueRun, 1, 5*time.Second)
	if err != nil || len(got) != 1 {
		t.Fatalf("Take = %v, %v", got, err)
	}
	// The other worker waits for work the whole time.
	deadline := time.Now().Add(3500 * time.Millisecond)
	for time.Now().Before(deadline) {
		other, err := b.Take(ctx, QueueRun, 1, time.Until(deadline))
		if err != nil {
			t.Fatal(err)
		}
		if len(other) > 0 {
			t.Fatalf("a job held and renewed was handed out again after %s (delivery %d)", time.Since(got[0].Taken), other[0].Delivered)
		}
	}
	if held, renewals := a.held(); held != 1 || renewals < 5 {
		t.Fatalf("held %d, renewals %d after 3.5 s with a 1 s lease; want 1 and at least 5", held, renewals)
	}
	if err := got[0].ack(ctx); err != nil {
		t.Fatal(err)
	}
	if held, _ := a.held(); held != 0 {
		t.Fatalf("held %d after ack", held)
	}
	q, err := a.Queued(ctx, "c1")
	if err != nil || len(q) != 0 {
		t.Fatalf("Queued after ack = %v, %v", q, err)
	}
}

// TestLeaseLapsesWhenHolderDies: a worker that stops renewing (its
// connection gone, as with SIGKILL) loses the job within about a lease.
func TestLeaseLapsesWhenHolderDies(t *testing.T) {
	srv, _, b := start(t, time.Second)
	ctx := context.Background()
	dying, err := srv.Open(ctx, "dying")
	if err != nil {
		t.Fatal(err)
	}
	submit(t, b, campaign("c2"), 7)
	got, err := dying.Take(ctx, QueueRun, 1, 5*time.Second)
	if err != nil || len(got) != 1 {
		t.Fatalf("Take = %v, %v", got, err)
	}
	died := time.Now()
	dying.Close()
	again, err := b.Take(ctx, QueueRun, 1, 10*time.Second)
	if err != nil || len(again) != 1 {
		t.Fatalf("the dead worker's job did not come back: %v, %v", again, err)
	}
	if el := time.Since(died); el > 4*time.Second {
		t.Errorf("job came back %s after its worker died; lease 1 s", el)
	}
	if again[0].Delivered != 2 || again[0].Subject() != runSubject("c2", 7) {
		t.Errorf("redelivered job: delivery %d, subject %s", again[0].Delivered, again[0].Subject())
	}
	again[0].giveBack(0)
	if back, err := b.Take(ctx, QueueRun, 1, 5*time.Second); err != nil || len(back) != 1 || back[0].Delivered != 3 {
		t.Fatalf("nak'd job: %v, %v", back, err)
	}
}

// TestTakeTakesWhatWaits: Take hands out what waits, up to n, without
// waiting for n; with nothing waiting and no wait it returns at once.
func TestTakeTakesWhatWaits(t *testing.T) {
	_, a, _ := start(t, DefaultLease)
	ctx := context.Background()
	t0 := time.Now()
	if got, err := a.Take(ctx, QueueRun, 4, 0); err != nil || len(got) != 0 || time.Since(t0) > 2*time.Second {
		t.Fatalf("Take on an empty queue = %v, %v after %s", got, err, time.Since(t0))
	}
	submit(t, a, campaign("c3"), 0, 1, 2)
	t0 = time.Now()
	got, err := a.Take(ctx, QueueRun, 8, 5*time.Second)
	if err != nil || len(got) != 3 {
		t.Fatalf("Take(8) of 3 waiting = %d jobs, %v", len(got), err)
	}
	if el := time.Since(t0); el > 2*time.Second {
		t.Errorf("Take waited %s although jobs were there", el)
	}
	for _, l := range got {
		if err := l.ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCampaignStates: state changes are compare-and-set; a cancel sticks
// against a client that then finishes, and a new submit makes the campaign
// active again.
func TestCampaignStates(t *testing.T) {
	_, a, b := start(t, DefaultLease)
	ctx := context.Background()
	c := campaign("c4")
	if _, err := a.UpdateCampaign(ctx, c.ID, func(*simswarm.Campaign) bool { return true }); !errors.Is(err, ErrNoCampaign) {
		t.Fatalf("update of a missing campaign: %v", err)
	}
	if err := a.SubmitCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Two writers at once, each adding to Runs: neither update is lost.
	var wg sync.WaitGroup
	for _, e := range []*Engine{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := e.UpdateCampaign(ctx, c.ID, func(c *simswarm.Campaign) bool { c.Runs++; return true }); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got, ok, err := a.Campaign(ctx, c.ID)
	if err != nil || !ok || got.Runs != 3+40 || got.State != simswarm.CampaignActive {
		t.Fatalf("after 40 concurrent updates: %+v %v %v", got, ok, err)
	}
	if got.Settings != c.Settings {
		t.Errorf("settings not kept: %+v", got.Settings)
	}
	if err := b.CancelCampaign(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if fin, err := a.FinishCampaign(ctx, c.ID); err != nil || fin.State != simswarm.CampaignCancelled {
		t.Fatalf("finish after cancel: %+v %v; want it to stay cancelled", fin, err)
	}
	if err := a.SubmitCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	if fin, err := a.FinishCampaign(ctx, c.ID); err != nil || fin.State != simswarm.CampaignDone {
		t.Fatalf("finish after a new submit: %+v %v", fin, err)
	}
}

// TestCancelCampaign: cancel purges the campaign's waiting jobs (not
// another campaign's), tells workers up to which job, and marks it.
func TestCancelCampaign(t *testing.T) {
	_, a, b := start(t, DefaultLease)
	ctx := context.Background()
	c, other := campaign("c5"), campaign("c6")
	for _, x := range []simswarm.Campaign{c, other} {
		if err := a.SubmitCampaign(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	submit(t, a, c, 0, 1, 2)
	submit(t, a, other, 0)
	held, err := b.Take(ctx, QueueRun, 1, 5*time.Second)
	if err != nil || len(held) != 1 {
		t.Fatal(held, err)
	}
	heard := make(chan Cancel, 4)
	stop, err := b.OnCancel(func(c Cancel) { heard <- c })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := b.Flush(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := a.CancelCampaign(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-heard:
		if got.Campaign != c.ID || got.UpTo < held[0].Seq {
			t.Errorf("cancel notice %+v; held job has sequence %d", got, held[0].Seq)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no cancel notice")
	}
	if q, _ := a.Queued(ctx, c.ID); len(q) != 0 {
		t.Errorf("cancelled campaign still queued: %v", q)
	}
	if q, _ := a.Queued(ctx, other.ID); !q[0] {
		t.Errorf("the other campaign's job was purged too: %v", q)
	}
	if rec, _, _ := a.Campaign(ctx, c.ID); rec.State != simswarm.CampaignCancelled {
		t.Errorf("state after cancel: %s", rec.State)
	}
}

// TestRecords: a run's record and status are stored, read (directly and
// through the leader), watched; a RunJob made from a campaign keeps the
// campaign's settings.
func TestRecords(t *testing.T) {
	_, a, b := start(t, DefaultLease)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := campaign("c7")
	j := c.RunJob(2, "", "sub9")
	if j.Key != simswarm.RunKey(c.Artifact, c.Workdir, c.Command, 2, "") || j.JobSettings != c.Settings || j.Submission != "sub9" || j.Version != simswarm.Version {
		t.Fatalf("RunJob = %+v", j)
	}
	w, err := b.WatchStatus(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if rec := <-w.Updates(); rec != nil {
		t.Fatalf("first update %+v; want the end of (no) stored records", rec)
	}
	fin := time.Now().Round(0)
	rec := &simswarm.RunRecord{Key: j.Key, Campaign: c.ID, Run: 2, State: simswarm.RunSucceeded, Finished: fin,
		Files: []simswarm.File{{Name: "x.sca", Size: 3, Data: []byte("abc")}}}
	if err := a.recordRun(ctx, rec); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-w.Updates():
		if got == nil || got.Run != 2 || got.State != simswarm.RunSucceeded || len(got.Files) != 1 || got.Files[0].Data != nil {
			t.Fatalf("watched status %+v; want the compact record", got)
		}
	case <-ctx.Done():
		t.Fatal("no status update")
	}
	full, err := b.RunFinished(ctx, j.Key, fin, 5*time.Second)
	if err != nil || string(full.Files[0].Data) != "abc" {
		t.Fatalf("RunFinished = %+v, %v", full, err)
	}
	var leader simswarm.RunRecord
	if ok, err := b.getFromLeader(ctx, BucketRuns, j.Key, &leader); err != nil || !ok || leader.Run != 2 {
		t.Fatalf("leader read = %+v %v %v", leader, ok, err)
	}
	if ok, err := b.getFromLeader(ctx, BucketRuns, "never", &leader); err != nil || ok {
		t.Fatalf("leader read of a missing key = %v %v", ok, err)
	}
	if _, err := b.RunFinished(ctx, "never", fin, 500*time.Millisecond); err == nil {
		t.Fatal("RunFinished of a missing record: no error")
	}
	// A running note is progress only: no full record is written.
	a.NoteStatus(&simswarm.RunRecord{Key: "k3", Campaign: c.ID, Run: 3, State: simswarm.RunRunning})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if st, ok, _ := b.RunStatus(ctx, c.ID, 3); ok && st.State == simswarm.RunRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("running note not stored")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok, _ := b.Run(ctx, "k3"); ok {
		t.Error("a running note wrote a full record")
	}
}
