package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/testkit"
)

var builtKey = regexp.MustCompile(`simswarm: built in .*\(build ([0-9a-f]+)\)`)

// TestBisect: on a repository of 16 commits of real aloha, a bisect with
// 4 slots that compares a campaign with a baseline finds the commit that
// changed the interarrival time, not the one that changed a comment, in
// at most 2 rounds, building each commit at most once; a second bisect
// builds and runs nothing; a fingerprint-suite bisect and a command's exit
// status find the same commit, the suite's bisect building nothing either
// (the commits are the same content); --dry-run gives the rounds and the
// expected time.
func TestBisect(t *testing.T) {
	dir, commits := alohaRepo(t, true)
	state := t.TempDir()
	checkout(t, dir, commits[0])
	regressRun(t, dir, state, "results")
	if r := runSimswarm(t, dir, state, "baseline", "save", "good"); r.code != 0 {
		t.Fatalf("baseline save: exit %d %s", r.code, r.stderr)
	}
	checkout(t, dir, "main")
	bisect := []string{"bisect", "-j", "4", "--ccache-dir", sharedCcache(), commits[0], "main"}
	compare := append(append([]string{}, bisect...), "--compare", "good", "--", "./aloha", "-u", "Cmdenv", "-c", "Regress")
	first := "first bad commit: " + commits[timingCommit] + " Regress: hosts send less often"

	r := runSimswarm(t, dir, state, compare...)
	if r.code != 0 || !strings.Contains(r.stdout, first) || !regexp.MustCompile(`bisect: [12] rounds, `).MatchString(r.stdout) {
		t.Fatalf("bisect: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "changed  -         Aloha.server  channelUtilization:last") {
		t.Errorf("the first bad commit's verdicts do not name channelUtilization:\n%s", r.stdout)
	}
	keys := map[string]int{}
	for _, m := range builtKey.FindAllStringSubmatch(r.stderr, -1) {
		keys[m[1]]++
	}
	tested := regexp.MustCompile(`(?m)^  [0-9a-f]{10} (good|bad)`).FindAllString(r.stdout, -1)
	if len(keys) == 0 || len(keys) > len(tested) {
		t.Errorf("%d builds for %d commits tested:\n%s", len(keys), len(tested), r.stderr)
	}
	for k, n := range keys {
		if n > 1 {
			t.Errorf("build %s made %d times", k, n)
		}
	}
	if !strings.Contains(r.stdout, ", "+itoa(len(keys))+" builds, ") {
		t.Errorf("the report does not say %d builds:\n%s", len(keys), r.stdout)
	}
	if strings.Contains(r.stdout, commits[commentCommit][:10]+" bad") {
		t.Errorf("the comment commit is bad:\n%s", r.stdout)
	}
	if out, _ := exec.Command("git", "-C", dir, "worktree", "list").Output(); strings.Count(string(out), "\n") != 1 {
		t.Errorf("worktrees left behind:\n%s", out)
	}
	if out, _ := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output(); len(out) != 0 {
		t.Errorf("the user's checkout changed:\n%s", out)
	}

	again := runSimswarm(t, dir, state, compare...)
	if again.code != 0 || !strings.Contains(again.stdout, first) || !strings.Contains(again.stdout, ", 0 builds, ") ||
		strings.Contains(again.stderr, "simswarm: built in") || strings.Contains(again.stderr, " 0 already done") {
		t.Errorf("a second bisect built or ran something: exit %d\n%s%s", again.code, again.stdout, again.stderr)
	}

	dry := runSimswarm(t, dir, state, append([]string{"bisect", "--dry-run", "--slots", "4"}, compare[len(bisect)-2:]...)...)
	if dry.code != 0 || !strings.Contains(dry.stdout, "with 4 slots at most 2 rounds (log base 5 of 15), 4 sequentially") ||
		!strings.Contains(dry.stdout, "expected time: about") {
		t.Errorf("--dry-run: exit %d\n%s%s", dry.code, dry.stdout, dry.stderr)
	}

	fp := runSimswarm(t, dir, state, append(bisect, "--fingerprints", "fingerprints.csv")...)
	if fp.code != 0 || !strings.Contains(fp.stdout, first) || !strings.Contains(fp.stdout, "FAIL . -f omnetpp.ini -c Regress -r 0: calculated") ||
		!strings.Contains(fp.stdout, ", 0 builds, ") {
		t.Errorf("fingerprint-suite bisect: exit %d\n%s%s", fp.code, fp.stdout, fp.stderr)
	}

	cmd := runSimswarm(t, dir, state, append(bisect, "--", "grep", "-qF", "**.host[*].iaTime = exponential(2s)", "omnetpp.ini")...)
	if cmd.code != 0 || !strings.Contains(cmd.stdout, first) {
		t.Errorf("exit-status bisect: exit %d\n%s%s", cmd.code, cmd.stdout, cmd.stderr)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestBisectBadInputs: an unknown baseline, a BAD that does not build,
// GOOD not an ancestor of BAD, uncommitted changes, an unknown revision
// and no test are each one line and exit 2; a commit that does not build
// inside the range is skipped.
func TestBisectBadInputs(t *testing.T) {
	dir, commits := alohaRepo(t, true)
	state := t.TempDir()
	git := func(args ...string) { t.Helper(); testkit.Git(t, dir, args...) }
	// A branch whose last commit does not compile.
	git("checkout", "-q", "-b", "broken")
	replaceIn(t, filepath.Join(dir, "Host.cc"), "void Host::initialize()", "void Host::initialize() { this is not C++ }\nvoid Host::initialise()")
	git("commit", "-q", "-a", "-m", "Host.cc does not compile")
	git("checkout", "-q", "main")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{commits[0], "main", "--compare", "nosuch", "--", "./aloha", "-c", "Regress"}, `no such baseline "nosuch"`},
		{[]string{commits[0], "broken", "--fingerprints", "fingerprints.csv"}, "cannot be tested: does not build: build failed"},
		{[]string{commits[5], commits[2], "--", "true"}, "is not an ancestor of BAD"},
		{[]string{"nosuchrev", "main", "--", "true"}, `GOOD: "nosuchrev" names no commit`},
		{[]string{commits[0], "main"}, "no test: give --compare"},
		{[]string{commits[0]}, "bisect needs GOOD and BAD"},
		{[]string{commits[0], "main", "--compare", "x.json", "--", "./aloha"}, "baseline file: open x.json"},
	} {
		r := runSimswarm(t, dir, state, append([]string{"bisect", "-q", "-j", "4", "--ccache-dir", sharedCcache()}, c.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("%v: exit %d, stderr %q, want one line with %q", c.args, r.code, r.stderr, c.want)
		}
	}
	// A commit that does not build between GOOD and the first bad one is
	// skipped; the others of its round are still judged. The commit that
	// fixes it holds GOOD's files again: tested once for both (one
	// campaign of many cannot hold the same campaign twice).
	git("checkout", "-q", "-b", "side", commits[0])
	host := filepath.Join(dir, "Host.cc")
	clean := readFile(t, host)
	os.WriteFile(host, []byte(clean+"\nthis is not C++\n"), 0o644)
	git("commit", "-q", "-a", "-m", "side: Host.cc does not compile")
	os.WriteFile(host, []byte(clean), 0o644)
	git("commit", "-q", "-a", "-m", "side: Host.cc compiles again")
	replaceIn(t, filepath.Join(dir, "omnetpp.ini"), "**.host[*].iaTime = exponential(2s)", "**.host[*].iaTime = exponential(2.5s)")
	git("commit", "-q", "-a", "-m", "side: hosts send less often")
	git("checkout", "-q", "main")
	r := runSimswarm(t, dir, state, "bisect", "-q", "-j", "4", "--ccache-dir", sharedCcache(), commits[0], "side", "--fingerprints", "fingerprints.csv")
	if r.code != 0 || !regexp.MustCompile(`skip  side: Host.cc does not compile  does not build: build failed`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, "first bad commit: ") || !strings.Contains(r.stdout, " side: hosts send less often\n") ||
		!strings.Contains(r.stdout, "good  side: Host.cc compiles again  1 of 1 tests PASS (the same files as "+commits[0][:10]+")") {
		t.Errorf("a commit that does not build in the range: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	replaceIn(t, filepath.Join(dir, "NOTES.txt"), "notes", "changed notes")
	r = runSimswarm(t, dir, state, "bisect", commits[0], "main", "--", "true")
	if r.code != 2 || !strings.Contains(r.stderr, "has uncommitted changes (NOTES.txt)") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
		t.Errorf("dirty work tree: exit %d %q", r.code, r.stderr)
	}
}

// TestBisectCluster: on a cluster of two runners with two slots each, a
// bisect's rounds are as wide as the runners' free slots (4) without
// --slots, and it finds the commit that changed the bundled example's
// interarrival time, comparing single deterministic runs exactly.
func TestBisectCluster(t *testing.T) {
	c := newCluster(t, 2)
	dir := example(t, "aloha")
	os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("results/\naloha\n*.o\n"), 0o644)
	testkit.Git(t, dir, "init", "-q", "-b", "main")
	testkit.Git(t, dir, "add", "-A")
	testkit.Git(t, dir, "commit", "-q", "-m", "example")
	commits := []string{testkit.Git(t, dir, "rev-parse", "HEAD")}
	for i := 1; i <= 8; i++ {
		msg := "notes " + strconv.Itoa(i)
		if i == 5 {
			replaceIn(t, filepath.Join(dir, "omnetpp.ini"), "Aloha.host[*].iaTime = exponential(1s)", "Aloha.host[*].iaTime = exponential(1.5s)")
			msg = "PureAloha: hosts send less often"
		} else {
			f, _ := os.OpenFile(filepath.Join(dir, "README.md"), os.O_APPEND|os.O_WRONLY, 0o644)
			f.WriteString(msg + "\n")
			f.Close()
		}
		testkit.Git(t, dir, "commit", "-q", "-a", "-m", msg)
		commits = append(commits, testkit.Git(t, dir, "rev-parse", "HEAD"))
	}
	sim := []string{"--", "./aloha", "-c", "PureAloha", "-r", "0"}
	saveBaselineAt(t, c, dir, commits[0], sim)
	// The slots are the runners' free ones as their heartbeats say: wait
	// until both say the baseline's run has ended.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		st := c.client(t, dir, "status")
		if strings.Count(st.stdout, "idle, 2 slots") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the runners are not idle:\n%s", st.stdout)
		}
	}
	r := c.client(t, dir, append([]string{"bisect", "-q", commits[0], "main", "--compare", "example"}, sim...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "8 commits after "+commits[0][:10]+", 4 slots, at most 2 rounds") ||
		!strings.Contains(r.stdout, "first bad commit: "+commits[5]+" PureAloha: hosts send less often") || !strings.Contains(r.stdout, "exact") {
		t.Errorf("bisect on the cluster: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestBenchBisect is bench/bisect.sh, run only when SIMSWARM_BENCH_BISECT
// is set: a bisect of BENCH_COMMITS (default 64) commits of the bundled
// example (every ninth recompiles src/model.c, the one at two thirds
// changes PureAloha's interarrival time) on the cluster test lab, three
// runners of two slots in network namespaces, with --slots 6 against
// --slots 1 (sequential), each on a fresh cluster. It logs the rounds,
// commits tested, builds and wall time of each. With BENCH_SLEEP the runs
// wait instead of computing.
func TestBenchBisect(t *testing.T) {
	if os.Getenv("SIMSWARM_BENCH_BISECT") == "" {
		t.Skip("a benchmark: bench/bisect.sh runs it")
	}
	n := 64
	if v, err := strconv.Atoi(os.Getenv("BENCH_COMMITS")); err == nil && v > 1 {
		n = v
	}
	bad := 2 * n / 3
	dir := example(t, "aloha")
	os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("results/\naloha\n*.o\n"), 0o644)
	// BENCH_SLEEP: runs that wait 2 s instead of computing, as long runs on
	// a cluster of many cores do, and the bad commit makes them wait 2.5 s.
	sim := []string{"--", "./aloha", "-c", "PureAloha", "-r", "0"}
	change := [2]string{"Aloha.host[*].iaTime = exponential(1s)", "Aloha.host[*].iaTime = exponential(1.5s)"}
	if os.Getenv("BENCH_SLEEP") != "" {
		replaceIn(t, filepath.Join(dir, "omnetpp.ini"), "**.sleepTime = 500ms", "**.sleepTime = 2s")
		sim = []string{"--", "./aloha", "-c", "Sleepy", "-r", "0"}
		change = [2]string{"**.sleepTime = 2s", "**.sleepTime = 2.5s"}
	}
	testkit.Git(t, dir, "init", "-q", "-b", "main")
	testkit.Git(t, dir, "add", "-A")
	testkit.Git(t, dir, "commit", "-q", "-m", "example")
	commits := []string{testkit.Git(t, dir, "rev-parse", "HEAD")}
	for i := 1; i <= n; i++ {
		file, line := "README.md", "notes "+strconv.Itoa(i)+"\n"
		switch {
		case i == bad:
			replaceIn(t, filepath.Join(dir, "omnetpp.ini"), change[0], change[1])
			file = ""
		case i%9 == 0:
			file, line = filepath.Join("src", "model.c"), "/* touched "+strconv.Itoa(i)+" */\n"
		}
		if file != "" {
			f, _ := os.OpenFile(filepath.Join(dir, file), os.O_APPEND|os.O_WRONLY, 0o644)
			f.WriteString(line)
			f.Close()
		}
		testkit.Git(t, dir, "commit", "-q", "-a", "-m", "commit "+strconv.Itoa(i))
		commits = append(commits, testkit.Git(t, dir, "rev-parse", "HEAD"))
	}
	for _, slots := range []string{"6", "1"} {
		// A subtest each: its cluster ends before the next one starts.
		t.Run("slots="+slots, func(t *testing.T) { benchBisect(t, dir, commits, commits[bad], slots, sim) })
	}
}

// saveBaselineAt saves the baseline "example" from sim's runs at commit,
// then checks main out again.
func saveBaselineAt(t *testing.T, c *cluster, dir, commit string, sim []string) {
	t.Helper()
	testkit.Git(t, dir, "checkout", "-q", commit)
	if r := c.client(t, dir, append([]string{"run", "-q"}, sim...)...); r.code != 0 {
		t.Fatalf("run: exit %d %s", r.code, r.stderr)
	}
	if r := c.client(t, dir, "baseline", "save", "example"); r.code != 0 {
		t.Fatalf("baseline save: exit %d %s", r.code, r.stderr)
	}
	testkit.Git(t, dir, "checkout", "-q", "main")
}

func benchBisect(t *testing.T, dir string, commits []string, bad, slots string, sim []string) {
	summary := regexp.MustCompile(`bisect: (\d+) rounds, (\d+) commits tested, (\d+) builds`)
	{
		c := newCluster(t, 3)
		saveBaselineAt(t, c, dir, commits[0], sim)
		start := time.Now()
		r := c.client(t, dir, append([]string{"bisect", "-q", "--slots", slots, commits[0], "main", "--compare", "example"}, sim...)...)
		wall := time.Since(start)
		m := summary.FindStringSubmatch(r.stdout)
		if r.code != 0 || m == nil || !strings.Contains(r.stdout, "first bad commit: "+bad) {
			t.Fatalf("--slots %s: exit %d\n%s%s", slots, r.code, r.stdout, r.stderr)
		}
		t.Logf("%d commits, --slots %s on 3 runners x 2 slots: %s rounds, %s commits tested, %s builds, %.1f s", len(commits)-1, slots, m[1], m[2], m[3], wall.Seconds())
	}
}
