package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/testkit"
)

// inetLike generates the INET-like project, "sources setenv" for it (as
// the test process's environment, which simswarm and the tools inherit)
// and builds it in place as its user does: `make makefiles`, then `make
// MODE=release`, without any compiler wrapper.
func inetLike(t *testing.T) *testkit.INETLike {
	t.Helper()
	o := realOMNeT(t)
	p := o.GenerateINETLike(t, filepath.Join(t.TempDir(), "inet"))
	t.Setenv("INET_ROOT", p.Root)
	t.Setenv("PATH", filepath.Join(p.Root, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, args := range [][]string{{"make", "makefiles"}, {"make", "MODE=release", "-j2"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Dir = p.Root
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return p
}

type buildSummary struct {
	Build struct {
		Cached   bool `json:"cached"`
		Compiled int  `json:"compiled"`
	} `json:"build"`
}

// TestINETLauncher: in an example directory of a project built and run as
// INET is, after its `source setenv`, `simswarm run -- inet -c X` runs
// every run with the tree's launcher, library and NED folders (the user's
// INET_ROOT pointed at the user's tree: "Network not found"), with results
// equal to opp_runall's; its first build after the user's own compiles
// nothing (the generated features.h and the compiler as the user had it);
// --dry-run builds nothing; --results elsewhere and back re-runs nothing.
func TestINETLauncher(t *testing.T) {
	p := inetLike(t)
	cmdline := []string{"inet", "-u", "Cmdenv", "-c", "Sweep"}

	// opp_runall in the user's tree is the reference; its results move
	// aside so that simswarm's land in an empty results/.
	want := filepath.Join(t.TempDir(), "want")
	oppRunall(t, p.Example, cmdline...)
	if err := os.Rename(filepath.Join(p.Example, "results"), want); err != nil {
		t.Fatal(err)
	}

	state := t.TempDir()
	args := append([]string{"run", "-j", "2", "--json", "--"}, cmdline...)
	r := runSimswarm(t, p.Example, state, args...)
	s := jsonSummary(t, r)
	if r.code != 0 || s.Runs != 12 || s.Succeeded != 12 {
		t.Fatalf("exit %d, %+v\n%s", r.code, s, r.stderr)
	}
	var b buildSummary
	if err := json.Unmarshal([]byte(r.stdout), &b); err != nil || b.Build.Cached || b.Build.Compiled != 0 {
		t.Errorf("first build after the user's own: cached=%v, %d files compiled (want 0, from the user's objects)\n%s", b.Build.Cached, b.Build.Compiled, r.stderr)
	}
	if strings.Contains(r.stderr, "sources to compile") {
		t.Errorf("a from-scratch estimate before a build that compiles nothing:\n%s", r.stderr)
	}
	sameResults(t, want, filepath.Join(p.Example, "results"))

	// --results elsewhere, then back: the runs done in results/ stay done.
	other := filepath.Join(t.TempDir(), "other")
	for _, step := range []struct {
		extra    []string
		executed int
	}{{nil, 0}, {[]string{"--results", other}, 12}, {nil, 0}, {[]string{"--results", other}, 0}} {
		a := append([]string{"run", "-j", "2", "--json"}, step.extra...)
		r := runSimswarm(t, p.Example, state, append(append(a, "--"), cmdline...)...)
		if s := jsonSummary(t, r); r.code != 0 || s.Executed != step.executed || s.Succeeded != 12 {
			t.Fatalf("run %v: exit %d, %d executed, want %d\n%s", step.extra, r.code, s.Executed, step.executed, r.stderr)
		}
	}

	// A source change: the dry run says what it can and builds nothing;
	// the real run then compiles that one file.
	node := filepath.Join(p.Root, "src", "inet", "node", "Node.cc")
	src := readFile(t, node)
	if err := os.WriteFile(node, []byte(src+"// changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runSimswarm(t, p.Example, state, append([]string{"run", "--dry-run", "--"}, cmdline...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "has no build on this engine yet") || !strings.Contains(r.stdout, "run without --dry-run to build it") {
		t.Errorf("dry run after a change: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "building") || strings.Contains(r.stdout, "would run (new)") {
		t.Errorf("the dry run built or listed runs of a build it does not have:\n%s\n%s", r.stdout, r.stderr)
	}
	r = runSimswarm(t, p.Example, state, args...)
	if err := json.Unmarshal([]byte(r.stdout), &b); err != nil || r.code != 0 || b.Build.Cached || b.Build.Compiled != 1 {
		t.Errorf("build after one changed source: exit %d, cached=%v, %d compiled, want 1 (the dry run must not have built it)\n%s", r.code, b.Build.Cached, b.Build.Compiled, r.stderr)
	}
	if strings.Contains(r.stderr, "sources to compile") {
		t.Errorf("a from-scratch estimate before an incremental build:\n%s", r.stderr)
	}
}

var calculatedRE = regexp.MustCompile(`calculated: ([^,\n]+(?:, [^,\n]+)*), expected`)

// fingerprintsByHand runs one test as INET's fingerprinttest would, in the
// user's tree, and returns what OMNeT++ calculated, in the order asked.
func fingerprintsByHand(t *testing.T, dir, config, run string, ingredients []string, extra ...string) []string {
	t.Helper()
	var fps []string
	for _, ing := range ingredients {
		fps = append(fps, "0000-0000/"+ing)
	}
	args := append([]string{"-u", "Cmdenv", "-f", "omnetpp.ini", "-c", config, "-r", run}, extra...)
	args = append(args, "--sim-time-limit=50s", "--fingerprint="+strings.Join(fps, ","), "--cpu-time-limit=60s",
		"--vector-recording=false", "--scalar-recording=true", "--result-dir="+t.TempDir(),
		"--fingerprintcalculator-class=inet::FingerprintCalculator")
	cmd := exec.Command("inet", args...)
	cmd.Dir = dir
	out, _ := cmd.CombinedOutput()
	m := calculatedRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("inet %s: no calculated fingerprints\n%s", strings.Join(args, " "), out)
	}
	return strings.Split(string(m[1]), ", ")
}

// TestINETFingerprints: a suite of INET's shape (~ ingredients that only
// INET's calculator knows, ~tND that INET's tool runs with CRC and FCS
// "computed", tyf with its fake GUI) inside the project gets the verdicts
// and fingerprints INET's own tool would give; the files it writes are
// named as INET's tool names them and do not change the project, so a
// second run reuses every verdict; -F leaves ingredients unchecked.
func TestINETFingerprints(t *testing.T) {
	p := inetLike(t)
	// simswarm's own exclusion, not the .gitignore, must keep the suite's
	// outputs out of the snapshot.
	gi := filepath.Join(p.Root, ".gitignore")
	if err := os.WriteFile(gi, []byte(strings.NewReplacer("*.UPDATED\n", "", "*.FAILED\n", "", "*.ERROR\n", "").Replace(readFile(t, gi))), 0o644); err != nil {
		t.Fatal(err)
	}
	inetArgs := []string{`--**.crcMode="computed"`, `--**.fcsMode="computed"`, "--cmdenv-fake-gui=true",
		"--cmdenv-fake-gui-before-event-probability=0.1", "--cmdenv-fake-gui-after-event-probability=0.1",
		"--cmdenv-fake-gui-on-hold-probability=0.1", "--cmdenv-fake-gui-on-hold-numsteps=3",
		"--cmdenv-fake-gui-on-simtime-probability=0.1", "--cmdenv-fake-gui-on-simtime-numsteps=3",
		`--**.fadeOutMode="animationTime"`, `--**.signalAnimationSpeedChangeTimeMode="animationTime"`}
	ings := []string{"tplx", "~tNl", "~tND", "tyf"}
	run0 := fingerprintsByHand(t, p.Example, "Fp", "0", ings, inetArgs...)
	run1 := fingerprintsByHand(t, p.Example, "Fp", "1", ings, inetArgs...)
	// Without CRC computed, ~tND differs: the tool's options matter.
	if plain := fingerprintsByHand(t, p.Example, "Fp", "0", []string{"~tND"}); plain[0] == run0[2] {
		t.Fatalf("~tND is the same with and without crcMode computed (%s): the test would prove nothing", plain[0])
	}
	wrong := "1234-5678/~tNl"
	suite := filepath.Join(p.Root, "tests", "fingerprint", "examples.csv")
	text := "# working directory, command line arguments, simulation time limit, fingerprint, expected result, tags\n" +
		fmt.Sprintf("/examples/pingpong/, -f omnetpp.ini -c Fp -r 0, 50s, %s, PASS, basic\n", strings.Join(run0, ";")) +
		fmt.Sprintf("/examples/pingpong/, -f omnetpp.ini -c Fp -r 1, 50s, %s;%s;%s;%s, PASS, basic\n", run1[0], wrong, run1[2], run1[3]) +
		"/examples/pingpong/, -f omnetpp.ini -c NoSuch -r 0, 50s, 0000-0000/tplx, ERROR, basic\n"
	if err := os.MkdirAll(filepath.Dir(suite), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(suite, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := filepath.Dir(suite)
	state := t.TempDir()
	r := runSimswarm(t, tests, state, "fingerprints", "-j", "2", "examples.csv")
	rows := verdictRows(r.stdout)
	wantRows := map[string]string{
		"examples/pingpong -f omnetpp.ini -c Fp -r 0":     "PASS PASS PASS",
		"examples/pingpong -f omnetpp.ini -c Fp -r 1":     "PASS FAIL FAIL",
		"examples/pingpong -f omnetpp.ini -c NoSuch -r 0": "ERROR ERROR PASS",
	}
	for test, v := range wantRows {
		if got := rows[test]; !strings.HasPrefix(got, v) {
			t.Errorf("%s: %q, want %q\n%s\n%s", test, got, v, r.stdout, r.stderr)
		}
	}
	if r.code != 1 || !strings.Contains(r.stdout, "3 run, 0 verdicts reused") {
		t.Errorf("exit %d, want 1 (one test failed)\n%s", r.code, r.stdout)
	}
	updated := strings.Replace(text, wrong, run1[1], 1)
	if got := readFile(t, suite+".UPDATED"); got != updated {
		t.Errorf("examples.csv.UPDATED:\n%s\nwant\n%s", got, updated)
	}
	if got := readFile(t, suite+".FAILED"); !strings.Contains(got, "-c Fp -r 1") || strings.Contains(got, "-c Fp -r 0") {
		t.Errorf("examples.csv.FAILED:\n%s", got)
	}
	if _, err := os.Stat(suite + ".ERROR"); err != nil {
		t.Errorf("no examples.csv.ERROR beside the suite (INET's tool writes one for a test that exits non-zero): %v", err)
	}

	// Nothing changed: every verdict is reused, although the suite's
	// outputs now sit inside the project.
	r = runSimswarm(t, tests, state, "fingerprints", "-j", "2", "examples.csv")
	if !strings.Contains(r.stdout, "0 run, 3 verdicts reused") {
		t.Errorf("second run with nothing changed:\n%s\n%s", r.stdout, r.stderr)
	}
	// -F excludes ingredient sets, as INET's tool does: the row whose only
	// wrong fingerprint is ~tNl passes without it.
	r = runSimswarm(t, tests, state, "fingerprints", "-j", "2", "-F", "~tNl", "examples.csv")
	if got := verdictRows(r.stdout)["examples/pingpong -f omnetpp.ini -c Fp -r 1"]; !strings.HasPrefix(got, "PASS PASS PASS") || r.code != 0 {
		t.Errorf("-F ~tNl: exit %d, row %q\n%s", r.code, got, r.stdout)
	}
	// OMNeT++'s own calculator does not know INET's ingredients.
	r = runSimswarm(t, tests, state, "fingerprints", "-j", "2", "--calculator", "", "--match", "-r 0", "examples.csv")
	if got := verdictRows(r.stdout)["examples/pingpong -f omnetpp.ini -c Fp -r 0"]; !strings.Contains(got, "ERROR") || !strings.Contains(got, "ingredient") {
		t.Errorf("--calculator '': row %q\n%s", got, r.stdout)
	}
}
