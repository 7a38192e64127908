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

// TestNoJobHeldWhileASlotIsFree: at the end of a campaign, a runner whose
// slot is busy gives back the job it took ahead for that slot as soon as
// another runner has a free slot and nothing to take. Two runners of one
// slot on one embedded engine; every run on runner "slow" after its first
// blocks until the test opens a gate (the first is quick, so that "slow"
// has measured the campaign's runs as short and takes one ahead), runs on
// "quick" take 0.3 s. Before the gate opens, every run but the blocked one
// must have ended, on "quick", and the engine must see one job taken: the
// running one. A job held ahead by "slow" would sit there, unstarted,
// while "quick" waits with nothing to do.
func TestNoJobHeldWhileASlotIsFree(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	eng, weng := twoEngines(t, ctx, 0)
	marks := t.TempDir()
	slowDir := filepath.Join(t.TempDir(), "slow")
	const n = 12
	// The loop is bounded (60 s); the test opens the gate well before.
	script := fmt.Sprintf(`case "$PWD" in
%q*) if [ -e %[2]q/first ]; then echo {run} >> %[2]q/blocked; i=0; while [ ! -e %[2]q/gate ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; else touch %[2]q/first; fi ;;
*) sleep 0.3 ;;
esac
echo {run} >> %[2]q/ran; : {resultdir}`, slowDir, marks)
	submitRuns(t, ctx, eng, n, script, 0)
	const campaign = "0c0c0c0c0c0c0c0c"

	var logged testkit.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))
	serve := func(id, dir string) chan struct{} {
		r := &Runner{Eng: weng, Dir: dir, Slots: 1, Host: id, ID: id, Log: log}
		done := make(chan struct{})
		go func() { defer close(done); _ = r.Serve(ctx) }()
		return done
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	ctx = rctx
	slow := serve("slow", slowDir)
	quick := serve("quick", t.TempDir())
	defer func() { stop(); <-slow; <-quick }()

	ended := func() (map[string]int, int) {
		hosts := map[string]int{}
		done := 0
		for run := 0; run < n; run++ {
			st, ok, err := eng.RunStatus(ctx, campaign, run)
			if err == nil && ok && st.Done() {
				hosts[st.Host]++
				done++
			}
		}
		return hosts, done
	}
	// Runs end on "quick" until only the blocked run remains: 12 runs of
	// 0.3 s need a few seconds. The bound stays below readyMax, after which
	// a held job goes back anyway.
	deadline := time.Now().Add(readyMax * 2 / 3)
	for {
		hosts, done := ended()
		if done == n-1 {
			break
		}
		if time.Now().After(deadline) {
			d := depth(t, ctx, eng)
			t.Fatalf("gate closed, %d of %d runs ended (%v), blocked: %q; the engine sees %d jobs taken, %d waiting: "+
				"a job is held unstarted while the other runner has a free slot\n%s",
				done, n, hosts, lines(t, filepath.Join(marks, "blocked")), d.Taken, d.Waiting, logged.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := depth(t, ctx, eng); d.Taken != 1 || d.Waiting != 0 {
		t.Errorf("with one run blocked and all others ended, the engine sees %d jobs taken, %d waiting; want 1, 0", d.Taken, d.Waiting)
	}
	if b := lines(t, filepath.Join(marks, "blocked")); len(b) != 1 {
		t.Errorf("blocked runs: %q; want one", b)
	}
	if err := os.WriteFile(filepath.Join(marks, "gate"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		if _, done := ended(); done == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the gate opened, not every run ended\n%s", logged.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	seen := map[string]int{}
	for _, l := range lines(t, filepath.Join(marks, "ran")) {
		seen[l]++
	}
	for run := 0; run < n; run++ {
		if c := seen[fmt.Sprint(run)]; c != 1 {
			t.Errorf("run %d ran %d times", run, c)
		}
		st, ok, err := eng.RunStatus(ctx, campaign, run)
		if err != nil || !ok || st.State != simswarm.RunSucceeded {
			t.Errorf("run %d: %+v %v %v; want succeeded", run, st, ok, err)
		}
	}
	if strings.Contains(logged.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", logged.String())
	}
}

func depth(t *testing.T, ctx context.Context, eng *engine.Engine) engine.Depth {
	t.Helper()
	ds, err := eng.Depths(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Name == string(engine.QueueRun) {
			return d
		}
	}
	t.Fatal("no run queue")
	return engine.Depth{}
}
