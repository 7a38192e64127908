package campaign_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/embedded"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/testkit"
)

// TestRunJobsCarryExpect: the client gives each run job how long the run
// took in earlier campaigns (Expect, from its history), so that a Slurm
// pilot that has not timed the campaign itself yet takes no run that
// cannot finish before its job ends. A project never run has none.
func TestRunJobsCarryExpect(t *testing.T) {
	const runs, secs = 4, 1.0
	dir, _ := project(t, runs, secs)
	// Runs on an engine whose runner takes nothing, so that the test takes
	// the jobs as a pilot would; the client's state holds its history.
	queued := func(state string) []simswarm.RunJob {
		t.Helper()
		inst, err := embedded.Start(context.Background(), embedded.Options{StateDir: t.TempDir(), Slots: 1, Host: "testhost", Log: quietLog(), ListsOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer inst.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var out testkit.SyncBuffer
		done := make(chan struct{})
		go func() { defer close(done); _, _ = client(inst.Eng, dir, state, &out).Run(ctx) }()
		defer func() { cancel(); <-done }()
		var jobs []simswarm.RunJob
		for len(jobs) < runs {
			ls, err := inst.Eng.Take(ctx, engine.QueueRun, runs, 5*time.Second)
			if err != nil {
				t.Fatalf("take run jobs: %v (%d taken)\n%s", err, len(jobs), out.String())
			}
			for _, l := range ls {
				var j simswarm.RunJob
				if err := json.Unmarshal(l.Data(), &j); err != nil {
					t.Fatal(err)
				}
				jobs = append(jobs, j)
			}
		}
		return jobs
	}
	state := t.TempDir()
	for _, j := range queued(state) {
		if j.Expect != 0 {
			t.Errorf("run %d of a project never run expects %s; want none", j.Run, j.Expect)
		}
	}
	inst, _ := startEmbedded(t, runs)
	var out testkit.SyncBuffer
	if sum, err := runWithin(t, time.Minute, client(inst.Eng, dir, state, &out)); err != nil || sum.Succeeded != runs {
		t.Fatalf("campaign: %v %+v\n%s", err, sum, out.String())
	}
	for _, j := range queued(state) {
		if j.Expect < time.Duration(secs*0.9*float64(time.Second)) || j.Expect > 10*time.Second {
			t.Errorf("run %d expects %s; want about the %gs it took", j.Run, j.Expect, secs)
		}
	}
}
