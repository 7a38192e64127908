package campaign

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/fserr"
	"github.com/simswarm/simswarm/internal/omnetpp"
	"github.com/simswarm/simswarm/internal/project"
	"golang.org/x/sync/errgroup"
)

// Item is one command of a campaign of many (simswarm run --list, a
// fingerprint suite): its own working directory, command line and results
// directory.
type Item struct {
	Dir     string   // working directory; relative to Options.Dir when not absolute
	Argv    []string // the simulation command, its run selection included
	Results string   // results directory; relative to Dir when not absolute
	Label   string   // how progress names it ("list.txt:3")
}

// ItemOutcome is what one item came to.
type ItemOutcome struct {
	Summary *Summary
	// Records are the final records of the item's runs, in run order
	// (those that reached one).
	Records []*simswarm.RunRecord
	// Err is set when the item could not run at all (its run list
	// failed, say); the other items ran.
	Err error
}

// followers bounds the items followed at once: each holds a watch on the
// engine. Items beyond it wait for one to end, so a cluster with more slots
// than this runs single-run items this many at a time.
const followers = 256

// RunItems runs items as one campaign of many: each project the items use
// is snapshotted and built once, then every item's runs are submitted and
// followed at once, each as a campaign of its own (its identity, caching,
// batching, retries, cancel and dashboard page as for simswarm run). A
// problem with an item's directory or command stops everything before
// anything runs (a SetupError naming the item); a run list that fails is
// that item's outcome.
func (c *Client) RunItems(ctx context.Context, items []Item) ([]ItemOutcome, error) {
	defer c.stages.Drain()
	if len(items) == 0 {
		return nil, setupErr("the list holds no command")
	}
	if err := c.checkWorkers(ctx); err != nil {
		return nil, err
	}
	base := c.Opt.Dir
	if base == "" {
		base = "."
	}
	type group struct {
		graph     *project.Graph
		snap, art string
		layout    *simswarm.Layout
		failed    error // the build failed (Opt.ItemBuildFailures)
	}
	groups := map[string]*group{}
	ps := make([]*prepared, len(items))
	failed := map[int]error{}
	for i, it := range items {
		dir := it.Dir
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(base, dir)
		}
		fi, err := os.Stat(dir)
		if err != nil {
			return nil, setupErr("%s: working directory %s: %v", it.Label, dir, fserr.WithoutPath(err))
		}
		if !fi.IsDir() {
			return nil, setupErr("%s: working directory %s is not a directory", it.Label, dir)
		}
		proj, err := project.Find(dir)
		if err != nil {
			return nil, setupErr("%s: %v", it.Label, err)
		}
		p := &prepared{proj: proj, settings: simswarm.JobSettings{Timeout: c.Opt.Timeout, Batch: c.Opt.Batch, Retries: c.Opt.Retries}}
		if p.cmd, err = command(proj, it.Argv); err != nil {
			return nil, setupErr("%s: %v", it.Label, err)
		}
		if p.cmd.Kind == simswarm.KindTemplate {
			return nil, setupErr("%s: %s has a run template; a list names commands, so run it with simswarm run", it.Label, filepath.Join(proj.Root, project.ConfigFile))
		}
		if p.results, err = resultsDir(dir, it.Results); err != nil {
			return nil, setupErr("%s: %v", it.Label, err)
		}
		graph, err := project.Resolve(proj, p.cmd.Argv)
		if err != nil {
			return nil, setupErr("%s: %v", it.Label, err)
		}
		// Items of one project that use the same projects share one
		// snapshot and build.
		var roots []string
		for _, n := range graph.Nodes {
			roots = append(roots, n.Root)
		}
		key := strings.Join(roots, "\x00")
		g := groups[key]
		if g == nil {
			g = &group{graph: graph}
			groups[key] = g
			// Every item's results directory stays out of the snapshot:
			// the first item's is excluded here, the others are remembered
			// by the hash cache once used.
			if g.snap, g.art, g.layout, _, err = c.prepareProjects(ctx, graph, p.results); err != nil {
				var be *BuildError
				if !c.Opt.ItemBuildFailures || !errors.As(err, &be) {
					return nil, err
				}
				g.failed = err
			}
		}
		if g.failed != nil {
			failed[i] = g.failed
			continue
		}
		p.snapshot, p.artifact, p.layout = g.snap, g.art, g.layout
		p.workdir = treeWorkdir(p.layout, proj.Workdir)
		p.cmd.Env = projectEnv(graph, graph.Main())
		p.id = simswarm.CampaignID(p.artifact, p.workdir, p.cmd)
		ps[i] = p
	}
	out := make([]ItemOutcome, len(items))
	for i, err := range failed {
		out[i].Err = err
	}
	// Run lists come from runners, one job each: asked for all at once.
	lists, lctx := errgroup.WithContext(ctx)
	lists.SetLimit(followers)
	for i, p := range ps {
		if p == nil {
			continue // its build failed
		}
		lists.Go(func() error {
			if runs, ok := plainRuns(p.cmd); ok {
				// -r 3 (a fingerprint test's selection): no run list job,
				// one process start less per item. A config or run number
				// that does not exist fails the run itself, with OMNeT++'s
				// own error.
				p.runs = runs
				return nil
			}
			runs, err := c.runList(lctx, p)
			if err == nil && runs.Len() == 0 {
				err = fmt.Errorf("the run list is empty: %s selects no runs", describe(p.cmd))
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				out[i].Err = err
				ps[i] = nil
				return nil
			}
			p.runs = runs
			return nil
		})
	}
	if err := lists.Wait(); err != nil {
		return nil, err
	}
	total := 0
	for _, p := range ps {
		if p != nil {
			total += p.runs.Len()
		}
	}
	if err := c.Opt.tooMany(bigOf(fmt.Sprint(total)), "this list"); err != nil {
		return nil, err
	}
	if c.Opt.DryRun {
		for i, p := range ps {
			if p == nil {
				continue
			}
			fmt.Fprintf(c.Opt.Stdout, "item %s (results in %s)\n", items[i].Label, p.results)
			s, err := c.dryRun(ctx, p)
			if err != nil {
				return out, err
			}
			out[i].Summary = s
		}
		return out, nil
	}
	var mu sync.Mutex
	finished := 0
	var interrupted error
	var stillQueued []string
	// Not errgroup.WithContext: a Ctrl-C makes every follower cancel its
	// own campaign, and a context ended by the first of them would let the
	// others return before they tried.
	var g errgroup.Group
	g.SetLimit(followers)
	gctx := ctx
	for i, p := range ps {
		if p == nil {
			continue
		}
		g.Go(func() error {
			one := &Client{Eng: c.Eng, Opt: c.Opt, built: c.built}
			one.Opt.Quiet, one.Opt.Progress, one.Opt.Stdout = true, io.Discard, io.Discard
			start := time.Now()
			s, err := one.follow(gctx, p)
			if err != nil {
				if errors.Is(err, ErrInterrupted) {
					var nc *NotCancelledError
					mu.Lock()
					if errors.As(err, &nc) {
						stillQueued = append(stillQueued, nc.Campaign)
					}
					if interrupted == nil || nc != nil {
						interrupted = err
					}
					mu.Unlock()
					return nil
				}
				if gctx.Err() != nil {
					return err
				}
				out[i].Err = err
				return nil
			}
			s.Wall = time.Since(start).Seconds()
			out[i].Summary = s
			out[i].Records = c.records(gctx, p)
			mu.Lock()
			finished++
			if !c.Opt.Quiet && c.Opt.Progress != nil {
				fmt.Fprintf(c.Opt.Progress, "[%d/%d] %s: %d succeeded, %d failed, %d already done\n",
					finished, len(items), items[i].Label, s.Succeeded, s.Failed, s.Cached)
			}
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return out, err
	}
	if len(stillQueued) > 0 {
		sort.Strings(stillQueued)
		var nc *NotCancelledError
		errors.As(interrupted, &nc)
		return out, &NotCancelledError{Campaign: strings.Join(stillQueued, " "), Err: nc.Err}
	}
	if interrupted != nil {
		return out, interrupted
	}
	return out, nil
}

// records reads the final records of a followed campaign's runs.
func (c *Client) records(ctx context.Context, p *prepared) []*simswarm.RunRecord {
	var recs []*simswarm.RunRecord
	for i := 0; i < p.runs.Len(); i++ {
		if rec, ok, err := c.Eng.RunStatus(ctx, p.id, p.runs.Run(i)); err == nil && ok && rec.Done() {
			recs = append(recs, rec)
		}
	}
	return recs
}

// RunListed runs items as RunItems does and sums their outcomes up in one
// summary: an item that could not run counts as one failed run, and each
// failure names its item.
func (c *Client) RunListed(ctx context.Context, items []Item) (*Summary, error) {
	start := time.Now()
	outs, err := c.RunItems(ctx, items)
	if outs == nil {
		return nil, err
	}
	results := c.Opt.Results
	if len(items) > 0 {
		results = filepath.Dir(items[0].Results)
	}
	sum := &Summary{Campaign: fmt.Sprintf("list of %d", len(items)), Results: results, Failures: []Failure{}}
	for i, o := range outs {
		if o.Err != nil {
			sum.Runs++
			sum.Failed++
			sum.Failures = append(sum.Failures, Failure{Item: items[i].Label, Run: -1, Reason: o.Err.Error(), Errors: []string{}})
			continue
		}
		s := o.Summary
		if s == nil {
			continue
		}
		sum.Runs += s.Runs
		sum.Succeeded += s.Succeeded
		sum.Failed += s.Failed
		sum.Cached += s.Cached
		sum.Executed += s.Executed
		sum.Cancelled += s.Cancelled
		for _, f := range s.Failures {
			f.Item = items[i].Label
			sum.Failures = append(sum.Failures, f)
		}
		for h, n := range s.Hosts {
			if sum.Hosts == nil {
				sum.Hosts = map[string]int{}
			}
			sum.Hosts[h] += n
		}
		if fp := s.Fingerprints; fp != nil {
			if sum.Fingerprints == nil {
				sum.Fingerprints = &Fingerprints{Mismatched: []int{}}
			}
			sum.Fingerprints.Verified += fp.Verified
			sum.Fingerprints.Mismatched = append(sum.Fingerprints.Mismatched, fp.Mismatched...)
		}
	}
	sum.Wall = time.Since(start).Seconds()
	return sum, err
}

// plainRuns is the run set of an OMNeT++ command whose -r names run
// numbers only: it needs no run list to resolve.
func plainRuns(cmd simswarm.Command) (runSet, bool) {
	if cmd.Kind != simswarm.KindOmnetpp || cmd.Filter == "" {
		return runSet{}, false
	}
	runs, ok := omnetpp.PlainRunNumbers(cmd.Filter)
	return listRuns(&simswarm.RunList{Runs: runs}), ok
}
