package runner

import (
	"math"
	"time"

	"github.com/simswarm/simswarm"
)

// Scheduling: which of the jobs a runner holds one slot starts next, and
// how many of them one process runs. It is a pure function of what the
// runner holds, how many slots are free, and what the runner measured of
// each campaign, so that it can be tested on its own.

// Timing is what a runner measured of a campaign's processes.
type Timing struct {
	Startup, PerRun time.Duration // moving averages
	Known           bool          // at least one clean process measured
	Off             bool          // a batch went wrong: run alone from now on
}

// Batching targets: start-up at most 1 % of a process's time, and a
// process at most maxBatchTime long so that the tail of a campaign stays
// short (pool.share spreads the last jobs over every slot). At a tenth,
// INET's 3-s runs with 0.26 s of start-up ran one per process: 66
// processes where opp_runall's batches of 5 start 14, and 4 % more CPU and
// wall. At 3 %, OMNeT++'s aloha (0.06-s runs, 0.01 s of start-up) ran 42
// runs in 12 processes against opp_runall's 9 and its simulations used 5 %
// more CPU than at 1 % (bench/pairs.sh, 8 alternating pairs each); INET's
// ber runs 6 a process (20-s cap).
const (
	startupShare = 0.01
	maxBatchTime = 20 * time.Second
)

// batchSize is how many runs of a campaign one process should execute: the
// campaign's -b when it gave one, one for template commands (one run per
// process), else enough runs that start-up is at most startupShare of the
// process, within maxBatchTime and limit.
func batchSize(j *simswarm.RunJob, t Timing, limit int) int {
	switch {
	case j.Command.Kind != simswarm.KindOmnetpp:
		return 1
	case j.Batch > 0:
		return j.Batch
	case !t.Known || t.Off:
		return 1
	}
	k := limit
	if t.PerRun > 0 {
		per := t.PerRun.Seconds()
		k = int(math.Ceil(t.Startup.Seconds() * (1 - startupShare) / startupShare / per))
		k = min(k, int(maxBatchTime.Seconds()/per))
	}
	return min(max(k, 1), limit)
}

// pick chooses the group a free slot starts: the job that has waited
// longest, with more jobs of the same campaign (same batch key) up to the
// campaign's batch size. Jobs of other campaigns never join it: a batch
// runs as one campaign's command. An adaptive batch also leaves work for
// the other free slots: it takes at most its share of the campaign's jobs
// on hand. It returns indices into ready, oldest first.
func pick(ready []*simswarm.RunJob, free int, timing func(batchKey string) Timing, limit int) []int {
	if len(ready) == 0 {
		return nil
	}
	first := ready[0]
	key := first.BatchKey()
	n := batchSize(first, timing(key), limit)
	if n > 1 && first.Batch == 0 {
		same := 0
		for _, j := range ready {
			if j.BatchKey() == key {
				same++
			}
		}
		n = min(n, max(1, (same+max(free, 1)-1)/max(free, 1)))
	}
	out := []int{0}
	for i := 1; i < len(ready) && len(out) < n; i++ {
		if ready[i].BatchKey() == key {
			out = append(out, i)
		}
	}
	return out
}
