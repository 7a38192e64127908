package campaign

import (
	"context"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/omnetpp"
	"github.com/simswarm/simswarm/internal/results"
	"github.com/simswarm/simswarm/internal/safedir"
	"golang.org/x/sync/errgroup"
)

// A run known by what it computes (its run list has idents) may have been
// done under another number: the campaign grew (--repeat, one more value of
// a variable) and OMNeT++ renumbered its runs. The client takes such
// results over itself, before anything is submitted, because only it can
// rename their files in the results directory to the numbers this campaign
// gives them, all at once, so that files trading names never overwrite one
// another. A results directory holds one numbering: the last campaign's.

// adopted is a finished run of this campaign found done under its key.
type adopted struct {
	at    int // position in the campaign
	rec   *simswarm.RunRecord
	files []simswarm.File // its files under this campaign's numbering
}

// adopt counts every run of the campaign whose key has a stored success
// with its files at hand as done, renaming the files where the run's
// number changed.
func (t *tracker) adopt(ctx context.Context) error {
	p, c := t.p, t.c
	if len(p.runs.idents) == 0 {
		return nil
	}
	var mu sync.Mutex
	var found []adopted
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range t.states {
		if t.states[i].cached {
			continue
		}
		g.Go(func() error {
			rec, ok, err := c.Eng.Run(gctx, hex.EncodeToString(t.states[i].key[:]))
			if err != nil || !ok || rec.State != simswarm.RunSucceeded {
				return err
			}
			mu.Lock()
			found = append(found, adopted{at: i, rec: rec})
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("look up done runs: %w", err)
	}
	if len(found) == 0 {
		return nil
	}
	config := omnetpp.ConfigName(p.cmd.Argv)
	var take, deliver []adopted
	for _, a := range found {
		a.files = renumbered(a.rec.Files, config, a.rec.Run, p.runs.Run(a.at))
		switch {
		case inPlace(p.results, t.own, a.rec):
			take = append(take, a)
		case a.rec.LocalDir == "" && a.rec.Object == "" && inline(a.rec):
			deliver = append(deliver, a)
		case a.rec.LocalDir == "" && a.rec.Object != "" && a.rec.Run == p.runs.Run(a.at):
			deliver = append(deliver, a) // an archive lands under its own names
		default:
			// Its files are gone, or were overwritten by another run's, or
			// sit in an archive under other names: the run executes again,
			// and no runner may answer it from the stale record.
			if a.rec.LocalDir != "" {
				_ = c.Eng.ForgetRun(ctx, a.rec.Key)
			}
		}
	}
	if err := t.rename(take); err != nil {
		return err
	}
	for _, a := range deliver {
		full := *a.rec
		full.Files = a.files
		if err := c.deliver(ctx, p.results, &full); err != nil {
			c.warnf("results of run %d (done as run %d): %v; it runs again", p.runs.Run(a.at), a.rec.Run, err)
			continue
		}
		take = append(take, a)
	}
	for _, a := range take {
		t.adopted(ctx, a)
	}
	return nil
}

// rename moves the files of runs done under other numbers to their names
// in this campaign, as one set.
func (t *tracker) rename(take []adopted) error {
	moves := 0
	for _, a := range take {
		for k, f := range a.rec.Files {
			if f.Name != a.files[k].Name {
				moves++
			}
		}
	}
	if moves == 0 {
		return nil
	}
	d, err := safedir.Open(t.p.results)
	if err != nil {
		return err
	}
	defer d.Close()
	st, err := d.Stage(t.p.id + "-renumber")
	if err != nil {
		return err
	}
	defer st.Remove()
	for _, a := range take {
		for k, f := range a.rec.Files {
			if f.Name == a.files[k].Name {
				continue
			}
			if err := st.Take(f.Name, a.files[k].Name); err != nil {
				return fmt.Errorf("rename the results of run %d to run %d: %w", a.rec.Run, t.p.runs.Run(a.at), err)
			}
		}
	}
	if err := st.Commit(); err != nil {
		return fmt.Errorf("rename the results of renumbered runs: %w", err)
	}
	return nil
}

// adopted records a run taken over as this campaign's: its status in this
// campaign, its key's record under the names its files have now, and its
// provenance.
func (t *tracker) adopted(ctx context.Context, a adopted) {
	p, c := t.p, t.c
	rec := *a.rec
	rec.Files = make([]simswarm.File, len(a.files))
	for k, f := range a.files {
		rec.Files[k] = simswarm.File{Name: f.Name, Size: f.Size}
	}
	rec.Object, rec.LocalDir = "", p.results
	if a.rec.LocalDir != "" || !c.Opt.KeepResults {
		if _, err := c.Eng.ReplaceRun(ctx, a.rec.Key, a.rec.Finished, &rec); err != nil {
			c.warnf("record the new names of run %d's results: %v", p.runs.Run(a.at), err)
		}
	}
	rec.Campaign, rec.Run, rec.Reused = p.id, p.runs.Run(a.at), true
	if err := c.Eng.Store(ctx, engine.StatusAnswer(&rec)); err != nil {
		c.warnf("record run %d as done: %v", rec.Run, err)
	}
	st := &t.states[a.at]
	st.cached = true
	t.sum.fingerprint(rec.Run, rec.Fingerprint)
	t.provenance(&rec)
}

// owns reports whether the results directory's files of rec are still
// rec's: another run with the same numbering may have written over them
// (sizes alike) after the campaign was renumbered.
func (t *tracker) owns(rec *simswarm.RunRecord) bool { return owned(t.p.results, t.own, rec) }

func owned(dir string, own *results.ProvenanceIndex, rec *simswarm.RunRecord) bool {
	return replacedBy(dir, own, rec) == ""
}

// replacedBy is the campaign whose run wrote over one of rec's files in
// dir after rec did ("": none did).
func replacedBy(dir string, own *results.ProvenanceIndex, rec *simswarm.RunRecord) string {
	if own == nil {
		return ""
	}
	for _, f := range rec.Files {
		if pr := own.Lookup(path.Join(dir, f.Name)); pr != nil && pr.Key != rec.Key {
			return pr.Campaign
		}
	}
	return ""
}

// inPlace reports whether rec's files are in dir, as rec left them, or
// dir's provenance says that the run wrote them there (a later campaign
// of the same runs may have written into another directory since).
func inPlace(dir string, own *results.ProvenanceIndex, rec *simswarm.RunRecord) bool {
	return (rec.LocalDir == dir && present(dir, rec) && owned(dir, own, rec)) || own.Holds(rec.Key)
}

func inline(rec *simswarm.RunRecord) bool {
	for _, f := range rec.Files {
		if int64(len(f.Data)) != f.Size {
			return false
		}
	}
	return true
}

// renumbered names a run's files as the run numbered to would have named
// them: OMNeT++'s default names (and simswarm's .out) are
// "<config>-#<run>.<ext>". A name that does not follow that pattern does
// not depend on the run number (an output-*-file that does is part of the
// run's configuration, so such a run is never renumbered) and stays.
func renumbered(files []simswarm.File, config string, from, to int) []simswarm.File {
	out := make([]simswarm.File, len(files))
	old := config + "-#" + strconv.Itoa(from) + "."
	for i, f := range files {
		out[i] = f
		if from == to || config == "" {
			continue
		}
		dir, base := path.Split(f.Name)
		if rest, ok := strings.CutPrefix(base, old); ok {
			out[i].Name = dir + config + "-#" + strconv.Itoa(to) + "." + rest
		}
	}
	return out
}

// loadOwners reads which run key each file of the results directory
// belongs to (nil where no provenance was kept).
func loadOwners(dir string) *results.ProvenanceIndex {
	idx, err := results.LoadProvenance(dir)
	if err != nil {
		return nil
	}
	return idx
}

// reasons tells, for --dry-run, whether each run of a campaign known by
// what it computes is done, new, or must run again and why: what changed
// since an earlier campaign of the same command ran the run with the same
// iteration variables.
type reasons struct {
	c     *Client
	p     *prepared
	own   *results.ProvenanceIndex
	now   map[int]omnetpp.RunConfig // by run number
	prior []priorCampaign
}

type priorCampaign struct {
	artifact string
	byVars   map[string]omnetpp.RunConfig
}

// priorCampaigns is how many earlier campaigns of the same command --dry-run
// compares with, newest first.
const priorCampaigns = 5

func (c *Client) reasons(ctx context.Context, p *prepared) *reasons {
	r := &reasons{c: c, p: p, own: loadOwners(p.results)}
	list, ok, err := c.Eng.RunList(ctx, simswarm.ListKey(p.artifact, p.workdir, p.cmd))
	if err == nil && ok {
		r.now = c.runConfigs(ctx, list)
	}
	camps, err := c.Eng.Campaigns(ctx)
	if err != nil {
		return r
	}
	same := p.cmd.SelectionFree()
	slices.SortFunc(camps, func(a, b simswarm.Campaign) int { return b.Submitted.Compare(a.Submitted) })
	for _, camp := range camps {
		if len(r.prior) == priorCampaigns {
			break
		}
		if camp.ID == p.id || camp.Workdir != p.workdir || camp.Project != p.proj.Root || camp.Command.SelectionFree() != same {
			continue
		}
		l, ok, err := c.Eng.RunList(ctx, simswarm.ListKey(camp.Artifact, camp.Workdir, camp.Command))
		if err != nil || !ok {
			continue
		}
		pc := priorCampaign{artifact: camp.Artifact, byVars: map[string]omnetpp.RunConfig{}}
		for _, rc := range c.runConfigs(ctx, l) {
			pc.byVars[rc.Vars] = rc
		}
		r.prior = append(r.prior, pc)
	}
	return r
}

// runConfigs reads a run list's -q runconfig output (nil where none was kept).
func (c *Client) runConfigs(ctx context.Context, l *simswarm.RunList) map[int]omnetpp.RunConfig {
	if l.Config == "" {
		return nil
	}
	b, err := c.Eng.GetBytes(ctx, l.Config)
	if err != nil {
		return nil
	}
	cfgs, err := omnetpp.ParseRunConfig(b)
	if err != nil {
		return nil
	}
	out := make(map[int]omnetpp.RunConfig, len(cfgs))
	for _, rc := range cfgs {
		out[rc.Number] = rc
	}
	return out
}

// state is "done", "would run (new)" or "would run again: <why>".
func (r *reasons) state(ctx context.Context, i int) string {
	p := r.p
	key := simswarm.RunKey(p.artifact, p.workdir, p.cmd, p.runs.Run(i), p.runs.Ident(i))
	rec, ok, err := r.c.Eng.Run(ctx, key)
	if err == nil && ok && rec.State == simswarm.RunSucceeded {
		if inPlace(p.results, r.own, rec) || (rec.LocalDir == "" && (rec.Object != "" || inline(rec))) {
			return "done"
		}
		if other := replacedBy(p.results, r.own, rec); other != "" && rec.LocalDir == p.results {
			return "would run again: its files were replaced by campaign " + other
		}
		return "would run again: its results are no longer in " + p.results
	}
	if err == nil && ok && rec.State == simswarm.RunFailed {
		return "would run again: it failed before (" + (&Failure{Exit: rec.Exit, Signal: rec.Signal, TimedOut: rec.TimedOut, Reason: rec.Reason}).Describe() + ")"
	}
	now, ok := r.now[p.runs.Run(i)]
	if !ok {
		return "would run (no earlier outcome of it is known)"
	}
	for _, pc := range r.prior {
		was, ok := pc.byVars[now.Vars]
		if !ok {
			continue
		}
		if pc.artifact != p.artifact {
			return "would run again: the build changed"
		}
		if d := now.Changed(was); d != "" {
			return "would run again: " + d
		}
		return "would run again: its configuration changed"
	}
	return "would run (new)"
}
