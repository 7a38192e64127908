package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runNumberOf reads the run number a result file says it belongs to.
func runNumberOf(t testing.TB, path string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^attr runnumber (\d+)$`).FindStringSubmatch(readFile(t, path))
	if m == nil {
		t.Fatalf("%s has no runnumber attribute", path)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestSweep is the main user story: a 42-run campaign completes with every
// result file present and equal to what the program writes when run by
// hand; running it again executes nothing; --dry-run then reports all done;
// changing one source file rebuilds one object and reruns.
func TestSweep(t *testing.T) {
	dir := example(t, "aloha")
	state := t.TempDir()
	r := runSimswarm(t, dir, state, "run", "-j", "2", "--json", "--", "./aloha", "-c", "PureAlohaExperiment")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	s := jsonSummary(t, r)
	if s.Runs != 42 || s.Succeeded != 42 || s.Executed != 42 || s.Failed != 0 || s.Cached != 0 {
		t.Fatalf("first campaign: %+v", s)
	}
	res := filepath.Join(dir, "results")
	scas := files(t, res, "PureAlohaExperiment-*.sca")
	if len(scas) != 42 {
		t.Fatalf("%d .sca files in results/, want 42", len(scas))
	}
	byRun := map[int]string{}
	for _, f := range scas {
		byRun[runNumberOf(t, f)] = f
	}
	if len(byRun) != 42 {
		t.Fatalf("result files cover %d distinct runs, want 42", len(byRun))
	}
	if outs := files(t, res, "PureAlohaExperiment-*.out"); len(outs) != 42 {
		t.Fatalf("%d .out files, want one per run", len(outs))
	}
	// The results are the program's own: compare a few runs with a direct run.
	for _, n := range []int{0, 17, 41} {
		want := direct(t, dir, "-s", "-c", "PureAlohaExperiment", "-r", strconv.Itoa(n))
		got := files(t, want, "*.sca")
		if len(got) != 1 {
			t.Fatalf("direct run %d wrote %d .sca files", n, len(got))
		}
		if filepath.Base(got[0]) != filepath.Base(byRun[n]) {
			t.Errorf("run %d: simswarm named it %s, the program %s", n, filepath.Base(byRun[n]), filepath.Base(got[0]))
		}
		if scalars(t, got[0]) != scalars(t, byRun[n]) {
			t.Errorf("run %d: results differ from a direct run", n)
		}
	}
	if !strings.Contains(readFile(t, strings.TrimSuffix(byRun[5], ".sca")+".out"), "run 5:") {
		t.Errorf("run 5's .out does not hold run 5's console output")
	}
	os.Remove(filepath.Join(dir, "aloha")) // built by direct(); not part of what simswarm sees in git-less trees

	// Again: nothing executes.
	r = runSimswarm(t, dir, state, "run", "--json", "--", "./aloha", "-c", "PureAlohaExperiment")
	s = jsonSummary(t, r)
	if r.code != 0 || s.Executed != 0 || s.Cached != 42 {
		t.Fatalf("second campaign should execute nothing: exit %d %+v\n%s", r.code, s, r.stderr)
	}
	r = runSimswarm(t, dir, state, "run", "--dry-run", "--", "./aloha", "-c", "PureAlohaExperiment")
	if r.code != 0 || !strings.Contains(r.stdout, "0 would run, 42 already done") || !strings.Contains(r.stdout, "$numHosts=20, $iaMean=9, $repetition=1") {
		t.Fatalf("dry run after the campaign: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// One source file changes: one object is recompiled, and runs rerun.
	ws := files(t, filepath.Join(state, "workspaces"), "aloha-*[^k]")
	if len(ws) != 1 {
		t.Fatalf("want one build workspace, got %v", ws)
	}
	before := objectTimes(t, ws[0])
	if len(before) < 5 {
		t.Fatalf("workspace has %d object files; the example should have several", len(before))
	}
	src := filepath.Join(dir, "src", "fes.c")
	if err := os.WriteFile(src, append([]byte(readFile(t, src)), []byte("\n/* touched by a test */\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runSimswarm(t, dir, state, "run", "--json", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "0..3")
	s = jsonSummary(t, r)
	if r.code != 0 || s.Runs != 4 || s.Executed != 4 {
		t.Fatalf("after a source change, the 4 filtered runs should execute: exit %d %+v\n%s", r.code, s, r.stderr)
	}
	after := objectTimes(t, ws[0])
	var changed []string
	for name, mt := range after {
		if !mt.Equal(before[name]) {
			changed = append(changed, name)
		}
	}
	if len(changed) != 1 || !strings.HasSuffix(changed[0], "fes.o") {
		t.Fatalf("incremental build should recompile fes.o only, recompiled %v", changed)
	}
}

func objectTimes(t testing.TB, dir string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".o") {
			out[p] = fi.ModTime()
		}
		return nil
	})
	return out
}

// TestFailures: runs that fail in different ways are each reported with
// what happened, exit status 1, while the other runs complete.
func TestFailures(t *testing.T) {
	dir := example(t, "aloha")
	state := t.TempDir()
	r := runSimswarm(t, dir, state, "run", "-j", "2", "--timeout", "3s", "--json", "--", "./aloha", "-c", "Failing")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	s := jsonSummary(t, r)
	if s.Runs != 8 || s.Succeeded != 4 || s.Failed != 4 {
		t.Fatalf("summary %+v", s)
	}
	byRun := map[int]int{}
	for i, f := range s.Failures {
		byRun[f.Run] = i
	}
	check := func(run int, what string, ok func(i int) bool) {
		i, found := byRun[run]
		if !found {
			t.Errorf("run %d (%s) not among the failures", run, what)
			return
		}
		if !ok(i) {
			t.Errorf("run %d (%s) reported as %+v", run, what, s.Failures[i])
		}
	}
	check(1, "error", func(i int) bool {
		f := s.Failures[i]
		return f.Exit == 1 && len(f.Errors) > 0 && strings.HasPrefix(f.Errors[0], "<!> Error: Simulated model failure")
	})
	check(3, "crash", func(i int) bool { return s.Failures[i].Signal == "SIGABRT" })
	check(5, "hang", func(i int) bool { return s.Failures[i].TimedOut })
	check(6, "segfault", func(i int) bool { return s.Failures[i].Signal == "SIGSEGV" })
	if n := len(files(t, filepath.Join(dir, "results"), "Failing-*.sca")); n != 4 {
		t.Errorf("%d result files, want the 4 of the runs that succeeded", n)
	}
	// The human summary names every failed run with its error line.
	r = runSimswarm(t, dir, state, "run", "--timeout", "3s", "--", "./aloha", "-c", "Failing")
	if r.code != 1 || !strings.Contains(r.stdout, "FAILED run 1") || !strings.Contains(r.stdout, "<!> Error: Simulated model failure") ||
		!strings.Contains(r.stdout, "killed by SIGSEGV") || !strings.Contains(r.stdout, "timed out") {
		t.Fatalf("summary of the rerun (exit %d):\n%s", r.code, r.stdout)
	}
}

// TestBatchSplit: with several runs per process, a failing run must not
// take the other runs of its process down: OMNeT++ stops a batch at the
// first error, so the rest run again alone and only their own verdict counts.
func TestBatchSplit(t *testing.T) {
	dir := example(t, "aloha")
	state := t.TempDir()
	r := runSimswarm(t, dir, state, "run", "-j", "1", "-b", "8", "--timeout", "3s", "--json", "--", "./aloha", "-c", "Failing")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	s := jsonSummary(t, r)
	var failed []int
	for _, f := range s.Failures {
		failed = append(failed, f.Run)
	}
	sort.Ints(failed)
	if s.Succeeded != 4 || fmtInts(failed) != "1,3,5,6" {
		t.Fatalf("with batching: succeeded %d, failed runs %v; want 4 and [1 3 5 6]\n%+v", s.Succeeded, failed, s)
	}
	// Runs that shared a process still get their own console output.
	for _, n := range []int{0, 2, 4, 7} {
		out := files(t, filepath.Join(dir, "results"), "Failing-*#"+strconv.Itoa(n)+".out")
		if len(out) == 0 {
			out = files(t, filepath.Join(dir, "results"), "Failing-*"+strconv.Itoa(n)+"*.out")
		}
		found := false
		for _, o := range out {
			text := readFile(t, o)
			if strings.Contains(text, "Failing run "+strconv.Itoa(n)+":") {
				found = true
				if c := strings.Count(text, "Failing run "); c != 1 {
					t.Errorf("%s holds %d runs' output, want 1", o, c)
				}
			}
		}
		if !found {
			t.Errorf("no .out file with run %d's output", n)
		}
	}
}

func fmtInts(a []int) string {
	s := make([]string, len(a))
	for i, n := range a {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// TestKillAndResume: a client killed with SIGKILL mid-campaign loses
// nothing: the next invocation executes only the runs that are missing, and
// results from before the kill stay as they were.
func TestKillAndResume(t *testing.T) {
	dir := example(t, "aloha")
	state := t.TempDir()
	res := filepath.Join(dir, "results")
	cmd := exec.Command(binary, "run", "-j", "1", "-q", "--", "./aloha", "-c", "PureAlohaExperiment")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SIMSWARM_STATE="+state)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for len(files(t, res, "*.sca")) < 6 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no results appeared within 2 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	kept := map[string]string{}
	for _, f := range files(t, res, "*.sca") {
		kept[f] = readFile(t, f)
	}
	if len(kept) >= 42 {
		t.Fatalf("the campaign finished before the kill; nothing to resume")
	}
	r := runSimswarm(t, dir, state, "run", "-j", "2", "--json", "--", "./aloha", "-c", "PureAlohaExperiment")
	s := jsonSummary(t, r)
	if r.code != 0 || s.Succeeded != 42 {
		t.Fatalf("resumed campaign: exit %d %+v\n%s", r.code, s, r.stderr)
	}
	// With one slot, at most one run was between writing its files and
	// recording itself done when the kill came: that one may run again.
	if s.Cached < len(kept)-1 || s.Executed > 42-len(kept)+1 {
		t.Fatalf("resume executed %d runs with %d already done; %d results existed before", s.Executed, s.Cached, len(kept))
	}
	rewritten := 0
	for f, text := range kept {
		if readFile(t, f) != text {
			rewritten++
		}
	}
	if rewritten > 1 {
		t.Errorf("%d results from before the kill were rewritten: runs executed twice", rewritten)
	}
	if n := len(files(t, res, "*.sca")); n != 42 {
		t.Fatalf("%d result files after resume, want 42", n)
	}
}

// TestNs3Template: a program without OMNeT++'s command line, an ns-3
// scenario built against Debian's libns3-dev, described by simswarm.toml.
func TestNs3Template(t *testing.T) {
	if _, err := os.Stat("/usr/include/ns3/core-module.h"); err != nil {
		t.Skip("ns-3 headers not installed (apt-get install libns3-dev; .ci/run does)")
	}
	dir := example(t, "ns3-wifi")
	state := t.TempDir()
	r := runSimswarm(t, dir, state, "run", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "run 24\twould run (new)\t$dataRate=3Mbps, $repetition=4") {
		t.Fatalf("dry run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runSimswarm(t, dir, state, "run", "-j", "2", "--json")
	s := jsonSummary(t, r)
	if r.code != 0 || s.Runs != 25 || s.Succeeded != 25 {
		t.Fatalf("exit %d %+v\n%s", r.code, s, r.stderr)
	}
	thr := map[string]bool{}
	for n := 0; n < 25; n++ {
		f := filepath.Join(dir, "results", "Sweep-#"+strconv.Itoa(n)+".sca")
		text := readFile(t, f)
		m := regexp.MustCompile(`(?m)^scalar WifiNet throughput (\S+)`).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("%s has no network throughput scalar", f)
		}
		thr[m[1]] = true
	}
	if len(thr) < 10 {
		t.Fatalf("only %d distinct throughputs over 25 runs: the sweep variables did not reach the program", len(thr))
	}
	r = runSimswarm(t, dir, state, "run", "--json", "--", "--rtsCts=true")
	if s := jsonSummary(t, r); r.code != 0 || s.Executed != 25 {
		t.Fatalf("extra arguments through {args} make new runs: exit %d %+v\n%s", r.code, s, r.stderr)
	}
}
