package runner

import (
	"context"
	"time"
)

// watch ends Serve (through stop) when a pilot's reasons to live are gone:
// nothing to run for IdleExit, no engine for LostExit, or its end near and
// nothing left running.
func (r *Runner) watch(ctx context.Context, stop context.CancelFunc) {
	if r.IdleExit <= 0 && r.LostExit <= 0 && r.End.IsZero() {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	idleSince, lostSince := time.Now(), time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			idle := r.idle()
			switch {
			case !idle:
				idleSince = time.Time{}
			case idleSince.IsZero():
				idleSince = now
			}
			switch {
			case r.Eng.Connected():
				lostSince = time.Time{}
			case lostSince.IsZero():
				lostSince = now
			}
			var why string
			switch {
			case r.IdleExit > 0 && !idleSince.IsZero() && now.Sub(idleSince) >= r.IdleExit:
				why = "nothing to run for " + r.IdleExit.String()
			case r.LostExit > 0 && !lostSince.IsZero() && now.Sub(lostSince) >= r.LostExit:
				why = "no engine for " + r.LostExit.String()
			case r.ending.Load() && idle:
				why = "its host's end is near"
			}
			if why != "" {
				r.Log.Warn("runner: ending: "+why, "id", r.ID)
				stop()
				return
			}
		}
	}
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
