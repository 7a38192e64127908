package campaign

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/units"
)

// cancelWithin bounds how long an interrupted client tries to reach the
// engine with its cancel before it says the campaign is still queued.
const cancelWithin = 15 * time.Second

// NotCancelledError is an interrupt whose cancel did not reach the engine
// (the server is down or out of reach): the campaign is still queued and
// its runs will execute when the engine is back. It is never reported as
// a cancel; the user is told to cancel it (simswarm cancel) instead.
type NotCancelledError struct {
	Campaign string // the campaign's id; ids separated by spaces for a list
	Err      error
}

func (e *NotCancelledError) Error() string {
	what := "campaign " + e.Campaign + " is still queued and its"
	if strings.Contains(e.Campaign, " ") {
		what = "campaigns " + e.Campaign + " are still queued and their"
	}
	return fmt.Sprintf("interrupted, but the cancel did not reach the engine (%v): %s runs will execute when the engine is back", e.Err, what)
}

// Unwrap makes it an ErrInterrupted for whoever only asks that.
func (e *NotCancelledError) Unwrap() []error { return []error{ErrInterrupted, e.Err} }

// cancelOnInterrupt cancels campaign id after a Ctrl-C: ErrInterrupted
// when the engine has the cancel, a *NotCancelledError when it does not.
func (c *Client) cancelOnInterrupt(id string) error {
	ctx, done := context.WithTimeout(context.Background(), cancelWithin)
	defer done()
	if !c.Eng.Responds(time.Second) {
		c.warnf("interrupted: the engine is out of reach; trying for %s to cancel campaign %s (Ctrl-C again to stop waiting)", cancelWithin, id)
	}
	if err := c.Eng.CancelCampaign(ctx, id); err != nil {
		return &NotCancelledError{Campaign: id, Err: err}
	}
	return ErrInterrupted
}

// CancelReport is what simswarm cancel did.
type CancelReport struct {
	Campaign string `json:"campaign"`
	// Was is the campaign's state before: active, cancelled (a cancel
	// done again completes one that was cut short), done, or "" when
	// only queued jobs were found.
	Was simswarm.CampaignState `json:"was"`
	// Queued is how many of its runs were waiting in the queue.
	Queued int `json:"queued"`
}

// ErrUnknownCampaign: the engine has neither a record nor a queued job of
// the campaign.
var ErrUnknownCampaign = errors.New("no such campaign on this engine")

// Cancel cancels a submitted campaign on the user's word: its waiting runs
// leave the queue and runners stop its running ones. It returns only once
// the engine has the cancel, so no run of the campaign starts afterwards.
func Cancel(ctx context.Context, eng *engine.Engine, id string) (*CancelReport, error) {
	rec, found, err := eng.Campaign(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read campaign %s: %w", id, err)
	}
	queued, err := eng.Queued(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("campaign %s: %w", id, err)
	}
	if !found && len(queued) == 0 {
		return nil, fmt.Errorf("campaign %s: %w (simswarm status lists the recent ones)", id, ErrUnknownCampaign)
	}
	rep := &CancelReport{Campaign: id, Queued: len(queued)}
	if found {
		rep.Was = rec.State
	}
	if rep.Was == simswarm.CampaignDone && len(queued) == 0 {
		return rep, nil
	}
	if err := eng.CancelCampaign(ctx, id); err != nil {
		return nil, err
	}
	return rep, nil
}

// Print writes the report as one line.
func (r *CancelReport) Print(w io.Writer) {
	switch {
	case r.Was == simswarm.CampaignDone && r.Queued == 0:
		fmt.Fprintf(w, "campaign %s is done: nothing to cancel\n", r.Campaign)
	case r.Was == simswarm.CampaignCancelled:
		fmt.Fprintf(w, "campaign %s was already cancelled: %s removed from the queue now\n", r.Campaign, units.Count(r.Queued, "waiting run"))
	default:
		fmt.Fprintf(w, "campaign %s cancelled: %s removed from the queue; runs in progress are stopped\n", r.Campaign, units.Count(r.Queued, "waiting run"))
	}
}
