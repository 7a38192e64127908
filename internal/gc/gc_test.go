package gc_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/campaign"
	"github.com/simswarm/simswarm/internal/embedded"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/engine/enginetest"
	"github.com/simswarm/simswarm/internal/gc"
	"github.com/simswarm/simswarm/internal/snapshot"
)

// project writes a template project whose runs each leave 300 kB of
// random bytes: more than travels inline, so results are archives.
func project(t *testing.T, name string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	files["simswarm.toml"] = "[build]\ncommand = \"\"\n[run]\ncommand = \"echo " + name +
		"; head -c 300000 /dev/urandom > {resultdir}/r-{run}.bin\"\nrepeat = 2\n"
	for n, body := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, n)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type lab struct {
	t     *testing.T
	eng   *engine.Engine
	state string
}

func (l *lab) run(dir string, o campaign.Options) *campaign.Summary {
	l.t.Helper()
	o.Dir, o.StateDir, o.Host = dir, l.state, "testhost"
	if o.Results == "" {
		o.Results = l.t.TempDir()
	}
	o.Progress, o.Stdout, o.Quiet, o.Interrupt = io.Discard, io.Discard, true, make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := (&campaign.Client{Eng: l.eng, Opt: o}).Run(ctx)
	if err != nil {
		l.t.Fatalf("campaign in %s: %v", dir, err)
	}
	if !o.Detach && s.Succeeded != s.Runs {
		l.t.Fatalf("campaign in %s: %+v", dir, s)
	}
	return s
}

func (l *lab) objects() map[string]bool {
	l.t.Helper()
	objs, err := l.eng.Objects(context.Background())
	if err != nil {
		l.t.Fatal(err)
	}
	out := map[string]bool{}
	for _, o := range objs {
		out[o.Name] = true
	}
	return out
}

func (l *lab) keys(bucket engine.Bucket) []string {
	l.t.Helper()
	recs, err := l.eng.Records(context.Background(), bucket)
	if err != nil {
		l.t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Key)
	}
	sort.Strings(out)
	return out
}

// needs is everything a campaign needs to be followed again from the
// store alone: snapshot and its files, artifact, build log, results.
func (l *lab) needs(id string) map[string]bool {
	l.t.Helper()
	ctx := context.Background()
	c, ok, err := l.eng.Campaign(ctx, id)
	if !ok || err != nil {
		l.t.Fatalf("campaign %s: %v", id, err)
	}
	out := map[string]bool{engine.SnapshotObject(c.Snapshot): true, engine.ArtifactObject(c.Artifact): true}
	raw, err := l.eng.GetBytes(ctx, engine.SnapshotObject(c.Snapshot))
	if err != nil {
		l.t.Fatal(err)
	}
	man, _ := snapshot.Decode(raw)
	for _, e := range man.Entries {
		out[engine.FileObject(e.Hash)] = true
	}
	for _, k := range l.keys(engine.BucketStatus) {
		if strings.HasPrefix(k, id+".") {
			_, n, _ := simswarm.ParseStatusKey(k)
			if rec, ok, _ := l.eng.RunStatus(ctx, id, n); ok {
				out[engine.ResultObject(rec.Key)] = true
			}
		}
	}
	for _, k := range l.keys(engine.BucketBuilds) {
		if b, ok, _ := l.eng.Build(ctx, k); ok && b.Artifact == c.Artifact && b.Log != "" {
			out[b.Log] = true
		}
	}
	return out
}

func (l *lab) age(id string, submitted time.Time) {
	l.t.Helper()
	ctx := context.Background()
	c, ok, err := l.eng.Campaign(ctx, id)
	if !ok || err != nil {
		l.t.Fatalf("campaign %s: %v", id, err)
	}
	c.Submitted = submitted
	enginetest.PutCampaign(l.t, l.eng, *c)
}

func start(t *testing.T) *lab {
	t.Helper()
	state := t.TempDir()
	inst, err := embedded.Start(context.Background(), embedded.Options{StateDir: state, Slots: 2, Host: "testhost",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inst.Stop)
	return &lab{t: t, eng: inst.Eng, state: state}
}

// TestCollect: two old campaigns and a new one, the new one sharing a
// file with an old one. gc (with the clock a month on, the new campaign
// followed a day before) removes exactly what only the old campaigns
// needed; the new campaign still comes back whole from the store alone.
func TestCollect(t *testing.T) {
	l := start(t)
	keep := campaign.Options{KeepResults: true}
	old1 := l.run(project(t, "old1", map[string]string{"unique1.txt": "only in old1"}), keep)
	old2 := l.run(project(t, "old2", map[string]string{"shared.txt": "shared by old2 and new"}), keep)
	newDir := project(t, "new", map[string]string{"shared.txt": "shared by old2 and new"})
	fresh := l.run(newDir, keep)

	// A baseline (simswarm baseline save) is old too and reached by no
	// campaign, but a user named it: it stays.
	baseline := engine.BaselineObject("aloha-v1")
	if err := l.eng.PutBytes(context.Background(), baseline, []byte(`{"name":"aloha-v1"}`)); err != nil {
		t.Fatal(err)
	}

	now := time.Now().Add(31 * 24 * time.Hour)
	l.age(fresh.Campaign, now.Add(-24*time.Hour))
	need := l.needs(fresh.Campaign)
	need[baseline] = true
	before := l.objects()
	var wantGone []string
	for o := range before {
		if !need[o] {
			wantGone = append(wantGone, o)
		}
	}
	sort.Strings(wantGone)
	if len(wantGone) < 6 { // two snapshots, their own files, two artifacts, four results
		t.Fatalf("only %d objects belong to the old campaigns alone: %v", len(wantGone), wantGone)
	}
	for o := range need {
		if !before[o] {
			t.Fatalf("the new campaign needs %s, which is not stored", o)
		}
	}

	ctx := context.Background()
	dry, err := gc.Collect(ctx, l.eng, gc.Options{OlderThan: 30 * 24 * time.Hour, Now: now, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if after := l.objects(); len(after) != len(before) {
		t.Fatalf("dry run removed objects: %d -> %d", len(before), len(after))
	}
	rep, err := gc.Collect(ctx, l.eng, gc.Options{OlderThan: 30 * 24 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep.Print(&out)
	t.Logf("gc said:\n%s", out.String())
	after := l.objects()
	var gone []string
	for o := range before {
		if !after[o] {
			gone = append(gone, o)
		}
	}
	sort.Strings(gone)
	if strings.Join(gone, "\n") != strings.Join(wantGone, "\n") {
		t.Errorf("gc removed\n%s\nwant\n%s", strings.Join(gone, "\n"), strings.Join(wantGone, "\n"))
	}
	removed := 0
	for k, u := range rep.Removed {
		if k != engine.KindRecords {
			removed += u.Count
		}
		if dry.Removed[k] != u {
			t.Errorf("%s: dry run said %+v, gc removed %+v", k, dry.Removed[k], u)
		}
	}
	if removed != len(wantGone) {
		t.Errorf("report says %d objects removed, %d were", removed, len(wantGone))
	}
	var ids []string
	for _, c := range rep.Campaigns {
		ids = append(ids, c.ID)
	}
	sort.Strings(ids)
	want := []string{old1.Campaign, old2.Campaign}
	sort.Strings(want)
	if strings.Join(ids, ",") != strings.Join(want, ",") || rep.Kept != 1 {
		t.Errorf("campaigns removed %v (kept %d), want %v", ids, rep.Kept, want)
	}
	if got := l.keys(engine.BucketCampaigns); strings.Join(got, ",") != fresh.Campaign {
		t.Errorf("campaign records left: %v", got)
	}
	for _, k := range l.keys(engine.BucketStatus) {
		if !strings.HasPrefix(k, fresh.Campaign+".") {
			t.Errorf("status record %s of a removed campaign left", k)
		}
	}
	if n := len(l.keys(engine.BucketRuns)); n != 2 {
		t.Errorf("%d run records left, want the new campaign's 2", n)
	}
	// The new campaign is whole: followed into an empty directory, every
	// run comes from the store, none runs again.
	res := t.TempDir()
	again := l.run(newDir, campaign.Options{KeepResults: true, Results: res})
	if again.Cached != 2 || again.Executed != 0 {
		t.Errorf("after gc the new campaign ran again: %+v", again)
	}
	for _, n := range []string{"r-0.bin", "r-1.bin"} {
		if fi, err := os.Stat(filepath.Join(res, n)); err != nil || fi.Size() != 300000 {
			t.Errorf("%s after gc: %v", n, err)
		}
	}
}

// TestExpire: results no client fetched (a detached campaign) go after
// their time to live, with their run records, so attaching later runs them
// again; results a campaign keeps stay.
func TestExpire(t *testing.T) {
	l := start(t)
	kept := l.run(project(t, "kept", map[string]string{}), campaign.Options{KeepResults: true})
	detached := l.run(project(t, "detached", map[string]string{}), campaign.Options{Detach: true})
	ctx := context.Background()
	// Wait for the detached campaign's runs to finish and store results.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n := 0
		for o := range l.objects() {
			if strings.HasPrefix(o, "res/") {
				n++
			}
		}
		if n == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d result archives stored, want 4", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if freed, err := gc.Expire(ctx, l.eng, 7*24*time.Hour, time.Now()); err != nil || freed.Count != 0 {
		t.Fatalf("fresh results expired: %+v %v", freed, err)
	}
	freed, err := gc.Expire(ctx, l.eng, 7*24*time.Hour, time.Now().Add(8*24*time.Hour))
	if err != nil || freed.Count != 2 || freed.Bytes < 2*300000 {
		t.Fatalf("expired %+v, %v; want the detached campaign's 2 archives", freed, err)
	}
	keptNeeds := l.needs(kept.Campaign)
	for o := range l.objects() {
		if strings.HasPrefix(o, "res/") && !keptNeeds[o] {
			t.Errorf("%s left after expiry", o)
		}
	}
	ctxA, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	res := t.TempDir()
	s, err := (&campaign.Client{Eng: l.eng, Opt: campaign.Options{Dir: t.TempDir(), Results: res, StateDir: l.state,
		Progress: io.Discard, Stdout: io.Discard, Quiet: true, Interrupt: make(chan struct{})}}).Attach(ctxA, detached.Campaign)
	if err != nil || s.Succeeded != 2 || s.Executed != 2 {
		t.Fatalf("attach after expiry: %+v %v (want both runs executed again)", s, err)
	}
	if files, _ := filepath.Glob(filepath.Join(res, "r-*.bin")); len(files) != 2 {
		t.Errorf("results after attach: %v", files)
	}
}
