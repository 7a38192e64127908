package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestRunList: run --list runs heterogeneous commands of one project as
// one campaign sharing one build, each item's results in its own
// directory; a rerun executes nothing; an item whose run list fails is
// named, the others run.
func TestRunList(t *testing.T) {
	dir := example(t, "aloha")
	list := filepath.Join(filepath.Dir(dir), "list.txt")
	os.WriteFile(list, []byte(`# directory, command
aloha ./aloha -c PureAlohaExperiment -r 0..3
aloha ./aloha -c PureAlohaExperiment -r "5,7"
"aloha" ./aloha -c NoSuchConfig
`), 0o644)
	state := t.TempDir()
	r := runSimswarm(t, filepath.Dir(dir), state, "run", "-j", "2", "--json", "--list", "list.txt")
	s := jsonSummary(t, r)
	if r.code != 1 || s.Runs != 7 || s.Succeeded != 6 || s.Failed != 1 || s.Executed != 6 {
		t.Fatalf("exit %d, %+v\n%s", r.code, s, r.stderr)
	}
	if !strings.Contains(r.stderr, "FAILED list.txt:4: run list:") || !strings.Contains(r.stderr, "No such config: NoSuchConfig") {
		t.Errorf("the failing item is not named:\n%s", r.stderr)
	}
	if n := strings.Count(r.stderr, "simswarm: built in"); n != 1 {
		t.Errorf("%d builds for one project, want 1:\n%s", n, r.stderr)
	}
	res := filepath.Join(filepath.Dir(dir), "results")
	ents, _ := os.ReadDir(res)
	var counts []int
	for _, e := range ents {
		counts = append(counts, len(files(t, filepath.Join(res, e.Name()), "*.sca")))
	}
	sort.Ints(counts)
	if fmt.Sprint(counts) != "[0 2 4]" {
		t.Errorf("result directories hold %v .sca files, want one each of 4, 2 and 0", counts)
	}

	again := runSimswarm(t, filepath.Dir(dir), state, "run", "-j", "2", "--json", "--list", "list.txt")
	if s := jsonSummary(t, again); again.code != 1 || s.Executed != 0 || s.Cached != 6 {
		t.Errorf("rerun: exit %d, %+v, want nothing executed\n%s", again.code, s, again.stderr)
	}

	for _, c := range []struct{ name, list, want string }{
		{"one word", "aloha\n", "list.txt:1: a line is a working directory and a command"},
		{"quote", "aloha ./aloha -c 'Pure\n", "list.txt:1: unterminated ' quote"},
		{"twice", "aloha ./aloha -r 1\n# c\naloha ./aloha -r 1\n", "list.txt:3: the same command as line 1"},
		{"empty", "# nothing\n\n", "list.txt: the list holds no command"},
		{"no dir", "nowhere ./aloha\n", "list.txt:1: working directory"},
	} {
		os.WriteFile(list, []byte(c.list), 0o644)
		r := runSimswarm(t, filepath.Dir(dir), state, "run", "--list", "list.txt")
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("%s: exit %d, stderr %q, want one line with %q", c.name, r.code, r.stderr, c.want)
		}
	}
	if r := runSimswarm(t, filepath.Dir(dir), state, "run", "--list", "list.txt", "--", "./aloha"); r.code != 2 || !strings.Contains(r.stderr, "--list names the commands") {
		t.Errorf("--list with a command: exit %d %q", r.code, r.stderr)
	}
}

// calculated runs a test's command with OMNeT++ itself and returns the
// fingerprint it calculates.
func calculated(t *testing.T, dir string, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], "-u", "Cmdenv", "--fingerprint=0000-0000/tplx",
		"--result-dir="+t.TempDir(), "--vector-recording=false")...)
	cmd.Dir = dir
	out, _ := cmd.CombinedOutput()
	m := regexp.MustCompile(`calculated: (\S+), expected`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("%v in %s computed no fingerprint:\n%s", argv, dir, out)
	}
	return string(m[1])
}

// TestOMNeTPPFingerprints: a suite over real OMNeT++'s aloha, tictoc and
// queuenet, its fingerprints computed by OMNeT++ itself, with one wrong
// fingerprint, one test that errors and one expected FAIL: verdicts, the
// three files and the exit status; a rerun executes nothing; a NED change
// in aloha reruns the aloha tests only.
func TestOMNeTPPFingerprints(t *testing.T) {
	o := realOMNeT(t)
	ws := t.TempDir()
	for _, s := range []string{"aloha", "tictoc", "queueinglib", "queuenet"} {
		o.CopySample(t, s, ws)
	}
	for _, s := range []string{"aloha", "tictoc", "queueinglib"} {
		localMake(t, filepath.Join(ws, s))
	}
	aloha1 := calculated(t, filepath.Join(ws, "aloha"), "./aloha", "-c", "PureAloha1", "-r", "0", "--sim-time-limit=100s")
	tictoc := calculated(t, filepath.Join(ws, "tictoc"), "./tictoc", "-c", "Tictoc9", "-r", "0", "--sim-time-limit=10s")
	cqn := calculated(t, filepath.Join(ws, "queuenet"), "./queuenet", "-c", "CQN", "-r", "0", "--sim-time-limit=1000s")
	slotted := calculated(t, filepath.Join(ws, "aloha"), "./aloha", "-c", "SlottedAloha1", "-r", "0", "--sim-time-limit=100s")
	tests := filepath.Join(ws, "tests")
	os.Mkdir(tests, 0o755)
	suite := filepath.Join(tests, "samples.csv")
	text := `# working directory, command line arguments, simulation time limit, fingerprint, expected result, tags
/aloha/, -f omnetpp.ini -c PureAloha1 -r 0, 100s, ` + aloha1 + `, PASS, aloha basic
/aloha/, -f omnetpp.ini -c SlottedAloha1 -r 0, 100s, 1234-5678/tplx, PASS, aloha   # wrong
/aloha/, -f omnetpp.ini -c PureAloha2 -r 0, 100s, 0000-0000/tplx, FAIL, aloha
/tictoc/, -f omnetpp.ini -c Tictoc9 -r 0, 10s, ` + tictoc + `, PASS, tictoc basic
/queuenet/, -f omnetpp.ini -c CQN -r 0, 1000s, ` + cqn + `, PASS, queuenet
/queuenet/, -f omnetpp.ini -c NoSuchConfig -r 0, 10s, 0000-0000/tplx, PASS, queuenet
`
	os.WriteFile(suite, []byte(text), 0o644)
	state := t.TempDir()
	args := []string{"fingerprints", "-j", "2", "--ccache-dir", sharedCcache(), "samples.csv"}
	r := runSimswarm(t, tests, state, args...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rows := verdictRows(r.stdout)
	want := map[string]string{
		"aloha -f omnetpp.ini -c PureAloha1 -r 0":      "PASS PASS PASS",
		"aloha -f omnetpp.ini -c SlottedAloha1 -r 0":   "PASS FAIL FAIL",
		"aloha -f omnetpp.ini -c PureAloha2 -r 0":      "FAIL FAIL PASS",
		"tictoc -f omnetpp.ini -c Tictoc9 -r 0":        "PASS PASS PASS",
		"queuenet -f omnetpp.ini -c CQN -r 0":          "PASS PASS PASS",
		"queuenet -f omnetpp.ini -c NoSuchConfig -r 0": "PASS ERROR ERROR",
	}
	for test, v := range want {
		if got := rows[test]; !strings.HasPrefix(got, v) {
			t.Errorf("%s: %q, want %q", test, got, v)
		}
	}
	if !strings.Contains(rows["queuenet -f omnetpp.ini -c NoSuchConfig -r 0"], "No such config") {
		t.Errorf("the error test does not say why: %q", rows["queuenet -f omnetpp.ini -c NoSuchConfig -r 0"])
	}
	if !strings.Contains(r.stdout, "fingerprints: 6 tests, 4 PASS, 1 FAIL, 1 ERROR; 6 run, 0 verdicts reused") {
		t.Errorf("summary line:\n%s", r.stdout)
	}
	updated := strings.NewReplacer("1234-5678/tplx", slotted).Replace(text)
	pure2 := calculated(t, filepath.Join(ws, "aloha"), "./aloha", "-c", "PureAloha2", "-r", "0", "--sim-time-limit=100s")
	updated = strings.Replace(updated, "100s, 0000-0000/tplx, FAIL", "100s, "+pure2+", FAIL", 1)
	if got := readFile(t, filepath.Join(tests, "samples.csv.UPDATED")); got != updated {
		t.Errorf("UPDATED:\n%s\nwant\n%s", got, updated)
	}
	if got := readFile(t, filepath.Join(tests, "samples.csv.FAILED")); !strings.Contains(got, "SlottedAloha1") || !strings.Contains(got, "PureAloha2") || strings.Count(got, "/aloha/") != 2 {
		t.Errorf("FAILED:\n%s", got)
	}
	if got := readFile(t, filepath.Join(tests, "samples.csv.ERROR")); !strings.Contains(got, "NoSuchConfig") || strings.Contains(got, "CQN") {
		t.Errorf("ERROR:\n%s", got)
	}
	if readFile(t, suite) != text {
		t.Error("the suite changed without --update")
	}

	again := runSimswarm(t, tests, state, args...)
	if again.code != 1 || !strings.Contains(again.stdout, "; 0 run, 6 verdicts reused") {
		t.Errorf("rerun with nothing changed: exit %d\n%s\n%s", again.code, again.stdout, again.stderr)
	}

	// A NED parameter Cmdenv never uses: aloha is rebuilt and its tests
	// rerun with the same verdicts; tictoc and queuenet are reused.
	ned := filepath.Join(ws, "aloha", "Host.ned")
	os.WriteFile(ned, []byte(strings.Replace(readFile(t, ned), "controlAnimationSpeed = default(true)", "controlAnimationSpeed = default(false)", 1)), 0o644)
	third := runSimswarm(t, tests, state, args...)
	rows = verdictRows(third.stdout)
	for test, v := range want {
		reused := strings.Contains(rows[test], "(reused)")
		aloha := strings.HasPrefix(test, "aloha")
		if !strings.HasPrefix(rows[test], v) || aloha == reused {
			t.Errorf("after a NED change in aloha, %s: %q", test, rows[test])
		}
	}

	// --update writes the computed fingerprints into the suite itself.
	up := runSimswarm(t, tests, state, append(args[:len(args)-1], "--update", "--match", "aloha", "samples.csv")...)
	if up.code != 1 || readFile(t, suite) != updated {
		t.Errorf("--update: exit %d, suite now\n%s\nwant\n%s", up.code, readFile(t, suite), updated)
	}
}

// verdictRows maps each test of a verdict table to "EXPECTED GOT VERDICT
// TIME DETAIL".
func verdictRows(table string) map[string]string {
	rows := map[string]string{}
	re := regexp.MustCompile(`^(\S+ .*? -r [0-9]+)\s+(PASS|FAIL|ERROR)\s+(PASS|FAIL|ERROR)\s+(PASS|FAIL|ERROR)\s+(.*)$`)
	for _, line := range strings.Split(table, "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			rows[m[1]] = m[2] + " " + m[3] + " " + m[4] + " " + m[5]
		}
	}
	return rows
}

// TestFingerprintsBadInputs: each bad suite is one line naming the file
// and line, exit 2, and nothing runs (no engine state, no results).
func TestFingerprintsBadInputs(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "examples", "a"), 0o755)
	good := "/examples/a/, -c A -r 0, 10s, 1234-5678/tplx, PASS,\n"
	for _, c := range []struct{ name, suite, want string }{
		{"too few fields", "/examples/a/, -c A -r 0, 10s\n", "s.csv:1:"},
		{"unknown result", "/examples/a/, -c A -r 0, 10s, 1234-5678/tplx, MAYBE,\n", "s.csv:1:"},
		{"outside", "/../elsewhere/, -c A -r 0, 10s, 1234-5678/tplx, PASS,\n", "s.csv:1: working directory \"/../elsewhere/\" is outside the project"},
		{"fingerprint", "# c\n/examples/a/, -c A -r 0, 10s, 12x4-5678/tplx, PASS,\n", "s.csv:2:"},
		{"empty", "# only a comment\n", "s.csv: no tests in the suite"},
	} {
		suite := filepath.Join(dir, "s.csv")
		os.WriteFile(suite, []byte(c.suite), 0o644)
		state := filepath.Join(t.TempDir(), "state")
		r := runSimswarm(t, dir, state, "fingerprints", "--program", "./a", "s.csv")
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("%s: exit %d, stderr %q, want one line with %q", c.name, r.code, r.stderr, c.want)
		}
		if _, err := os.Stat(state); err == nil {
			t.Errorf("%s: an engine started", c.name)
		}
	}
	os.WriteFile(filepath.Join(dir, "s.csv"), []byte(good), 0o644)
	os.Symlink("s.csv", filepath.Join(dir, "t.csv"))
	r := runSimswarm(t, dir, filepath.Join(t.TempDir(), "state"), "fingerprints", "--program", "./a", "s.csv", "t.csv")
	if r.code != 2 || !strings.Contains(r.stderr, "t.csv: the same suite is given twice (also as s.csv)") {
		t.Errorf("a suite twice: exit %d %q", r.code, r.stderr)
	}
	for _, args := range [][]string{
		{"fingerprints"},
		{"fingerprints", "--cpu-time-limit", "-3s", "s.csv"},
		{"fingerprints", "--match", "(", "s.csv"},
		{"fingerprints", "--tags", "", "s.csv"},
		{"fingerprints", "--fpfilter", "", "s.csv"},
		{"fingerprints", "-F", "", "s.csv"},
		{"fingerprints", "--fpfilter", "tp/lx", "s.csv"},
		{"fingerprints", "-F", "a b", "s.csv"},
		{"fingerprints", "--calculator", "no such", "s.csv"},
		{"fingerprints", "--calculator", "::x", "s.csv"},
		{"fingerprints", "--fpfilter", "zzz", "s.csv"},
		{"fingerprints", "--program", "'unterminated", "s.csv"},
		{"fingerprints", "--detach", "s.csv"},
		{"fingerprints", "nosuch.csv"},
	} {
		r := runSimswarm(t, dir, filepath.Join(t.TempDir(), "state"), args...)
		if r.code != 2 || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 || r.stderr == "" {
			t.Errorf("%v: exit %d, stderr %q, want one line and exit 2", args, r.code, r.stderr)
		}
	}
}
