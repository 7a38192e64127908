package main

import (
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/testkit"
)

// The commits of alohaRepo where something happens: along the path
// from the first commit, one changes only a comment of omnetpp.ini and a
// later one the hosts' interarrival time, which shifts the server's
// channelUtilization.
const (
	commentCommit = 5
	timingCommit  = 11
	repoCommits   = 16
)

// regressConfig is what the regression tests run: ten repetitions of a
// short pure ALOHA, seeded by repetition.
const regressConfig = `
[Regress]
description = "what the regression tests compare"
repeat = 10
sim-time-limit = 300s
seed-set = ${repetition}
**.vector-recording = false
**.host[*].iaTime = exponential(2s)
`

// alohaRepo makes a git repository of real OMNeT++ aloha with 16 commits,
// checked out at the last, and returns its directory and the commits,
// oldest first. The commits other than commentCommit and timingCommit
// change a notes file only.
//
// With suite, the first commit also holds fingerprints.csv, a fingerprint
// suite of one test (the Regress config's run 0) whose fingerprint
// OMNeT++ calculated at that commit.
func alohaRepo(t *testing.T, suite bool) (string, []string) {
	t.Helper()
	o := realOMNeT(t)
	dir := o.CopySample(t, "aloha", t.TempDir())
	ini := filepath.Join(dir, "omnetpp.ini")
	os.WriteFile(ini, []byte(readFile(t, ini)+regressConfig), 0o644)
	os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("results*/\nout/\naloha\n*.o\n"), 0o644)
	if suite {
		localMake(t, dir)
		fp := calculated(t, dir, "./aloha", "-c", "Regress", "-r", "0", "--sim-time-limit=300s")
		os.WriteFile(filepath.Join(dir, "fingerprints.csv"), []byte("# working directory, arguments, simulation time limit, fingerprint, expected, tags\n"+
			"/, -f omnetpp.ini -c Regress -r 0, 300s, "+fp+", PASS, regress\n"), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "NOTES.txt"), []byte("notes\n"), 0o644)
	git := func(args ...string) string { t.Helper(); return testkit.Git(t, dir, args...) }
	git("init", "-q", "-b", "main")
	git("add", "-A")
	git("commit", "-q", "-m", "aloha with a regression config")
	commits := []string{git("rev-parse", "HEAD")}
	for i := 1; i < repoCommits; i++ {
		msg := "notes " + strconv.Itoa(i)
		switch i {
		case commentCommit:
			replaceIn(t, ini, "# no slots", "# no slots: pure ALOHA")
			msg = "omnetpp.ini: a comment only"
		case timingCommit:
			replaceIn(t, ini, "**.host[*].iaTime = exponential(2s)", "**.host[*].iaTime = exponential(2.5s)")
			msg = "Regress: hosts send less often"
		default:
			f, _ := os.OpenFile(filepath.Join(dir, "NOTES.txt"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			f.WriteString(msg + "\n")
			f.Close()
		}
		git("commit", "-q", "-a", "-m", msg)
		commits = append(commits, git("rev-parse", "HEAD"))
	}
	return dir, commits
}

func replaceIn(t *testing.T, file, old, new string) {
	t.Helper()
	s := readFile(t, file)
	if !strings.Contains(s, old) {
		t.Fatalf("%s holds no %q", file, old)
	}
	os.WriteFile(file, []byte(strings.Replace(s, old, new, 1)), 0o644)
}

func checkout(t *testing.T, dir, commit string) {
	t.Helper()
	if out, err := exec.Command("git", "-C", dir, "checkout", "-q", commit).CombinedOutput(); err != nil {
		t.Fatalf("checkout %s: %v\n%s", commit, err, out)
	}
}

// regressRun runs the regression campaign into results.
func regressRun(t *testing.T, dir, state, results string, extra ...string) {
	t.Helper()
	args := append([]string{"run", "-j", "2", "-q", "--ccache-dir", sharedCcache(), "--results", results, "--", "./aloha", "-u", "Cmdenv", "-c", "Regress"}, extra...)
	if r := runSimswarm(t, dir, state, args...); r.code != 0 {
		t.Fatalf("run %v: exit %d\n%s", extra, r.code, r.stderr)
	}
}

// verdicts maps "MODULE NAME" of a compare table to its verdict.
func verdicts(table string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(table, "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && (f[0] == "same" || f[0] == "changed" || f[0] == "missing" || f[0] == "new") {
			out[f[2]+" "+f[3]] = f[0]
		}
	}
	return out
}

// TestCompare: a baseline of ten repetitions of real aloha against the
// same campaign with other seeds is the same in every scalar at alpha
// 0.01; a commit that changes a comment is the same, exactly; the commit
// that changes the interarrival time changes channelUtilization (exit 1,
// in the table and the CSV). The baseline survives export, import and
// gc; bad inputs are one line and exit 2.
func TestCompare(t *testing.T) {
	dir, commits := alohaRepo(t, false)
	state := t.TempDir()
	checkout(t, dir, commits[0])
	regressRun(t, dir, state, "results")
	if r := runSimswarm(t, dir, state, "baseline", "save", "good"); r.code != 0 || !strings.Contains(r.stdout, "baseline good: 17 series of 10 runs") {
		t.Fatalf("baseline save: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	regressRun(t, dir, state, "results-seeds", "--seed-set=1${repetition}")
	csvFile := filepath.Join(t.TempDir(), "seeds.csv")
	r := runSimswarm(t, dir, state, "compare", "good", "results-seeds", "--csv", csvFile)
	if r.code != 0 || !strings.Contains(r.stdout, "17 series, 17 same, 0 changed; 17 tested") {
		t.Errorf("other seeds: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Other seeds give other values: the test had something to judge.
	differ := 0
	rows := readCSV(t, csvFile)
	for _, row := range rows[1:] {
		if row[0] != "same" || row[1] != "welch" {
			t.Errorf("other seeds: %v", row)
		}
		if p, _ := strconv.ParseFloat(row[14], 64); p < 1 {
			differ++
		}
	}
	if differ < 10 {
		t.Errorf("only %d of %d scalars differ between seeds:\n%s", differ, len(rows)-1, r.stdout)
	}

	checkout(t, dir, commits[commentCommit])
	regressRun(t, dir, state, "results-comment")
	r = runSimswarm(t, dir, state, "compare", "good", "results-comment")
	if r.code != 0 || strings.Count(r.stdout, " 0       1 (1)") != 17 {
		t.Errorf("a comment changed the results: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	checkout(t, dir, commits[timingCommit])
	regressRun(t, dir, state, "results-timing")
	r = runSimswarm(t, dir, state, "compare", "good", "results-timing", "--csv", csvFile)
	v := verdicts(r.stdout)
	if r.code != 1 || v["Aloha.server channelUtilization:last"] != "changed" || v["Aloha.server duration"] != "same" {
		t.Errorf("the interarrival time: exit %d, %v\n%s%s", r.code, v, r.stdout, r.stderr)
	}
	found := false
	for _, row := range readCSV(t, csvFile) {
		if row[4] == "channelUtilization:last" {
			found = row[0] == "changed" && row[12] != "" && row[14] != ""
		}
	}
	if !found {
		t.Errorf("the CSV does not give channelUtilization as changed:\n%s", readFile(t, csvFile))
	}
	// --filter selects what is compared, on both sides.
	r = runSimswarm(t, dir, state, "compare", "good", "results-timing", "--filter", "name =~ duration")
	if r.code != 0 || !strings.Contains(r.stdout, "1 series, 1 same, 0 changed") {
		t.Errorf("--filter duration: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// A repository commits the baseline; another engine imports it.
	file := filepath.Join(t.TempDir(), "good.json")
	if r := runSimswarm(t, dir, state, "baseline", "export", "good", file); r.code != 0 {
		t.Fatalf("export: exit %d %s", r.code, r.stderr)
	}
	if r := runSimswarm(t, dir, state, "compare", file, "results-seeds"); r.code != 0 {
		t.Errorf("compare with the exported file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	other := t.TempDir()
	regressRun(t, dir, other, "results-x") // an engine of its own
	if r := runSimswarm(t, dir, other, "baseline", "import", file); r.code != 0 || !strings.Contains(r.stdout, "baseline good: 17 series imported") {
		t.Errorf("import: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	if r := runSimswarm(t, dir, other, "compare", "good", "results-timing"); r.code != 1 {
		t.Errorf("compare with the imported baseline: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// gc removes what no campaign reaches; a baseline is kept, however old.
	time.Sleep(2 * time.Second)
	if r := runSimswarm(t, dir, state, "gc", "--older-than", "1s"); r.code != 0 || !strings.Contains(r.stdout, "removed") {
		t.Fatalf("gc: exit %d %s", r.code, r.stderr)
	}
	if r := runSimswarm(t, dir, state, "baseline", "list"); !strings.Contains(r.stdout, "good ") {
		t.Errorf("gc removed the baseline:\n%s%s", r.stdout, r.stderr)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"compare", "nosuch", "results"}, `no such baseline "nosuch"`},
		{[]string{"compare", "good", "nowhere"}, "results directory nowhere"},
		{[]string{"compare", "good", "--filter", "name =~ ("}, "invalid --filter"},
		{[]string{"compare", "good", "--alpha", "1.5"}, "invalid --alpha"},
		{[]string{"compare", "good", "--tolerance", "-1%"}, "invalid --tolerance"},
		{[]string{"compare"}, "compare needs the BASELINE"},
		{[]string{"baseline", "save", "a/b"}, "invalid baseline name"},
		{[]string{"baseline", "export", "nosuch", file}, `no such baseline "nosuch"`},
		{[]string{"baseline", "import", filepath.Join(dir, "omnetpp.ini")}, "not a simswarm baseline"},
	} {
		r := runSimswarm(t, dir, state, c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("%v: exit %d, stderr %q, want one line with %q", c.args, r.code, r.stderr, c.want)
		}
	}
}

func readCSV(t *testing.T, file string) [][]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("%s: %v, %d rows", file, err, len(rows))
	}
	return rows
}

// TestRegressSuite: a statistical suite of two campaigns, one baseline
// stored by name and one in a file beside the suite: --update makes the
// baselines, an unchanged tree passes running nothing, the timing commit
// fails naming channelUtilization, --update accepts it; an unknown
// baseline and a bad line are one line and exit 2 before anything runs.
func TestRegressSuite(t *testing.T) {
	dir, commits := alohaRepo(t, false)
	state := t.TempDir()
	checkout(t, dir, commits[0])
	tests := filepath.Join(dir, "tests")
	os.Mkdir(tests, 0o755)
	suite := filepath.Join(tests, "statistical.txt")
	os.WriteFile(suite, []byte(`# baseline, working directory, command
regress      ..  ./aloha -u Cmdenv -c Regress
baselines/single.json  ..  ./aloha -u Cmdenv -c Regress -r 0
`), 0o644)
	args := []string{"regress", "-j", "2", "--ccache-dir", sharedCcache(), "statistical.txt"}
	r := runSimswarm(t, tests, state, append(args, "--update")...)
	if r.code != 0 || strings.Count(r.stdout, "no baseline yet (baseline updated)") != 2 {
		t.Fatalf("--update without baselines: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(tests, "baselines", "single.json")); err != nil {
		t.Fatalf("the baseline file was not written: %v", err)
	}
	r = runSimswarm(t, tests, state, args...)
	if r.code != 0 || !strings.Contains(r.stdout, "suite: 2 tests, 2 PASS, 0 FAIL, 0 ERROR") ||
		!strings.Contains(r.stderr, "10 already done") || !strings.Contains(r.stderr, "1 already done") {
		t.Errorf("unchanged: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	checkout(t, dir, commits[timingCommit])
	r = runSimswarm(t, tests, state, args...)
	if r.code != 1 || strings.Count(r.stdout, "FAIL     ") != 2 || !strings.Contains(r.stdout, "changed Aloha.server.channelUtilization:last") {
		t.Errorf("the timing commit: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runSimswarm(t, tests, state, append(args, "--update")...); r.code != 1 || strings.Count(r.stdout, "(baseline updated)") != 2 {
		t.Errorf("--update of changed results: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runSimswarm(t, tests, state, args...); r.code != 0 {
		t.Errorf("after --update: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	for _, c := range []struct{ suite, want string }{
		{"nosuch .. ./aloha -u Cmdenv -c Regress\n", `statistical.txt:1: no such baseline "nosuch"`},
		{"missing.json .. ./aloha -u Cmdenv -c Regress\n", "baseline file: open"},
		{"regress ..\n", "statistical.txt:1: a line is a baseline, a working directory and a command"},
		{"bad:name .. ./aloha\n", "statistical.txt:1: invalid baseline name"},
		{"# nothing\n", "the list holds no command"},
	} {
		os.WriteFile(suite, []byte(c.suite), 0o644)
		r := runSimswarm(t, tests, state, args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("%q: exit %d, stderr %q, want one line with %q", c.suite, r.code, r.stderr, c.want)
		}
	}
}
