// Package gc frees what an engine no longer needs: snapshots, files,
// artifacts, results, build logs and records that no recent campaign
// reaches (simswarm gc), and results that no client came to fetch within
// their time to live (the server's janitor).
//
// A campaign is recent when it was submitted or followed within the
// horizon (--older-than). What a recent campaign reaches: its snapshot and
// every file of it, its artifact, the build records and logs of that
// artifact, its run list, its runs' status and records and their result
// archives. Nothing younger than the horizon is removed either, reached or
// not: a snapshot being uploaded or built belongs to no campaign yet.
// Baselines (simswarm baseline save) are never removed.
package gc

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/status"
	"github.com/simswarm/simswarm/internal/treestore"
)

// Options says what to collect.
type Options struct {
	// OlderThan is the horizon: campaigns submitted or followed within it
	// are kept, with all they reach.
	OlderThan time.Duration
	DryRun    bool
	// Now is the clock (zero: the real one); tests move it.
	Now time.Time
}

// Report says what gc removed (or would remove) and what it kept.
type Report struct {
	Horizon   time.Time                   `json:"horizon"`
	DryRun    bool                        `json:"dry_run,omitempty"`
	Campaigns []simswarm.Campaign         `json:"campaigns_removed"`
	Kept      int                         `json:"campaigns_kept"`
	Removed   map[string]engine.KindUsage `json:"removed"`
	Left      map[string]engine.KindUsage `json:"left"`
}

// Collect finds what no recent campaign reaches and, unless DryRun,
// removes it: records first (nothing may point at a removed object), then
// snapshots before their files.
func Collect(ctx context.Context, eng *engine.Engine, o Options) (*Report, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	horizon := now.Add(-o.OlderThan)
	rep := &Report{Horizon: horizon, DryRun: o.DryRun, Removed: map[string]engine.KindUsage{}, Left: map[string]engine.KindUsage{}}
	reach, live, dead, err := reached(ctx, eng, horizon)
	if err != nil {
		return nil, err
	}
	rep.Kept, rep.Campaigns = len(live), dead
	deadIDs := map[string]bool{}
	for _, c := range dead {
		deadIDs[c.ID] = true
	}
	// A campaign's own records go with it, however recently they changed
	// (a cancel, a late status): only what campaigns share needs the age.
	ofDead := func(bucket engine.Bucket, key string) bool {
		switch bucket {
		case engine.BucketCampaigns:
			return deadIDs[key]
		case engine.BucketStatus:
			id, _, ok := simswarm.ParseStatusKey(key)
			return ok && deadIDs[id]
		}
		return false
	}

	type doomed struct {
		bucket engine.Bucket
		key    string
	}
	var records []doomed
	for _, b := range engine.RecordBuckets {
		recs, err := eng.Records(ctx, b)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if reach.records[b][r.Key] || !r.Created.Before(horizon) && !ofDead(b, r.Key) {
				rep.Left[engine.KindRecords] = add(rep.Left[engine.KindRecords], r.Size)
				continue
			}
			rep.Removed[engine.KindRecords] = add(rep.Removed[engine.KindRecords], r.Size)
			records = append(records, doomed{b, r.Key})
		}
	}
	objs, err := eng.Objects(ctx)
	if err != nil {
		return nil, err
	}
	var objects []string
	for _, ob := range objs {
		k := engine.KindOf(ob.Name)
		// Baselines are kept by name, not reached by a campaign: a user
		// saved one to compare with later, however long after.
		if reach.objects[ob.Name] || !ob.Modified.Before(horizon) || k == engine.KindBaseline {
			rep.Left[k] = add(rep.Left[k], ob.Size)
			continue
		}
		rep.Removed[k] = add(rep.Removed[k], ob.Size)
		objects = append(objects, ob.Name)
	}
	if o.DryRun {
		return rep, nil
	}
	// Campaigns go first (the dashboard sees them go), then what they led to.
	sort.SliceStable(records, func(a, b int) bool {
		return records[a].bucket == engine.BucketCampaigns && records[b].bucket != engine.BucketCampaigns
	})
	for _, r := range records {
		var err error
		if r.bucket == engine.BucketCampaigns {
			err = eng.RemoveCampaign(ctx, r.key)
		} else {
			err = eng.PurgeRecords(ctx, r.bucket, r.key)
		}
		if err != nil {
			return rep, err
		}
	}
	// A snapshot promises its files: it goes before them.
	order := map[string]int{engine.KindResult: 0, engine.KindArtifact: 1, engine.KindLog: 2, engine.KindSnapshot: 3, engine.KindFile: 4}
	sort.SliceStable(objects, func(a, b int) bool {
		return order[engine.KindOf(objects[a])] < order[engine.KindOf(objects[b])]
	})
	for _, name := range objects {
		if err := eng.DeleteObject(ctx, name); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func add(u engine.KindUsage, n int64) engine.KindUsage {
	return engine.KindUsage{Count: u.Count + 1, Bytes: u.Bytes + n}
}

// reach is what the recent campaigns lead to.
type reach struct {
	objects map[string]bool
	records map[engine.Bucket]map[string]bool // bucket -> key
}

func (r *reach) record(bucket engine.Bucket, key string) { r.records[bucket][key] = true }

// reached walks from every recent campaign (and from jobs waiting in the
// queue) to everything it needs.
func reached(ctx context.Context, eng *engine.Engine, horizon time.Time) (*reach, []simswarm.Campaign, []simswarm.Campaign, error) {
	r := &reach{objects: map[string]bool{}, records: map[engine.Bucket]map[string]bool{}}
	for _, b := range engine.RecordBuckets {
		r.records[b] = map[string]bool{}
	}
	camps, err := eng.Campaigns(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	queued, pending, err := inQueue(ctx, eng)
	if err != nil {
		return nil, nil, nil, err
	}
	live := map[string]simswarm.Campaign{}
	var dead []simswarm.Campaign
	for _, c := range camps {
		if c.ID == "" {
			continue
		}
		if c.Submitted.Before(horizon) && !queued[c.ID] {
			dead = append(dead, c)
			continue
		}
		live[c.ID] = c
	}
	snaps := map[string]bool{}
	arts := map[string]bool{}
	keys := newKeyer(eng)
	for _, c := range live {
		r.record(engine.BucketCampaigns, c.ID)
		snaps[c.Snapshot] = true
		arts[c.Artifact] = true
		r.record(engine.BucketLists, simswarm.ListKey(c.Artifact, c.Workdir, c.Command))
		if l := keys.list(ctx, c); l != nil && l.Config != "" {
			r.objects[l.Config] = true
		}
	}
	for _, j := range pending {
		snaps[j.Snapshot] = true
		if j.Artifact != "" {
			arts[j.Artifact] = true
		}
	}
	// Runs of recent campaigns, by their status keys: the run key follows
	// from the campaign and its run list, so no record needs reading.
	status, err := eng.Records(ctx, engine.BucketStatus)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, s := range status {
		id, n, ok := simswarm.ParseStatusKey(s.Key)
		c, isLive := live[id]
		if !ok || !isLive {
			continue
		}
		key := keys.key(ctx, c, n)
		r.record(engine.BucketStatus, s.Key)
		r.record(engine.BucketRuns, key)
		r.objects[engine.ResultObject(key)] = true
	}
	trees := treestore.New(eng)
	for s := range snaps {
		if err := trees.Keep(ctx, s, r.objects); err != nil {
			return nil, nil, nil, err
		}
	}
	for a := range arts {
		treestore.KeepArtifact(a, r.objects)
	}
	// Builds that made a kept artifact, with their logs.
	if err := eng.Builds(ctx, func(key string, rec *simswarm.BuildRecord) {
		if !arts[rec.Artifact] {
			return
		}
		r.record(engine.BucketBuilds, key)
		if rec.Log != "" {
			r.objects[rec.Log] = true
		}
	}); err != nil {
		return nil, nil, nil, err
	}
	return r, sortedCampaigns(live), sortCampaigns(dead), nil
}

// inQueue lists the campaigns with run jobs in the queue and the build and
// list jobs waiting or being worked on: what they name is in use.
func inQueue(ctx context.Context, eng *engine.Engine) (map[string]bool, []engine.SetupInUse, error) {
	queued, err := eng.QueuedCampaigns(ctx)
	if err != nil {
		return nil, nil, err
	}
	pending, err := eng.SetupJobs(ctx)
	if err != nil {
		return nil, nil, err
	}
	return queued, pending, nil
}

func sortedCampaigns(m map[string]simswarm.Campaign) []simswarm.Campaign {
	out := make([]simswarm.Campaign, 0, len(m))
	for _, c := range m {
		out = append(out, c)
	}
	return sortCampaigns(out)
}

func sortCampaigns(cs []simswarm.Campaign) []simswarm.Campaign {
	sort.Slice(cs, func(a, b int) bool { return cs[a].Submitted.Before(cs[b].Submitted) })
	return cs
}

// Print writes the report for people: which campaigns went, and how much
// of each kind.
func (r *Report) Print(w io.Writer) {
	verb := "removed"
	if r.DryRun {
		verb = "would remove"
	}
	fmt.Fprintf(w, "campaigns last followed before %s: %d (%s), %d kept\n", r.Horizon.Format(time.DateTime), len(r.Campaigns), verb, r.Kept)
	for _, c := range r.Campaigns {
		fmt.Fprintf(w, "  %s  %s  %5d runs  %s (%s)\n", c.ID, c.Submitted.Format(time.DateOnly), c.Runs, c.Project, c.Workdir)
	}
	fmt.Fprintf(w, "%-8s %22s %22s\n", "KIND", strings.ToUpper(verb), "LEFT")
	var tr, tl engine.KindUsage
	for _, k := range engine.Kinds {
		rm, left := r.Removed[k], r.Left[k]
		tr.Count, tr.Bytes = tr.Count+rm.Count, tr.Bytes+rm.Bytes
		tl.Count, tl.Bytes = tl.Count+left.Count, tl.Bytes+left.Bytes
		fmt.Fprintf(w, "%-8s %22s %22s\n", label(k), amount(rm), amount(left))
	}
	fmt.Fprintf(w, "%-8s %22s %22s\n", "total", amount(tr), amount(tl))
	if r.DryRun {
		fmt.Fprintln(w, "dry run: nothing was removed")
	}
}

func label(kind string) string {
	if kind == engine.KindRecords {
		return kind
	}
	return kind + "/"
}

func amount(u engine.KindUsage) string {
	return strconv.Itoa(u.Count) + " (" + status.HumanBytes(u.Bytes) + ")"
}

// keyer finds the run keys of campaigns, reading each campaign's run list
// once: a run known by what it computes has its key from the list's idents.
type keyer struct {
	eng   *engine.Engine
	lists map[string]*simswarm.RunList
}

func newKeyer(eng *engine.Engine) *keyer {
	return &keyer{eng: eng, lists: map[string]*simswarm.RunList{}}
}

func (k *keyer) list(ctx context.Context, c simswarm.Campaign) *simswarm.RunList {
	if c.Command.Kind == simswarm.KindTemplate {
		return nil
	}
	if l, ok := k.lists[c.ID]; ok {
		return l
	}
	l, ok, err := k.eng.RunList(ctx, simswarm.ListKey(c.Artifact, c.Workdir, c.Command))
	if err != nil || !ok {
		l = nil
	}
	k.lists[c.ID] = l
	return l
}

func (k *keyer) key(ctx context.Context, c simswarm.Campaign, run int) string {
	return c.RunKey(run, k.list(ctx, c).Ident(run))
}
