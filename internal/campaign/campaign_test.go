package campaign_test

import (
	"context"
	"fmt"
	"github.com/simswarm/simswarm/internal/engine/enginetest"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/build"
	"github.com/simswarm/simswarm/internal/campaign"
	"github.com/simswarm/simswarm/internal/embedded"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/runner"
	"github.com/simswarm/simswarm/internal/testkit"
)

// project writes a simswarm.toml project whose runs append "start N" and
// "done N" to log (outside the project, so every execution is counted
// wherever it runs), sleep secs, and write one result file.
func project(t *testing.T, runs int, secs float64) (dir, log string) {
	t.Helper()
	dir = t.TempDir()
	log = filepath.Join(t.TempDir(), "executions.log")
	toml := fmt.Sprintf(`[build]
command = ""

[run]
command = "echo start {run} >> %s; sleep %g; echo r{run} > {resultdir}/Exp-#{run}.sca; echo done {run} >> %s"
repeat = %d
`, log, secs, log, runs)
	if err := os.WriteFile(filepath.Join(dir, "simswarm.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, log
}

// executions counts the "start" and "done" lines of a log.
func executions(t *testing.T, log string) (starts, dones int) {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "start "):
			starts++
		case strings.HasPrefix(l, "done "):
			dones++
		}
	}
	return starts, dones
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func startEmbedded(t *testing.T, slots int) (*embedded.Instance, string) {
	t.Helper()
	state := t.TempDir()
	inst, err := embedded.Start(context.Background(), embedded.Options{StateDir: state, Slots: slots, Host: "testhost", Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inst.Stop)
	return inst, state
}

func client(eng *engine.Engine, dir, state string, progress *testkit.SyncBuffer) *campaign.Client {
	return &campaign.Client{Eng: eng, Opt: campaign.Options{Dir: dir, Results: "results", StateDir: state, Host: "testhost",
		Local: true, Progress: progress, Quiet: true, Stdout: progress}}
}

func runWithin(t *testing.T, d time.Duration, c *campaign.Client) (*campaign.Summary, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.Run(ctx)
}

// TestRunThenNothingToDo: a campaign runs every run once and lays its
// results out; the same campaign again executes nothing.
func TestRunThenNothingToDo(t *testing.T) {
	inst, state := startEmbedded(t, 2)
	dir, log := project(t, 6, 0)
	var out testkit.SyncBuffer
	sum, err := runWithin(t, time.Minute, client(inst.Eng, dir, state, &out))
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if sum.Runs != 6 || sum.Succeeded != 6 || sum.Executed != 6 || sum.Cached != 0 || sum.Failed != 0 {
		t.Fatalf("summary %+v", sum)
	}
	for n := range 6 {
		b, err := os.ReadFile(filepath.Join(dir, "results", fmt.Sprintf("Exp-#%d.sca", n)))
		if err != nil || strings.TrimSpace(string(b)) != fmt.Sprintf("r%d", n) {
			t.Errorf("result of run %d: %q %v", n, b, err)
		}
	}
	if s, d := executions(t, log); s != 6 || d != 6 {
		t.Fatalf("executions: %d started, %d done; want 6 and 6", s, d)
	}
	sum, err = runWithin(t, time.Minute, client(inst.Eng, dir, state, &out))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Succeeded != 6 || sum.Executed != 0 || sum.Cached != 6 {
		t.Fatalf("second run's summary %+v; want 6 already done", sum)
	}
	if s, _ := executions(t, log); s != 6 {
		t.Fatalf("the second run executed runs again: %d starts", s)
	}
	if c, ok, _ := inst.Eng.Campaign(context.Background(), sum.Campaign); !ok || c.State != simswarm.CampaignDone {
		t.Errorf("campaign record %+v", c)
	}
}

// TestCancelElsewhereWhileFollowing: a cancel from another connection (the
// dashboard's) while the client follows stops the campaign: the running
// run is killed, the waiting ones never start, the client ends with them
// counted cancelled, submits nothing again, and the cancel stays the
// campaign's state.
func TestCancelElsewhereWhileFollowing(t *testing.T) {
	inst, state := startEmbedded(t, 1)
	dir, log := project(t, 4, 3)
	var out testkit.SyncBuffer
	type result struct {
		sum *campaign.Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := runWithin(t, 2*time.Minute, client(inst.Eng, dir, state, &out))
		done <- result{s, err}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if s, _ := executions(t, log); s > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no run started within 30 s\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	camps, err := inst.Eng.Campaigns(context.Background())
	if err != nil || len(camps) != 1 {
		t.Fatalf("campaigns %v %v", camps, err)
	}
	id := camps[0].ID
	if err := inst.Eng.CancelCampaign(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(40 * time.Second):
		t.Fatalf("the client did not end after the cancel\n%s", out.String())
	}
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	if r.sum.Cancelled != 4 || r.sum.Succeeded != 0 || r.sum.Executed != 0 {
		t.Errorf("summary %+v; want 4 cancelled", r.sum)
	}
	if !strings.Contains(out.String(), "was cancelled") {
		t.Errorf("the client did not say the campaign was cancelled:\n%s", out.String())
	}
	time.Sleep(3 * time.Second) // nothing may start after the client ended
	if s, d := executions(t, log); s != 1 || d != 0 {
		t.Errorf("executions after cancel: %d started, %d done; want only the one that was running, killed", s, d)
	}
	if c, _, _ := inst.Eng.Campaign(context.Background(), id); c.State != simswarm.CampaignCancelled {
		t.Errorf("campaign state %q after the client ended; want cancelled", c.State)
	}
	if q, _ := inst.Eng.Queued(context.Background(), id); len(q) != 0 {
		t.Errorf("jobs left in the queue: %v", q)
	}
}

// TestSaysWhatIsMissing: a client whose engine has no builder says so,
// naming the command, and keeps waiting; then the same for the runner; it
// finishes once both are there.
func TestSaysWhatIsMissing(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 20 s for the notices")
	}
	e := enginetest.Start(t)
	eng := e.Engine
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, log := project(t, 2, 0)
	var out testkit.SyncBuffer
	c := client(eng, dir, t.TempDir(), &out)
	c.Opt.Local = false
	c.Opt.Server, c.Opt.Creds = "nats://manager:4222", "client.creds"
	done := make(chan error, 1)
	go func() { _, err := c.Run(ctx); done <- err }()
	wait := func(what string) {
		t.Helper()
		deadline := time.Now().Add(25 * time.Second)
		for !strings.Contains(out.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q within 25 s; output:\n%s", what, out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	wait("no builder has sent a heartbeat for 10s; start one with: simswarm builder --server nats://manager:4222 --creds client.creds (still waiting; Ctrl-C cancels)")
	worker := func(name string) *engine.Engine { return e.Open(t, name) }
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		b := &build.Builder{Eng: worker("builder"), Dir: t.TempDir(), Host: "b", Log: quietLog()}
		_ = b.Serve(wctx)
	}()
	wait("no runner has sent a heartbeat for 10s; start one with: simswarm runner --server nats://manager:4222")
	if strings.Count(out.String(), "no builder") != 1 {
		t.Errorf("the builder notice came more than once:\n%s", out.String())
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := &runner.Runner{Eng: worker("runner"), Dir: t.TempDir(), Slots: 1, Host: "r", Log: quietLog()}
		_ = r.Serve(wctx)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
	case <-ctx.Done():
		t.Fatal("campaign did not finish once the workers were there")
	}
	if s, d := executions(t, log); s != 2 || d != 2 {
		t.Errorf("executions: %d/%d", s, d)
	}
}
