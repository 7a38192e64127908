package main

// Results go where they belong (issue 23, item 5).

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResultsOfACampaignFromItsOwnDirectory: `simswarm results CAMPAIGN`
// reads the campaign's own results directory, even after a campaign of
// the same runs wrote them elsewhere last and that directory is gone, and
// never shows its temporary copy's path.
func TestResultsOfACampaignFromItsOwnDirectory(t *testing.T) {
	dir := example(t, "aloha")
	state := t.TempDir()
	r1, r2 := filepath.Join(t.TempDir(), "r1"), filepath.Join(t.TempDir(), "r2")
	r := runSimswarm(t, dir, state, "run", "-q", "--json", "--results", r1, "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "0..1")
	first := jsonSummary(t, r)
	if r.code != 0 || first.Succeeded != 2 {
		t.Fatalf("first campaign: exit %d %+v\n%s", r.code, first, r.stderr)
	}
	r = runSimswarm(t, dir, state, "run", "-q", "--json", "--results", r2, "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "0..3")
	if s := jsonSummary(t, r); r.code != 0 || s.Executed != 4 || s.Campaign == first.Campaign {
		t.Fatalf("second campaign (the same runs 0 and 1, another results directory): exit %d %+v\n%s", r.code, s, r.stderr)
	}
	if err := os.RemoveAll(r2); err != nil {
		t.Fatal(err)
	}
	r = runSimswarm(t, dir, state, "results", first.Campaign)
	if r.code != 0 {
		t.Fatalf("results %s: exit %d\n%s", first.Campaign, r.code, r.stderr)
	}
	runs := map[string]bool{}
	for _, l := range strings.Split(r.stdout, "\n")[1:] {
		if f := strings.SplitN(l, ",", 2); len(f) == 2 {
			runs[f[0]] = true
		}
	}
	if len(runs) != 2 {
		t.Errorf("results %s shows %d runs, want its 2:\n%.2000s", first.Campaign, len(runs), r.stdout)
	}
	if strings.Contains(r.stdout+r.stderr, "simswarm-results-") {
		t.Errorf("results shows its temporary directory:\n%s", r.stderr)
	}
}

// TestAttachRefusesAnotherProject: attaching a campaign from another
// project's directory would put its files in that project's results/:
// refused, naming the campaign's project; from its own project it lands
// there, and the client says where.
func TestAttachRefusesAnotherProject(t *testing.T) {
	srv := startLoopServer(t)
	work := t.TempDir()
	startWorker(t, "builder", "--server", srv.url, "--creds", srv.creds, "--dir", filepath.Join(work, "ws"), "--ccache-dir", "off")
	startWorker(t, "runner", "--server", srv.url, "--creds", srv.creds, "--slots", "2", "--name", "r1", "--cache", filepath.Join(work, "r1"))
	mine := templateProject(t, "[build]\ncommand = \"\"\n[run]\ncommand = \"echo {run} > {resultdir}/out-{run}.csv\"\nrepeat = 2\n", map[string]string{})
	other := templateProject(t, "[build]\ncommand = \"\"\n[run]\ncommand = \"echo other > {resultdir}/other.csv\"\n", map[string]string{})
	r := srv.client(t, mine, "run", "--detach", "--json")
	s := jsonSummary(t, r)
	if r.code != 0 {
		t.Fatalf("--detach: exit %d\n%s", r.code, r.stderr)
	}
	r = srv.client(t, other, "attach", s.Campaign)
	msg := strings.TrimSpace(r.stderr)
	if r.code != 2 || strings.Contains(msg, "\n") || !strings.Contains(msg, "is of project "+mine) {
		t.Fatalf("attach from another project: exit %d, want 2 and one line naming %s:\n%s", r.code, mine, r.stderr)
	}
	if n := len(files(t, filepath.Join(other, "results"), "out-*")); n != 0 {
		t.Fatalf("%d of the campaign's files landed in the other project", n)
	}
	r = srv.client(t, mine, "attach", "--json", s.Campaign)
	if a := jsonSummary(t, r); r.code != 0 || a.Succeeded != 2 || len(files(t, filepath.Join(mine, "results"), "out-*.csv")) != 2 {
		t.Fatalf("attach from its own project: exit %d %+v\n%s", r.code, a, r.stderr)
	}
	if !strings.Contains(r.stderr, "results go to "+filepath.Join(mine, "results")) {
		t.Errorf("attach did not say where the results go:\n%s", r.stderr)
	}
}
