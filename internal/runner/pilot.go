package runner

import (
	"context"
	"time"

	"github.com/simswarm/simswarm/internal/engine"
)

// watch ends Serve (through stop) when a pilot's reasons to live are gone:
// nothing to run for IdleExit, no engine for LostExit, or its end near and
// nothing left running.
func (r *Runner) watch(ctx context.Context, stop context.CancelFunc) {
	x := engine.Exits{Idle: r.IdleExit, Lost: r.LostExit, Work: "run"}
	if !r.End.IsZero() {
		x.Ending = r.ending.Load
	}
	r.Eng.WatchExits(ctx, x, r.idle, func(why string) {
		r.Log.Warn("runner: ending: "+why, "id", r.ID)
		stop()
	})
}

// idle says whether the runner holds no job and runs no process.
func (r *Runner) idle() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.busy == 0 && len(r.held) == 0
}

// tooLate says whether a group cannot finish before the host's end, by
// this runner's measured times of its campaign, else by the times the
// client's history gave its jobs; a run nothing is known of is tried.
func (r *Runner) tooLate(group []*job) bool {
	if r.End.IsZero() {
		return false
	}
	var need time.Duration
	if t := r.stats.timing(group[0].BatchKey()); t.Known {
		need = t.Startup + t.PerRun*time.Duration(len(group))
	} else {
		for _, j := range group {
			need += j.Expect
		}
	}
	return need > 0 && time.Now().Add(need).After(r.End.Add(-r.EndMargin))
}
