package runner

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/omnetpp"
	"github.com/simswarm/simswarm/internal/proc"
)

func omnetJob(campaign string, run, batch int) *simswarm.RunJob {
	return &simswarm.RunJob{Campaign: campaign, Run: run, Artifact: "a", Workdir: "w",
		Command: simswarm.Command{Kind: simswarm.KindOmnetpp, Argv: []string{"./sim"}}, JobSettings: simswarm.JobSettings{Batch: batch}}
}

func templateJob(campaign string, run int) *simswarm.RunJob {
	return &simswarm.RunJob{Campaign: campaign, Run: run, Artifact: "a", Workdir: "w",
		Command: simswarm.Command{Kind: simswarm.KindTemplate, Template: "echo {run}"}}
}

// slowStart: start-up 1 s, runs of 0.1 s: batching pays (k = 90, bounded).
var slowStart = Timing{Startup: time.Second, PerRun: 100 * time.Millisecond, Known: true}

func fixed(t Timing) func(string) Timing { return func(string) Timing { return t } }

func groupOf(ready []*simswarm.RunJob, idx []int) (campaigns []string, runs []int) {
	for _, i := range idx {
		campaigns = append(campaigns, ready[i].Campaign)
		runs = append(runs, ready[i].Run)
	}
	return
}

func TestPickKeepsBatchesToOneCampaign(t *testing.T) {
	ready := []*simswarm.RunJob{omnetJob("A", 0, 0), omnetJob("B", 0, 0), omnetJob("A", 1, 0), templateJob("C", 0), omnetJob("A", 2, 0), omnetJob("B", 1, 0)}
	camps, runs := groupOf(ready, pick(ready, 1, fixed(slowStart), 8))
	for _, c := range camps {
		if c != "A" {
			t.Fatalf("batch of campaign A holds a job of %s: %v", c, camps)
		}
	}
	if len(runs) != 3 || runs[0] != 0 || runs[1] != 1 || runs[2] != 2 {
		t.Fatalf("batch = runs %v of A; want 0 1 2 (all of A on hand, oldest first)", runs)
	}
}

func TestPickTemplateCampaignsRunAlone(t *testing.T) {
	ready := []*simswarm.RunJob{templateJob("C", 0), templateJob("C", 1), omnetJob("A", 0, 0)}
	if got := pick(ready, 1, fixed(slowStart), 8); len(got) != 1 || got[0] != 0 {
		t.Fatalf("pick = %v; want [0]: template commands run one run per process", got)
	}
}

func TestPickHonoursTheCampaignsOwnBatch(t *testing.T) {
	// -b 1 is never batched, however slow start-up is.
	ready := []*simswarm.RunJob{omnetJob("A", 0, 1), omnetJob("A", 1, 1), omnetJob("A", 2, 1)}
	if got := pick(ready, 1, fixed(slowStart), 8); len(got) != 1 {
		t.Fatalf("pick of -b 1 jobs = %v; want one", got)
	}
	// -b 2 takes two even before anything was measured, and even with
	// other slots free.
	ready = []*simswarm.RunJob{omnetJob("A", 0, 2), omnetJob("B", 0, 0), omnetJob("A", 1, 2), omnetJob("A", 2, 2)}
	if _, runs := groupOf(ready, pick(ready, 4, fixed(Timing{}), 8)); len(runs) != 2 || runs[0] != 0 || runs[1] != 1 {
		t.Fatalf("pick of -b 2 jobs = runs %v; want 0 1", runs)
	}
	// The first job's campaign decides: B's adaptive batch is not A's -b.
	ready = []*simswarm.RunJob{omnetJob("B", 0, 0), omnetJob("A", 0, 2), omnetJob("B", 1, 0)}
	if _, runs := groupOf(ready, pick(ready, 1, fixed(Timing{}), 8)); len(runs) != 1 {
		t.Fatalf("unmeasured adaptive campaign batched: runs %v", runs)
	}
}

func TestPickAdaptiveSize(t *testing.T) {
	many := make([]*simswarm.RunJob, 20)
	for i := range many {
		many[i] = omnetJob("A", i, 0)
	}
	cases := []struct {
		name  string
		t     Timing
		free  int
		limit int
		want  int
	}{
		{"unmeasured runs alone", Timing{}, 1, 8, 1},
		{"after a failed batch, alone", Timing{Startup: time.Second, PerRun: time.Millisecond, Known: true, Off: true}, 1, 8, 1},
		{"fast start-up needs no batch", Timing{Startup: 5 * time.Millisecond, PerRun: time.Second, Known: true}, 1, 8, 1},
		{"start-up 1s, runs 0.5s: ceil(0.99*1/(0.01*0.5)) = 198, limit 8", Timing{Startup: time.Second, PerRun: 500 * time.Millisecond, Known: true}, 1, 8, 8},
		{"start-up 0.2s, runs 0.5s: ceil(39.6), limit 8", Timing{Startup: 200 * time.Millisecond, PerRun: 500 * time.Millisecond, Known: true}, 1, 8, 8},
		{"start-up 0.26s, runs 3s (INET): ceil(8.6), 20 s of work = 6", Timing{Startup: 260 * time.Millisecond, PerRun: 3 * time.Second, Known: true}, 1, 8, 6},
		{"start-up 0.1s, runs 3s: ceil(3.3) = 4", Timing{Startup: 100 * time.Millisecond, PerRun: 3 * time.Second, Known: true}, 1, 8, 4},
		{"runs of 5s: at most 20s of work = 4", Timing{Startup: 10 * time.Second, PerRun: 5 * time.Second, Known: true}, 1, 8, 4},
		{"20 jobs, 5 free slots: 4 each", slowStart, 5, 8, 4},
		{"20 jobs, 40 free slots: one each", slowStart, 40, 8, 1},
	}
	for _, c := range cases {
		if got := len(pick(many, c.free, fixed(c.t), c.limit)); got != c.want {
			t.Errorf("%s: batch of %d; want %d", c.name, got, c.want)
		}
	}
	if got := pick(nil, 1, fixed(slowStart), 8); got != nil {
		t.Errorf("pick of nothing = %v", got)
	}
}

func TestStatsMeasure(t *testing.T) {
	var b batchStats
	if b.timing("k").Known {
		t.Fatal("nothing measured yet, but known")
	}
	b.add("k", time.Second, 3*time.Second, 4) // per run (3-1)/4 = 0.5 s
	got := b.timing("k")
	if !got.Known || got.Startup != time.Second || got.PerRun != 500*time.Millisecond {
		t.Fatalf("timing = %+v", got)
	}
	b.noBatch("k")
	if !b.timing("k").Off {
		t.Fatal("noBatch did not stick")
	}
}

// TestBatchCPUAddsUp: the CPU of a batch's process, start-up included, is
// shared by its runs: what provenance says the runs used adds up to what
// the process used (bench/pairs.sh compares it with opp_runall's).
func TestBatchCPUAddsUp(t *testing.T) {
	console := filepath.Join(t.TempDir(), "console")
	if err := os.WriteFile(console, []byte("** Run #0\n** Run #1\n** Run #2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var jobs []*job
	for run := 0; run < 3; run++ {
		jobs = append(jobs, &job{RunJob: *omnetJob("c", run, 0)})
	}
	t0 := time.Now()
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	// 1 s of start-up, then runs of 1, 2 and 1 s; 4.5 s of CPU in all.
	seen := []omnetpp.BatchRun{{Run: 0, Start: 0, End: 10}, {Run: 1, Start: 10, End: 20}, {Run: 2, Start: 20, End: 30}}
	heads := []time.Time{sec(1), sec(2), sec(4)}
	res := &proc.Result{Wall: 5 * time.Second, CPU: 4500 * time.Millisecond}
	r := &Runner{Host: "h"}
	retry, done := r.settleBatch(jobs, res, seen, heads, console, t0)
	if len(retry) != 0 || len(done) != 3 {
		t.Fatalf("retry %d, done %d; want 0, 3", len(retry), len(done))
	}
	var sum time.Duration
	for _, d := range done {
		sum += d.rec.CPU
	}
	if diff := sum - res.CPU; diff < -time.Millisecond || diff > time.Millisecond {
		t.Errorf("runs' CPU adds up to %s; the process used %s", sum, res.CPU)
	}
	if got, want := done[1].rec.CPU, 2250*time.Millisecond; got < want-time.Millisecond || got > want+time.Millisecond {
		t.Errorf("run 1 (half the runs' time): CPU %s, want %s", got, want)
	}
}

// TestBatchShareNearTheEnd: an adaptive batch takes at most its share of
// the jobs left over all runners' slots. With 8 jobs held here, none
// waiting in the queue and 64 slots in the cluster, a free slot starts one
// run, not eight: eight 2-s runs in one process would run 14 s past the
// other slots' last runs. With the queue still full it batches as before.
func TestBatchShareNearTheEnd(t *testing.T) {
	for _, tc := range []struct {
		waiting uint64
		want    int
	}{{0, 1}, {1000, 8}} {
		r := &Runner{Slots: 8, MaxBatch: 8}
		p := newPool(r)
		p.slotsAll, p.waiting = 64, tc.waiting
		for run := 0; run < 8; run++ {
			p.ready = append(p.ready, &job{RunJob: *omnetJob("A", run, 0)})
		}
		key := p.ready[0].BatchKey()
		r.stats.add(key, slowStart.Startup, slowStart.Startup+slowStart.PerRun, 1)
		if got := len(p.take()); got != tc.want {
			t.Errorf("%d jobs waiting in the queue, 8 held, 64 slots: a batch of %d, want %d", tc.waiting, got, tc.want)
		}
	}
}
