package fingerprint

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/campaign"
)

// Campaign runs a suite's tests as one campaign of many on a simswarm
// engine (embedded or a cluster): one snapshot and build per project, every
// test a list item with its own results directory.
type Campaign struct {
	Client *campaign.Client
	Root   string // the directory the tests' working directories are relative to
	// Results holds one directory per test, named by a hash of the test,
	// so that an unchanged test on an unchanged build finds its earlier
	// run's results and is not run again.
	Results string
}

// RunItems runs the items and reads what each run left.
func (c *Campaign) RunItems(ctx context.Context, items []Item) ([]Observed, error) {
	outs, err := c.Client.RunItems(ctx, c.ListItems(items))
	if err != nil {
		return nil, err
	}
	obs := make([]Observed, len(items))
	for i, o := range outs {
		obs[i] = Observe(o)
	}
	return obs, nil
}

// ListItems are the tests as items of a campaign of many, each in its
// working directory under Root with its own results directory: a bisect
// runs the suites of several commits in one such campaign.
func (c *Campaign) ListItems(items []Item) []campaign.Item {
	list := make([]campaign.Item, len(items))
	dirs := c.ResultDirs(items)
	for i, it := range items {
		list[i] = campaign.Item{
			Dir:     filepath.Join(c.Root, filepath.FromSlash(it.Workdir)),
			Argv:    it.Argv,
			Results: dirs[i],
			Label:   it.Test.Where(),
		}
	}
	return list
}

// ResultDirs are the items' results directories: one per test, named by
// its working directory and whole command line (two tests may differ in
// their time limit alone).
func (c *Campaign) ResultDirs(items []Item) []string {
	dirs := make([]string, len(items))
	for i, it := range items {
		sum := sha256.Sum256([]byte(it.Workdir + "\x00" + strings.Join(it.Argv, "\x00")))
		dirs[i] = filepath.Join(c.Results, hex.EncodeToString(sum[:6]))
	}
	return dirs
}

// Observe is what a test's item left: the record of its (first) run.
func Observe(o campaign.ItemOutcome) Observed {
	if o.Err != nil {
		return Observed{Missing: true, Reason: o.Err.Error()}
	}
	if len(o.Records) == 0 {
		return Observed{Missing: true}
	}
	r := o.Records[0]
	ob := Observed{Reason: r.Reason, Exit: r.Exit, Signal: r.Signal, TimedOut: r.TimedOut, Errors: r.Errors,
		Fingerprint: r.Fingerprint, Calculated: r.FingerprintCalculated, Limit: r.Limit, SimTime: r.SimTime,
		Wall: r.Wall, Executed: o.Summary != nil && o.Summary.Executed > 0}
	if r.State == simswarm.RunCancelled {
		ob.Missing, ob.Reason = true, "cancelled"
	}
	if r.State == simswarm.RunFailed && r.Exit == 0 && r.Signal == "" && !r.TimedOut && len(r.Errors) == 0 {
		// Failed before or around the process (results refused, a runner
		// fault after retries): no verdict of the simulation's own.
		ob.Missing = true
		if ob.Reason == "" {
			ob.Reason = "failed"
		}
	}
	return ob
}
