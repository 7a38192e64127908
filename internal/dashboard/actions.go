package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
)

// ActionResult is what an action endpoint answers.
type ActionResult struct {
	OK      bool   `json:"ok"`
	Message string `json:"message"`
	Runs    int    `json:"runs,omitempty"` // runs re-enqueued by retry
}

// done answers an action: JSON for scripts and API clients, a redirect back
// to the page for a plain form post.
func (s *Server) done(w http.ResponseWriter, r *http.Request, res ActionResult, back string) {
	s.log.Info("dashboard action", "path", r.URL.Path, "result", res.Message)
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, res)
		return
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func (s *Server) campaignRecord(ctx context.Context, id string) (*simswarm.Campaign, error) {
	var c simswarm.Campaign
	ok, err := engine.GetJSON(ctx, s.eng.Campaigns, id, &c)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotFound
	}
	return &c, nil
}

// actCancel does what Ctrl-C in `simswarm run` does: purge the campaign's
// waiting jobs, tell runners to kill its running ones, mark it cancelled.
func (s *Server) actCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	c, err := s.campaignRecord(ctx, id)
	if errors.Is(err, errNotFound) {
		s.notFound(w, r, "There is no campaign "+strconv.Quote(id)+" in this engine.")
		return
	}
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	if err := s.eng.Jobs.Purge(ctx, jetstream.WithPurgeSubject(engine.CampaignSubjects(id))); err != nil {
		s.fail(w, r, http.StatusBadGateway, fmt.Errorf("purge the queue of campaign %s: %w", id, err))
		return
	}
	if err := s.eng.NC.Publish(engine.SubjectCancel+"."+id, []byte(id)); err != nil {
		s.fail(w, r, http.StatusBadGateway, fmt.Errorf("tell runners to stop campaign %s: %w", id, err))
		return
	}
	_ = s.eng.NC.FlushTimeout(5 * time.Second)
	c.State = "cancelled"
	if err := engine.PutJSON(ctx, s.eng.Campaigns, id, c); err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	s.done(w, r, ActionResult{OK: true, Message: "campaign " + id + " cancelled"}, "/campaigns/"+url.PathEscape(id))
}

// actRetry enqueues the campaign's failed runs again, rebuilding each job
// from the campaign record. The campaign record does not keep the original
// --timeout, --batch or --retries; a timeout can be given as a form field.
func (s *Server) actRetry(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var timeout time.Duration
	if t := r.PostFormValue("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d < 0 {
			s.fail(w, r, http.StatusBadRequest, fmt.Errorf("invalid timeout %q: give a duration such as 90s or 10m", t))
			return
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	c, err := s.campaignRecord(ctx, id)
	if errors.Is(err, errNotFound) {
		s.notFound(w, r, "There is no campaign "+strconv.Quote(id)+" in this engine.")
		return
	}
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	var failed []int
	s.m.mu.RLock()
	if ci := s.m.campaigns[id]; ci != nil {
		for i := range ci.runs {
			if ci.runs[i].state == stFailed {
				failed = append(failed, ci.runs[i].run)
			}
		}
	}
	s.m.mu.RUnlock()
	if len(failed) == 0 {
		s.done(w, r, ActionResult{OK: true, Message: "campaign " + id + " has no failed runs"}, "/campaigns/"+url.PathEscape(id))
		return
	}
	if c.State != "active" {
		c.State = "active"
		if err := engine.PutJSON(ctx, s.eng.Campaigns, id, c); err != nil {
			s.fail(w, r, http.StatusBadGateway, err)
			return
		}
	}
	if err := s.enqueue(ctx, c, failed, timeout); err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	// Show them as queued until a runner reports on them.
	s.m.mu.Lock()
	if ci := s.m.campaigns[id]; ci != nil {
		for _, n := range failed {
			if i, ok := ci.pos[n]; ok && ci.runs[i].state == stFailed {
				e := &ci.runs[i]
				ci.counts[e.state]--
				ci.counts[stPending]++
				*e = runEntry{run: n, vars: e.vars, queued: true}
			}
		}
	}
	s.m.mu.Unlock()
	s.hub.mark("overview", "campaign:"+id)
	s.done(w, r, ActionResult{OK: true, Runs: len(failed), Message: fmt.Sprintf("%d failed runs of campaign %s enqueued again", len(failed), id)},
		"/campaigns/"+url.PathEscape(id))
}

// enqueue publishes run jobs a window at a time, as the client submits them.
func (s *Server) enqueue(ctx context.Context, c *simswarm.Campaign, runs []int, timeout time.Duration) error {
	return s.eng.PublishRuns(ctx, len(runs), func(i int) simswarm.RunJob {
		n := runs[i]
		return simswarm.RunJob{Version: simswarm.Version, Campaign: c.ID, Run: n,
			Key:      simswarm.RunKey(c.Artifact, c.Workdir, c.Command, n),
			Snapshot: c.Snapshot, Artifact: c.Artifact, Workdir: c.Workdir, Command: c.Command, Layout: c.Layout, Timeout: timeout}
	})
}

// actDrain tells a runner to finish its runs and take no more, or to take
// jobs again (/resume).
func (s *Server) actDrain(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	resume := strings.HasSuffix(r.URL.Path, "/resume")
	wk, ok := s.m.worker(id)
	if !ok {
		s.notFound(w, r, "There is no worker "+strconv.Quote(id)+" online.")
		return
	}
	if wk.Role != "runner" {
		s.fail(w, r, http.StatusConflict, fmt.Errorf("worker %s is a %s: only runners can be drained", wk.ID, wk.Role))
		return
	}
	msg, verb := "drain", "draining: it finishes its runs and takes no new ones"
	if resume {
		msg, verb = "resume", "takes jobs again"
	}
	if err := s.eng.NC.Publish(engine.DrainSubject(wk.ID), []byte(msg)); err != nil {
		s.fail(w, r, http.StatusBadGateway, fmt.Errorf("tell worker %s: %w", wk.ID, err))
		return
	}
	_ = s.eng.NC.FlushTimeout(5 * time.Second)
	s.done(w, r, ActionResult{OK: true, Message: "worker " + wk.ID + " " + verb}, "/workers")
}
