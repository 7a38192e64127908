package runner

import (
	"context"
	"fmt"
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

// TestPilotTakesNoRunPastItsEnd: a runner whose host ends soon (a Slurm
// pilot's time limit) runs what its measured run times say finishes
// before the end, hands the rest back at once and ends on its own before
// the end; another runner then runs the rest. Every run executes once.
func TestPilotTakesNoRunPastItsEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	eng, weng := twoEngines(t, ctx, 0)
	runs := filepath.Join(t.TempDir(), "runs.log")
	submitRuns(t, ctx, eng, 6, "sleep 1; echo {run} $(date +%s.%N) >> "+runs+"; : {resultdir}", 0)
	var logged testkit.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))
	end := time.Now().Add(3500 * time.Millisecond)
	pilot := &Runner{Eng: weng, Dir: t.TempDir(), Slots: 1, Host: "pilot", ID: "pilot", Log: log, End: end}
	done := make(chan struct{})
	go func() { defer close(done); _ = pilot.Serve(ctx) }()
	select {
	case <-done:
	case <-time.After(time.Until(end) + 2*time.Second):
		t.Fatalf("the pilot did not end before its end:\n%s", logged.String())
	}
	if !strings.Contains(logged.String(), "cannot finish by then") {
		t.Errorf("the pilot did not say why it ended:\n%s", logged.String())
	}
	before := lines(t, runs)
	if len(before) == 0 || len(before) >= 6 {
		t.Fatalf("the pilot ran %d runs; want some, not all", len(before))
	}
	for _, l := range before {
		var run int
		var at float64
		fmt.Sscanf(l, "%d %f", &run, &at)
		if time.Unix(0, int64(at*1e9)).After(end) {
			t.Errorf("run %d ended after the pilot's end", run)
		}
	}
	// The rest went back at once: another runner takes them now.
	other := &Runner{Eng: weng, Dir: t.TempDir(), Slots: 2, Host: "other", ID: "other", Log: log}
	octx, stop := context.WithCancel(ctx)
	odone := make(chan struct{})
	go func() { defer close(odone); _ = other.Serve(octx) }()
	defer func() { stop(); <-odone }()
	deadline := time.Now().Add(30 * time.Second)
	for len(lines(t, runs)) < 6 {
		if time.Now().After(deadline) {
			t.Fatalf("runs done: %q; want 6", lines(t, runs))
		}
		time.Sleep(100 * time.Millisecond)
	}
	seen := map[string]int{}
	for _, l := range lines(t, runs) {
		seen[strings.Fields(l)[0]]++
	}
	for run := 0; run < 6; run++ {
		if n := seen[fmt.Sprint(run)]; n != 1 {
			t.Errorf("run %d executed %d times", run, n)
		}
	}
}

// submitRuns stores a snapshot and an artifact and submits n runs of a
// template command, each expected to take expect by the client's history.
func submitRuns(t *testing.T, ctx context.Context, eng *engine.Engine, n int, template string, expect time.Duration) {
	t.Helper()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "input"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap, _ := storeSnapshot(t, ctx, eng, src)
	storeArtifact(t, ctx, eng, "art-pilot")
	c := simswarm.Campaign{ID: "0c0c0c0c0c0c0c0c", Workdir: ".", Snapshot: snap, Artifact: "art-pilot",
		Command: simswarm.Command{Kind: simswarm.KindTemplate, Repeat: n, Template: template}}
	err := eng.SubmitRuns(ctx, n, func(i int) simswarm.RunJob {
		j := c.RunJob(i, "", "sub")
		j.Expect = expect
		return j
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPilotUsesTheClientsHistory: a pilot that has timed nothing yet takes
// no run the client's history says cannot finish before its end: it hands
// them back untouched and ends.
func TestPilotUsesTheClientsHistory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	eng, weng := twoEngines(t, ctx, 0)
	runs := filepath.Join(t.TempDir(), "runs.log")
	submitRuns(t, ctx, eng, 2, "echo {run} >> "+runs+"; : {resultdir}", time.Minute)
	var logged testkit.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pilot := &Runner{Eng: weng, Dir: t.TempDir(), Slots: 1, Host: "pilot", ID: "pilot", Log: log, End: time.Now().Add(30 * time.Second)}
	done := make(chan struct{})
	go func() { defer close(done); _ = pilot.Serve(ctx) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("the pilot kept runs it could not finish:\n%s", logged.String())
	}
	if got := lines(t, runs); len(got) != 0 {
		t.Errorf("runs executed: %q", got)
	}
	if q, err := eng.Queued(ctx, "0c0c0c0c0c0c0c0c"); err != nil || len(q) != 2 {
		t.Errorf("queued after the pilot ended: %v %v; want both runs", q, err)
	}
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// TestPilotEndsWhenIdle: a runner with nothing to run for IdleExit ends
// on its own (a pilot releases its allocation); one without IdleExit
// keeps serving.
func TestPilotEndsWhenIdle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, weng := twoEngines(t, ctx, 0)
	var logged testkit.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))
	serve := func(r *Runner) chan struct{} {
		done := make(chan struct{})
		go func() { defer close(done); _ = r.Serve(ctx) }()
		return done
	}
	t0 := time.Now()
	idle := serve(&Runner{Eng: weng, Dir: t.TempDir(), Slots: 1, Host: "pilot", ID: "idle", Log: log, IdleExit: time.Second})
	steady := serve(&Runner{Eng: weng, Dir: t.TempDir(), Slots: 1, Host: "node", ID: "steady", Log: log})
	select {
	case <-idle:
		if el := time.Since(t0); el < time.Second {
			t.Errorf("ended after %s; want after its idle second", el)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("an idle pilot did not end:\n%s", logged.String())
	}
	if !strings.Contains(logged.String(), "nothing to run for 1s") {
		t.Errorf("no word of why it ended:\n%s", logged.String())
	}
	select {
	case <-steady:
		t.Error("a runner without an idle exit ended")
	case <-time.After(2 * time.Second):
	}
	cancel()
	<-steady
}
