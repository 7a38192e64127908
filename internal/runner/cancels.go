package runner

import (
	"context"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
)

// recheckCancels: a cancel reaches runners as a core message, lost on a
// runner whose connection was down when it was sent, while the campaign's
// record keeps it. After a reconnection the campaigns of the jobs this
// runner holds are read again and the cancelled ones dropped, as if the
// message had come: no run starts after a cancel the user was told
// succeeded.
func (r *Runner) recheckCancels(ctx context.Context) {
	upTo := map[string]uint64{}
	note := func(j *job) {
		if j.lease.Seq > upTo[j.Campaign] {
			upTo[j.Campaign] = j.lease.Seq
		}
	}
	r.pool.mu.Lock()
	for _, j := range r.pool.ready {
		note(j)
	}
	r.pool.mu.Unlock()
	r.mu.Lock()
	for rc := range r.active {
		for _, j := range rc.jobs {
			note(j)
		}
	}
	r.mu.Unlock()
	for id, seq := range upTo {
		rctx, done := context.WithTimeout(ctx, 30*time.Second)
		c, found, err := r.Eng.Campaign(rctx, id)
		done()
		if err != nil {
			r.Log.Warn("runner: read campaign after reconnection", "campaign", id, "err", err)
			continue
		}
		if found && c.State == simswarm.CampaignCancelled {
			r.Log.Info("runner: campaign cancelled while the engine was out of reach", "campaign", id)
			r.cancelCampaign(ctx, engine.Cancel{Campaign: id, UpTo: seq})
		}
	}
}
