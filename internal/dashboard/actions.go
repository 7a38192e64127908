package dashboard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/units"
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
	c, ok, err := s.eng.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotFound
	}
	return c, nil
}

// actCancel does what Ctrl-C in `simswarm run` does: purge the campaign's
// waiting jobs, tell runners to kill its running ones, mark it cancelled.
func (s *Server) actCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	if _, err := s.campaignRecord(ctx, id); errors.Is(err, errNotFound) {
		s.notFound(w, r, "There is no campaign "+strconv.Quote(id)+" in this engine.")
		return
	} else if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	if err := s.eng.CancelCampaign(ctx, id); err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	s.done(w, r, ActionResult{OK: true, Message: "campaign " + id + " cancelled"}, "/campaigns/"+url.PathEscape(id))
}

// actRetry enqueues the campaign's failed runs again, each job made from
// the campaign record with the settings of its last submit (--timeout,
// --batch, --retries, results written in place); a form field "timeout"
// replaces the timeout.
func (s *Server) actRetry(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	timeout := time.Duration(-1)
	if t := r.PostFormValue("timeout"); t != "" {
		d, err := units.ParseDuration(t)
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, fmt.Errorf("invalid timeout %q: give a duration up to %s such as 90s, 10m or 1d", t, units.Describe(units.MaxDuration)))
			return
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	if _, err := s.campaignRecord(ctx, id); errors.Is(err, errNotFound) {
		s.notFound(w, r, "There is no campaign "+strconv.Quote(id)+" in this engine.")
		return
	} else if err != nil {
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
	c, err := s.eng.UpdateCampaign(ctx, id, func(c *simswarm.Campaign) bool {
		changed := c.State != simswarm.CampaignActive || (timeout >= 0 && c.Settings.Timeout != timeout)
		c.State = simswarm.CampaignActive
		if timeout >= 0 {
			c.Settings.Timeout = timeout
		}
		return changed
	})
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	if err := s.enqueue(ctx, c, failed); err != nil {
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

// enqueue submits run jobs of the campaign, as the client submits them, in
// a submission of their own.
func (s *Server) enqueue(ctx context.Context, c *simswarm.Campaign, runs []int) error {
	sub := newSubmission()
	var list *simswarm.RunList
	if c.Command.Kind != simswarm.KindTemplate {
		// Runs known by what they compute need their idents for their keys.
		l, ok, err := s.eng.RunList(ctx, simswarm.ListKey(c.Artifact, c.Workdir, c.Command))
		if err != nil {
			return err
		}
		if ok {
			list = l
		}
	}
	return s.eng.SubmitRuns(ctx, len(runs), func(i int) simswarm.RunJob { return c.RunJob(runs[i], list.Ident(runs[i]), sub) })
}

func newSubmission() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
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
	if wk.Role != simswarm.RoleRunner {
		s.fail(w, r, http.StatusConflict, fmt.Errorf("worker %s is a %s: only runners can be drained", wk.ID, wk.Role))
		return
	}
	verb := "draining: it finishes its runs and takes no new ones"
	if resume {
		verb = "takes jobs again"
	}
	if err := s.eng.Drain(wk.ID, !resume); err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	s.done(w, r, ActionResult{OK: true, Message: "worker " + wk.ID + " " + verb}, "/workers")
}
