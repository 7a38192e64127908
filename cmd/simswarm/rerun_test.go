package main

// --dry-run explains every rerun (issue 23, item 6).

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// dryRunStates runs --dry-run and returns each run's state and the count
// it says would run; a run said to run without a reason fails the test.
func dryRunStates(t *testing.T, dir, state string, args ...string) (map[int]string, int) {
	t.Helper()
	r := runSimswarm(t, dir, state, append([]string{"run", "--dry-run"}, args...)...)
	if r.code != 0 {
		t.Fatalf("--dry-run: exit %d\n%s", r.code, r.stderr)
	}
	states := map[int]string{}
	would := -1
	for _, l := range strings.Split(r.stdout, "\n") {
		if m := regexp.MustCompile(`^(\d+) would run, \d+ already done$`).FindStringSubmatch(l); m != nil {
			would, _ = strconv.Atoi(m[1])
		}
		f := strings.Split(l, "\t")
		if len(f) < 2 || !strings.HasPrefix(f[0], "run ") {
			continue
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(f[0], "run "))
		states[n] = f[1]
		if f[1] != "done" && !regexp.MustCompile(`^would run( again: \S| \(\S)`).MatchString(f[1]) {
			t.Errorf("run %d: %q gives no reason", n, f[1])
		}
	}
	return states, would
}

// TestDryRunExplainsEveryRerun: a template campaign and --until of the
// same command alternate in one results directory, each round writing
// over files of the other; --dry-run of the plain command then names, for
// every run that would run again, the campaign that replaced its files,
// and says as many would run as the real command then executes.
func TestDryRunExplainsEveryRerun(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "simswarm.toml"), []byte(`[build]
command = ""
[run]
command = "awk -v r={repetition} -v x={x} 'BEGIN { srand(r + 1); print \"v\"; print x + 2 * (rand() - 0.5) }' > {resultdir}/out-{run}.csv"
repeat = 3
[run.vars]
x = [10, 40]
[results]
files = ["out-*.csv"]
`), 0o644)
	state := t.TempDir()
	for _, args := range [][]string{{"run", "-q"}, {"run", "-q", "--until", "v ci95 < 5%", "--max-repetitions", "10"}} {
		if r := runSimswarm(t, dir, state, args...); r.code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, r.code, r.stderr)
		}
	}
	states, would := dryRunStates(t, dir, state)
	replaced := 0
	for n, s := range states {
		if strings.HasPrefix(s, "would run again: its files were replaced by campaign ") {
			replaced++
		} else if s != "done" {
			t.Errorf("run %d: %q, want done or replaced by the --until rounds", n, s)
		}
	}
	if replaced == 0 {
		t.Fatalf("--until wrote over the plain campaign's files, and --dry-run names no run whose files were replaced: %v", states)
	}
	r := runSimswarm(t, dir, state, "run", "-q", "--json")
	if s := jsonSummary(t, r); r.code != 0 || s.Executed != would {
		t.Fatalf("--dry-run said %d would run; the campaign executed %d (exit %d)\n%s", would, s.Executed, r.code, r.stderr)
	}
	if _, again := dryRunStates(t, dir, state); again != 0 {
		t.Fatalf("after the campaign, --dry-run says %d would run", again)
	}
}

// TestDryRunReasonsOfOMNeTPPRuns: the same with an OMNeT++-style program
// known by its run numbers' idents: after --until, no run of the plain
// command is said to run without its reason.
func TestDryRunReasonsOfOMNeTPPRuns(t *testing.T) {
	dir := example(t, "aloha")
	state := t.TempDir()
	aloha := []string{"--", "./aloha", "-c", "PureAlohaExperiment", "-r", "$numHosts==10"}
	if r := runSimswarm(t, dir, state, append([]string{"run", "-q"}, aloha...)...); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if r := runSimswarm(t, dir, state, append([]string{"run", "-q", "--until", "Aloha.server.channelUtilization:last ci95 < 2%", "--max-repetitions", "4"}, aloha...)...); r.code != 0 {
		t.Fatalf("--until: exit %d\n%s", r.code, r.stderr)
	}
	_, would := dryRunStates(t, dir, state, aloha...)
	r := runSimswarm(t, dir, state, append([]string{"run", "-q", "--json"}, aloha...)...)
	if s := jsonSummary(t, r); r.code != 0 || s.Executed != would {
		t.Fatalf("--dry-run said %d would run; the campaign executed %d (exit %d)\n%s", would, s.Executed, r.code, r.stderr)
	}
}

// TestUntilDryRunNamesWhatItMayReplace: --until's dry run shows its first
// round only; it says that the later rounds may replace the files another
// campaign left in the results directory, naming that campaign, before
// they do.
func TestUntilDryRunNamesWhatItMayReplace(t *testing.T) {
	dir := untilTemplate(t)
	state := t.TempDir()
	r := runSimswarm(t, dir, state, "run", "-q", "--json")
	plain := jsonSummary(t, r)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	r = runSimswarm(t, dir, state, "run", "--dry-run", "--until", "v ci95 < 5%", "--max-repetitions", "10")
	if r.code != 0 || !strings.Contains(r.stdout, "may replace files there of campaign "+plain.Campaign+" (") {
		t.Fatalf("--until --dry-run: exit %d, does not name campaign %s:\n%s%s", r.code, plain.Campaign, r.stdout, r.stderr)
	}
}
