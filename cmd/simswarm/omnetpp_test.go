package main

// The end-to-end suite on real OMNeT++ 6.1 (../shared/omnetpp, unpacked by
// testkit.OMNeTPP, or $SIMSWARM_OMNETPP): samples run through simswarm run
// and through OMNeT++'s own opp_runall, and their results compared.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/testkit"
)

// realOMNeT puts real OMNeT++ first on PATH for the test: simswarm, its
// builder and runners, and opp_runall all find it there, as on a user's
// machine.
func realOMNeT(t *testing.T) *testkit.OMNeT {
	t.Helper()
	o := testkit.OMNeTPP(t)
	o.Setenv(t)
	return o
}

// sharedCcache is one compiler cache for every build of this test binary:
// each test has its own engine state, but compiling queueinglib once is
// enough.
var sharedCcache = sync.OnceValue(func() string {
	d := filepath.Join(filepath.Dir(binary), "ccache")
	_ = os.MkdirAll(d, 0o755)
	return d
})

// localMake builds a project in place as a user does (make MODE=release),
// through the shared compiler cache.
func localMake(t testing.TB, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "MODE=release", "-j2", "CXX=ccache g++", "CC=ccache gcc")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CCACHE_DIR="+sharedCcache(), "CCACHE_NOHASHDIR=true", "CCACHE_BASEDIR="+filepath.Dir(dir))
	if _, err := exec.LookPath("ccache"); err != nil {
		cmd.Args = cmd.Args[:3]
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make in %s: %v\n%s", dir, err, out)
	}
}

// oppRunall runs a campaign with OMNeT++'s own opp_runall in dir and
// returns its results directory.
func oppRunall(t testing.TB, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "opp_runall", append([]string{"-j2"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("opp_runall %v: %v\n%s", args, err, out)
	}
	return filepath.Join(dir, "results")
}

// reference is a campaign's results as opp_runall leaves them, computed
// once per test binary: embedded and cluster tests compare with the same.
// A setup that fails fails its test (t.Fatal ends the Once too), and every
// later caller is told so.
type reference struct {
	once sync.Once
	dir  string
}

var refs sync.Map // name -> *reference

func referenceResults(t *testing.T, name string, setup func(t testing.TB, fixture string) string) string {
	t.Helper()
	v, _ := refs.LoadOrStore(name, &reference{})
	r := v.(*reference)
	r.once.Do(func() { r.dir = setup(t, filepath.Join(filepath.Dir(binary), "ref-"+name)) })
	if r.dir == "" {
		t.Fatalf("opp_runall's results for %s failed in an earlier test", name)
	}
	return r.dir
}

// volatileLine marks result-file lines that differ between any two
// executions of the same run: when and where it ran.
var volatileLine = regexp.MustCompile(`^(run |attr datetime|attr datetimef |attr processid |attr resultdir |config result-dir |config cmdenv-redirect-output )`)

// resultContent is a .sca or .vec file without its volatile lines.
func resultContent(t testing.TB, path string) string {
	t.Helper()
	var keep []string
	for _, l := range strings.Split(readFile(t, path), "\n") {
		if !volatileLine.MatchString(l) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// outContent is a .out file without what depends on timing (elapsed
// times, speeds, the progress percentage of the whole batch) or on the
// process it ran in (the run's header line, which opp_runall's redirected
// output lacks).
var (
	outHeader  = regexp.MustCompile(`^\S+ run \d+: `)
	outElapsed = regexp.MustCompile(`\s+Elapsed:.*$`)
)

func outContent(t testing.TB, path string) string {
	t.Helper()
	var keep []string
	progress := false
	for _, l := range strings.Split(readFile(t, path), "\n") {
		if outHeader.MatchString(l) || strings.HasPrefix(strings.TrimSpace(l), "Speed:") {
			continue
		}
		// Cmdenv reports progress every few seconds of wall-clock time: how
		// many reports a run prints depends on the machine's load. The
		// final event number is in the "<!>" line that ends the run.
		if strings.HasPrefix(l, "** Event #") {
			progress = !strings.HasPrefix(l, "** Event #0 ")
		}
		if progress && (strings.HasPrefix(l, "** Event #") || strings.HasPrefix(strings.TrimSpace(l), "Messages:")) {
			continue
		}
		keep = append(keep, outElapsed.ReplaceAllString(l, ""))
	}
	return strings.TrimSpace(strings.Join(keep, "\n"))
}

// sameResults compares two results directories file by file: the same
// names, .sca and .vec content equal but for when and where they ran,
// .out files equal but for timing.
func sameResults(t *testing.T, want, got string) {
	t.Helper()
	names := func(dir string) []string {
		var out []string
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				out = append(out, e.Name())
			}
		}
		sort.Strings(out)
		return out
	}
	// simswarm adds one file of its own beside the results: each run's
	// provenance (results/provenance.jsonl).
	if _, err := os.Stat(filepath.Join(got, "provenance.jsonl")); err != nil {
		t.Errorf("no provenance beside the results: %v", err)
	}
	w, g := names(want), slices.DeleteFunc(names(got), func(n string) bool { return n == "provenance.jsonl" })
	if !reflect.DeepEqual(w, g) {
		t.Fatalf("result files differ from opp_runall's:\nopp_runall: %v\nsimswarm:   %v", w, g)
	}
	if len(w) == 0 {
		t.Fatal("no result files")
	}
	for _, n := range w {
		a, b := filepath.Join(want, n), filepath.Join(got, n)
		switch filepath.Ext(n) {
		case ".sca", ".vec":
			if resultContent(t, a) != resultContent(t, b) {
				t.Errorf("%s differs from opp_runall's", n)
			}
		case ".out":
			if outContent(t, a) != outContent(t, b) {
				t.Errorf("%s differs from opp_runall's:\nopp_runall:\n%s\nsimswarm:\n%s", n, outContent(t, a), outContent(t, b))
			}
		}
	}
}

const alohaCampaign = "PureAlohaExperiment"

func alohaReference(t *testing.T, o *testkit.OMNeT) string {
	return referenceResults(t, "aloha", func(t testing.TB, fixture string) string {
		dir := o.CopySample(t, "aloha", fixture)
		localMake(t, dir)
		return oppRunall(t, dir, "./aloha", "-u", "Cmdenv", "-c", alohaCampaign)
	})
}

// TestOMNeTPPAloha: real aloha's 42-run PureAlohaExperiment on the
// embedded engine leaves exactly the files opp_runall leaves, with the same
// scalars and vectors; the same command again executes nothing.
func TestOMNeTPPAloha(t *testing.T) {
	o := realOMNeT(t)
	want := alohaReference(t, o)
	dir := o.CopySample(t, "aloha", t.TempDir())
	state := t.TempDir()
	args := []string{"run", "-j", "2", "--json", "--ccache-dir", sharedCcache(), "--", "./aloha", "-u", "Cmdenv", "-c", alohaCampaign}
	r := runSimswarm(t, dir, state, args...)
	s := jsonSummary(t, r)
	if r.code != 0 || s.Runs != 42 || s.Succeeded != 42 {
		t.Fatalf("exit %d, %+v\n%s", r.code, s, r.stderr)
	}
	sameResults(t, want, filepath.Join(dir, "results"))
	r = runSimswarm(t, dir, state, args...)
	if s := jsonSummary(t, r); r.code != 0 || s.Executed != 0 || s.Cached != 42 {
		t.Fatalf("the same campaign again: exit %d, %+v", r.code, s)
	}
}

// TestOMNeTPPAlohaCases: what users do with real aloha besides a whole
// campaign, on one engine: run filters, a bad config and run number, a
// batch in which one run fails, fingerprint checks, a CPU time limit.
func TestOMNeTPPAlohaCases(t *testing.T) {
	o := realOMNeT(t)
	dir := o.CopySample(t, "aloha", t.TempDir())
	state := t.TempDir()
	run := func(args ...string) result {
		t.Helper()
		return runSimswarm(t, dir, state, append([]string{"run", "-j", "2", "--ccache-dir", sharedCcache()}, args...)...)
	}
	aloha := []string{"--", "./aloha", "-u", "Cmdenv", "-c", alohaCampaign}

	t.Run("filters", func(t *testing.T) {
		// A dry run builds nothing: before any build it lists no run of an
		// expression, and says why.
		r := run(append([]string{"--dry-run"}, append(aloha, "-r", "$numHosts==10")...)...)
		if r.code != 0 || !strings.Contains(r.stdout, "has no build on this engine yet") || regexp.MustCompile(`(?m)^run \d`).MatchString(r.stdout) {
			t.Fatalf("dry run before any build: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		// Built (by a one-run campaign), the dry runs list what filters select.
		if r := run(append([]string{"--json", "--results", "warm"}, append(aloha, "-r", "0", "--sim-time-limit=1s")...)...); r.code != 0 {
			t.Fatalf("one-run campaign: exit %d\n%s", r.code, r.stderr)
		}
		for filter, want := range map[string]string{
			"$numHosts==10 && $iaMean==1": "0 1",
			"0..2,41":                     "0 1 2 41",
			"$numHosts==20 && $iaMean>7":  "40 41",
		} {
			r := run(append([]string{"--dry-run"}, append(aloha, "-r", filter)...)...)
			if r.code != 0 {
				t.Fatalf("-r %q: exit %d\n%s", filter, r.code, r.stderr)
			}
			var got []string
			for _, m := range regexp.MustCompile(`(?m)^run (\d+)\t`).FindAllStringSubmatch(r.stdout, -1) {
				got = append(got, m[1])
			}
			if strings.Join(got, " ") != want {
				t.Errorf("-r %q selects runs %v, want %s", filter, got, want)
			}
		}
		r = run(append([]string{"--json"}, append(aloha, "-r", "$numHosts==10 && $iaMean==1", "--sim-time-limit=10min")...)...)
		if s := jsonSummary(t, r); r.code != 0 || s.Succeeded != 2 || len(files(t, filepath.Join(dir, "results"), "*numHosts=10,iaMean=1-#*.sca")) != 2 {
			t.Fatalf("filtered campaign: exit %d %+v\n%s", r.code, s, r.stderr)
		}
	})

	t.Run("bad config and run number", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--", "./aloha", "-u", "Cmdenv", "-c", "NoSuchConfig"}, "<!> Error: No such config: NoSuchConfig"},
			{append(slices.Clone(aloha), "-r", "99"), "Run number 99 in run list '99' is out of range 0..41"},
		} {
			r := run(c.args...)
			if r.code != 2 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("%v: exit %d, want 2 and %q:\n%s", c.args, r.code, c.want, r.stderr)
			}
		}
	})

	t.Run("fingerprint", func(t *testing.T) {
		// OMNeT++'s own fingerprint of aloha run 0 for 10 minutes.
		fp := []string{"-r", "0", "--sim-time-limit=10min"}
		r := run(append([]string{"--json"}, append(append(slices.Clone(aloha), fp...), "--fingerprint=0434-d813/tplx")...)...)
		s := jsonSummary(t, r)
		if r.code != 0 || !strings.Contains(r.stderr, "fingerprints: 1 verified, 0 mismatched") {
			t.Fatalf("right fingerprint: exit %d %+v\n%s", r.code, s, r.stderr)
		}
		r = run(append([]string{"--json", "--results", "wrong-fp"}, append(append(slices.Clone(aloha), fp...), "--fingerprint=0000-0000/tplx")...)...)
		if r.code != 1 || !strings.Contains(r.stderr, "fingerprints: 0 verified, 1 mismatched (runs 0;") {
			t.Fatalf("wrong fingerprint: exit %d, want 1 and the mismatch named\n%s", r.code, r.stderr)
		}
		outs := files(t, filepath.Join(dir, "wrong-fp"), "*.out")
		if len(outs) != 1 || !strings.Contains(readFile(t, outs[0]), "Fingerprint mismatch! calculated: 0434-d813/tplx, expected: 0000-0000/tplx") {
			t.Errorf("the run's .out does not show OMNeT++'s verdict: %v", outs)
		}
	})

	t.Run("cpu time limit", func(t *testing.T) {
		r := run(append([]string{"--json", "--results", "cpu"}, append(slices.Clone(aloha), "-r", "28", "--cpu-time-limit=0.1s")...)...)
		if s := jsonSummary(t, r); r.code != 0 || s.Succeeded != 1 {
			t.Fatalf("exit %d %+v\n%s", r.code, s, r.stderr)
		}
		outs := files(t, filepath.Join(dir, "cpu"), "*.out")
		if len(outs) != 1 || !strings.Contains(readFile(t, outs[0]), "<!> CPU time limit reached") {
			t.Errorf("the run did not end at its CPU time limit: %v", outs)
		}
	})

	t.Run("batch with a failing run", func(t *testing.T) {
		// ../shared/omnetpp-output's aloha-batch-failing case: run 1 fails
		// at set-up, and OMNeT++ would skip run 2 of the same process.
		os.WriteFile(filepath.Join(dir, "err.ini"), []byte("include omnetpp.ini\n\n[ErrExp]\nextends = PureAloha1\nAloha.numHosts = ${n=2,-1,3}\nsim-time-limit = 10min\n"), 0o644)
		r := run("--json", "-b", "3", "--results", "err", "--", "./aloha", "-u", "Cmdenv", "-f", "err.ini", "-c", "ErrExp")
		s := jsonSummary(t, r)
		if r.code != 1 || s.Succeeded != 2 || s.Failed != 1 || len(s.Failures) != 1 || s.Failures[0].Run != 1 || len(s.Failures[0].Errors) == 0 {
			t.Fatalf("exit %d %+v, want runs 0 and 2 to succeed and run 1 to fail with its error\n%s", r.code, s, r.stderr)
		}
		if n := len(files(t, filepath.Join(dir, "err"), "*.sca")); n != 2 {
			t.Errorf("%d .sca files, want those of runs 0 and 2", n)
		}
	})
}

// TestOMNeTPPTictoc: tictoc's TicToc18 (vectors and histograms), part of
// its sweep, as opp_runall runs it.
func TestOMNeTPPTictoc(t *testing.T) {
	o := realOMNeT(t)
	args := []string{"./tictoc", "-u", "Cmdenv", "-c", "TicToc18", "-r", "$N<=4", "--sim-time-limit=50000s"}
	want := referenceResults(t, "tictoc", func(t testing.TB, fixture string) string {
		dir := o.CopySample(t, "tictoc", fixture)
		localMake(t, dir)
		return oppRunall(t, dir, args...)
	})
	dir := o.CopySample(t, "tictoc", t.TempDir())
	r := runSimswarm(t, dir, t.TempDir(), append([]string{"run", "-j", "2", "--json", "--ccache-dir", sharedCcache(), "--"}, args...)...)
	if s := jsonSummary(t, r); r.code != 0 || s.Succeeded != 8 {
		t.Fatalf("exit %d %+v\n%s", r.code, s, r.stderr)
	}
	sameResults(t, want, filepath.Join(dir, "results"))
}

// projectsSummary is the part of --json about the projects of a campaign.
type projectsSummary struct {
	Runs      int `json:"runs"`
	Succeeded int `json:"succeeded"`
	Executed  int `json:"executed"`
	Projects  []struct {
		Root  string `json:"root"`
		Dir   string `json:"dir"`
		Build struct {
			Cached bool `json:"cached"`
		} `json:"build"`
	} `json:"projects"`
}

func (p projectsSummary) layout() string {
	var out []string
	for _, pr := range p.Projects {
		state := "built"
		if pr.Build.Cached {
			state = "cached"
		}
		out = append(out, pr.Dir+":"+state)
	}
	return strings.Join(out, " ")
}

func parseProjects(t *testing.T, r result) projectsSummary {
	t.Helper()
	var s projectsSummary
	if err := jsonUnmarshal(r.stdout, &s); err != nil {
		t.Fatalf("--json: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	return s
}

var queuenetArgs = []string{"./queuenet", "-u", "Cmdenv", "-c", "CQN", "--sim-time-limit=100000s"}

func queuenetReference(t *testing.T, o *testkit.OMNeT) string {
	return referenceResults(t, "queuenet", func(t testing.TB, fixture string) string {
		o.CopySample(t, "queueinglib", fixture)
		localMake(t, filepath.Join(fixture, "queueinglib"))
		return oppRunall(t, o.CopySample(t, "queuenet", fixture), queuenetArgs...)
	})
}

var layeredArgs = []string{"./app", "-u", "Cmdenv", "-c", "Sweep"}

func layeredReference(t *testing.T, o *testkit.OMNeT) string {
	return referenceResults(t, "layered", func(t testing.TB, fixture string) string {
		l := o.GenerateLayered(t, fixture)
		for _, d := range []string{l.Core, l.Mid, l.App} {
			localMake(t, d)
		}
		return oppRunall(t, l.App, layeredArgs...)
	})
}

// TestOMNeTPPQueuenet: OMNeT++'s queuenet, whose program is a script
// loading ../queueinglib, runs with no simswarm.toml: queueinglib is found,
// snapshotted, built first and laid out beside it; the results are
// opp_runall's. Changing only queuenet rebuilds only queuenet.
func TestOMNeTPPQueuenet(t *testing.T) {
	o := realOMNeT(t)
	want := queuenetReference(t, o)
	ws := t.TempDir()
	o.CopySample(t, "queueinglib", ws)
	dir := o.CopySample(t, "queuenet", ws)
	state := t.TempDir()
	args := append([]string{"run", "-j", "2", "--json", "--ccache-dir", sharedCcache(), "--"}, queuenetArgs...)
	r := runSimswarm(t, dir, state, args...)
	s := parseProjects(t, r)
	if r.code != 0 || s.Succeeded != 3 || s.layout() != "queueinglib:built queuenet:built" {
		t.Fatalf("exit %d, %d of %d runs, projects %q\n%s", r.code, s.Succeeded, s.Runs, s.layout(), r.stderr)
	}
	sameResults(t, want, filepath.Join(dir, "results"))

	dry := runSimswarm(t, dir, state, append([]string{"run", "--dry-run", "--"}, queuenetArgs...)...)
	if dry.code != 0 || !regexp.MustCompile(`(?m)^project queueinglib\tbuilt \(cached \w+\)\t`).MatchString(dry.stdout) {
		t.Errorf("--dry-run does not list queueinglib as built:\n%s", dry.stdout)
	}

	ini := filepath.Join(dir, "omnetpp.ini")
	os.WriteFile(ini, []byte(readFile(t, ini)+"\n# changed\n"), 0o644)
	r = runSimswarm(t, dir, state, args...)
	if s := parseProjects(t, r); r.code != 0 || s.Executed != 3 || s.layout() != "queueinglib:cached queuenet:built" {
		t.Fatalf("after changing queuenet: exit %d, %d executed, projects %q, want queueinglib cached\n%s", r.code, s.Executed, s.layout(), r.stderr)
	}
	sameResults(t, want, filepath.Join(dir, "results"))
}

// TestOMNeTPPTwoLevels: a generated project whose library uses another
// library (named only in the middle library's files) runs with no
// simswarm.toml, with opp_runall's results; changing only the simulation
// rebuilds neither library.
func TestOMNeTPPTwoLevels(t *testing.T) {
	o := realOMNeT(t)
	want := layeredReference(t, o)
	l := o.GenerateLayered(t, t.TempDir())
	state := t.TempDir()
	args := append([]string{"run", "-j", "2", "--json", "--ccache-dir", sharedCcache(), "--"}, layeredArgs...)
	r := runSimswarm(t, l.App, state, args...)
	s := parseProjects(t, r)
	if r.code != 0 || s.Succeeded != 6 || s.layout() != "libs/core:built libs/mid:built app:built" {
		t.Fatalf("exit %d, %d of %d runs, projects %q\n%s", r.code, s.Succeeded, s.Runs, s.layout(), r.stderr)
	}
	sameResults(t, want, filepath.Join(l.App, "results"))

	sink := filepath.Join(l.App, "Sink.cc")
	os.WriteFile(sink, []byte(readFile(t, sink)+"// changed\n"), 0o644)
	r = runSimswarm(t, l.App, state, args...)
	if s := parseProjects(t, r); r.code != 0 || s.layout() != "libs/core:cached libs/mid:cached app:built" {
		t.Fatalf("after changing the app: exit %d, projects %q\n%s", r.code, s.layout(), r.stderr)
	}
	sameResults(t, want, filepath.Join(l.App, "results"))
}

// TestClusterOMNeTPPProjects: queuenet and the two-level project on a
// server, a builder and two runners on separate network namespaces; the
// client uploads, the cluster builds and runs, and the client gets
// opp_runall's results.
func TestClusterOMNeTPPProjects(t *testing.T) {
	o := realOMNeT(t)
	wantQ := queuenetReference(t, o)
	wantL := layeredReference(t, o)
	c := newCluster(t, 2)
	ws := t.TempDir()
	o.CopySample(t, "queueinglib", ws)
	qn := o.CopySample(t, "queuenet", ws)
	r := c.client(t, qn, append([]string{"run", "--json", "--"}, queuenetArgs...)...)
	if s := parseProjects(t, r); r.code != 0 || s.Succeeded != 3 || s.layout() != "queueinglib:built queuenet:built" {
		t.Fatalf("queuenet: exit %d, %+v\n%s", r.code, s, r.stderr)
	}
	sameResults(t, wantQ, filepath.Join(qn, "results"))

	l := o.GenerateLayered(t, t.TempDir())
	r = c.client(t, l.App, append([]string{"run", "--json", "--"}, layeredArgs...)...)
	if s := parseProjects(t, r); r.code != 0 || s.Succeeded != 6 {
		t.Fatalf("two levels: exit %d, %+v\n%s", r.code, s, r.stderr)
	}
	sameResults(t, wantL, filepath.Join(l.App, "results"))
}

// TestOMNeTPPSeededBuild: the first build of a project the user has built
// in place compiles nothing on the embedded engine (the workspace starts
// from the user's objects), while a fresh checkout compiles every source;
// both are told beforehand what a cold build costs.
func TestOMNeTPPSeededBuild(t *testing.T) {
	o := realOMNeT(t)
	var build struct {
		Build struct {
			Cached   bool `json:"cached"`
			Compiled int  `json:"compiled"`
		} `json:"build"`
	}
	args := []string{"run", "--json", "--ccache-dir", "off", "--", "./aloha", "-u", "Cmdenv", "-c", alohaCampaign, "-r", "0", "--sim-time-limit=10min"}
	for _, c := range []struct {
		name     string
		built    bool
		compiled int
	}{{"fresh checkout", false, 2}, {"built by the user", true, 0}} {
		dir := o.CopySample(t, "aloha", t.TempDir())
		if c.built {
			localMake(t, dir)
		}
		r := runSimswarm(t, dir, t.TempDir(), args...)
		if err := jsonUnmarshal(r.stdout, &build); err != nil || r.code != 0 {
			t.Fatalf("%s: exit %d %v\n%s", c.name, r.code, err, r.stderr)
		}
		if build.Build.Cached || build.Build.Compiled != c.compiled {
			t.Errorf("%s: build cached=%v compiled %d files, want %d", c.name, build.Build.Cached, build.Build.Compiled, c.compiled)
		}
		want := "has no build on this engine yet: 2 sources to compile, about"
		if c.built {
			// No estimate from scratch before a build that compiles nothing.
			want = "has no build on this engine yet; the builder starts from your own build there"
		}
		if !strings.Contains(r.stderr, want) {
			t.Errorf("%s: stderr lacks %q:\n%s", c.name, want, r.stderr)
		}
	}
}
