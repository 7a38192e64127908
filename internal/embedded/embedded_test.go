package embedded

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/engine/enginetest"
)

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// TestStartAnnouncesWorkersAndLocksState: an embedded simswarm has a
// builder and a runner with the slots asked for; a second process on the
// same state directory is refused; after Stop the state opens again, with
// the workers gone and what was stored kept.
func TestStartAnnouncesWorkersAndLocksState(t *testing.T) {
	state := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in, err := Start(ctx, Options{StateDir: state, Slots: 3, Host: "h1", Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	roles := map[simswarm.Role]simswarm.Worker{}
	deadline := time.Now().Add(20 * time.Second)
	for len(roles) < 2 {
		if time.Now().After(deadline) {
			in.Stop()
			t.Fatalf("heartbeats seen: %v", roles)
		}
		heard, err := in.Eng.Workers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range heard {
			roles[w.Role] = w.Worker
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := roles[simswarm.RoleRunner]; r.Slots != 3 || r.Host != "h1" || r.Version != simswarm.Version {
		t.Errorf("runner heartbeat %+v", r)
	}
	if _, err := Open(ctx, state); !errors.Is(err, engine.ErrStateBusy) {
		t.Errorf("second open of a busy state dir: %v; want %v", err, engine.ErrStateBusy)
	}
	c := simswarm.Campaign{ID: "0123456789abcdef", Runs: 1, State: simswarm.CampaignDone}
	enginetest.PutCampaign(t, in.Eng, c)
	in.Stop()

	again, err := Open(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Stop()
	if heard, _ := again.Eng.Workers(ctx); len(heard) != 0 {
		t.Errorf("workers still announced after Stop: %+v", heard)
	}
	if got, ok, err := again.Eng.Campaign(ctx, c.ID); err != nil || !ok || got.State != simswarm.CampaignDone {
		t.Errorf("campaign after restart: %+v %v %v", got, ok, err)
	}
}

// TestJobsOfAKilledProcessComeBackAtOnce: jobs a dead process had taken
// (its lease not yet run out) are handed out again as soon as the next
// process starts on the state directory, not a lease later.
func TestJobsOfAKilledProcessComeBackAtOnce(t *testing.T) {
	state := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first, err := Open(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	c := simswarm.Campaign{ID: "fedcba9876543210", Workdir: ".", Command: simswarm.Command{Kind: simswarm.KindTemplate, Template: "true {resultdir}"}}
	if err := first.Eng.SubmitRuns(ctx, 1, func(int) simswarm.RunJob { return c.RunJob(0, "", "s") }); err != nil {
		t.Fatal(err)
	}
	held, err := first.Eng.Take(ctx, engine.QueueRun, 1, 5*time.Second)
	if err != nil || len(held) != 1 {
		t.Fatal(held, err)
	}
	first.Stop() // never acked: as if the process was killed
	second, err := Open(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Stop()
	if err := second.Eng.ResetConsumers(ctx); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	got, err := second.Eng.Take(ctx, engine.QueueRun, 1, 5*time.Second)
	if err != nil || len(got) != 1 {
		t.Fatalf("the dead process's job: %v %v", got, err)
	}
	if el := time.Since(t0); el > 2*time.Second {
		t.Errorf("job came back after %s; want at once", el)
	}
}
