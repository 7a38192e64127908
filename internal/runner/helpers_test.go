package runner

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/omnetpp"
)

// capturedDir holds real OMNeT++ 6.1 output; the repository sits beside
// shared/ both in development and in CI.
const capturedDir = "../../../shared/omnetpp-output"

func captured(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(capturedDir, name))
	if err != nil {
		t.Skipf("captured OMNeT++ output not available: %v", err)
	}
	return b
}

// resultFile writes a text result file whose header names run n (n < 0:
// no header, like a file some module wrote).
func resultFile(t *testing.T, dir, name string, n int) {
	t.Helper()
	content := "not a result file\n"
	if n >= 0 {
		content = "version 3\nrun Exp-" + strconv.Itoa(n) + "-20260101-00:00:00-1\nattr configname Exp\n" +
			"attr runnumber " + strconv.Itoa(n) + "\nitervar x 1\n\nscalar Net.host sent 5\n"
	}
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAttribute: the files of a three-run batch go to the run their header
// names; header-less files follow a file with the same name prefix, and
// the rest go to the batch's first run.
func TestAttribute(t *testing.T) {
	dir := t.TempDir()
	resultFile(t, dir, "Exp-#4.sca", 4)
	resultFile(t, dir, "Exp-#4.vec", 4)
	resultFile(t, dir, "Exp-#5.sca", 5)
	resultFile(t, dir, "Exp-#5.vci", -1) // same prefix as an attributed file
	resultFile(t, dir, "Exp-#6.vec", 6)
	resultFile(t, dir, "sub/deep-#6.sca", 6)
	resultFile(t, dir, "sub/deep-#6.txt", -1)
	resultFile(t, dir, "summary.csv", -1) // no header, no prefix
	resultFile(t, dir, "Exp-#9.sca", -1)  // looks like a run's, but says nothing
	seen := []omnetpp.BatchRun{{Run: 5}, {Run: 4}, {Run: 6}}
	got := attribute(dir, seen)
	for _, files := range got {
		slices.Sort(files)
	}
	want := map[int][]string{
		4: {"Exp-#4.sca", "Exp-#4.vec"},
		5: {"Exp-#5.sca", "Exp-#5.vci", "Exp-#9.sca", "summary.csv"},
		6: {"Exp-#6.vec", "sub/deep-#6.sca", "sub/deep-#6.txt"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("attribute =\n %v\nwant\n %v", got, want)
	}
}

// TestAttributeCaptured uses real OMNeT++ result files of run 0 (.sca and
// its .vci, whose header starts with a "file" line).
func TestAttributeCaptured(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"PureAlohaExperiment-numHosts=10,iaMean=1-#0.sca", "PureAlohaExperiment-numHosts=10,iaMean=1-#0.vci"} {
		if err := os.WriteFile(filepath.Join(dir, name), captured(t, name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	resultFile(t, dir, "PureAlohaExperiment-numHosts=10,iaMean=1-#1.sca", 1)
	got := attribute(dir, []omnetpp.BatchRun{{Run: 1}, {Run: 0}})
	want := map[int][]string{
		0: {"PureAlohaExperiment-numHosts=10,iaMean=1-#0.sca", "PureAlohaExperiment-numHosts=10,iaMean=1-#0.vci"},
		1: {"PureAlohaExperiment-numHosts=10,iaMean=1-#1.sca"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("attribute = %v, want %v", got, want)
	}
}

func TestOutName(t *testing.T) {
	omn := simswarm.Command{Kind: simswarm.KindOmnetpp, Argv: []string{"./aloha", "-u", "Cmdenv", "-c", "PureAlohaExperiment"}}
	tpl := simswarm.Command{Kind: simswarm.KindTemplate, Template: "s {resultdir}"}
	const pre = "PureAlohaExperiment-numHosts=10,iaMean=1-#3"
	cases := []struct {
		name  string
		c     simswarm.Command
		files []string
		want  string
	}{
		{"after the result files", omn, []string{pre + ".sca", pre + ".vci", pre + ".vec"}, pre + ".out"},
		{"eventlog counts", omn, []string{pre + ".elog"}, pre + ".out"},
		{"other files do not matter", omn, []string{pre + ".sca", "zz-notes.txt"}, pre + ".out"},
		// A module's own file sorting before the result files must not
		// hide them.
		{"other file first", omn, []string{"Aloha-stats.csv", pre + ".sca", pre + ".vec"}, pre + ".out"},
		{"in a subdirectory", omn, []string{"sub/" + pre + ".sca"}, "sub/" + pre + ".out"},
		{"prefixes disagree", omn, []string{pre + ".sca", "Other-#3.vec"}, "PureAlohaExperiment-#3.out"},
		{"disagree after agreeing", omn, []string{pre + ".sca", pre + ".vec", "Other-#3.vci"}, "PureAlohaExperiment-#3.out"},
		{"no files", omn, nil, "PureAlohaExperiment-#3.out"},
		{"no -c", simswarm.Command{Kind: simswarm.KindOmnetpp, Argv: []string{"./aloha"}}, nil, "General-#3.out"},
		{"template, no result files", tpl, []string{"data.csv"}, "run-#3.out"},
		{"template with .sca", tpl, []string{"x.sca"}, "x.out"},
	}
	for _, tc := range cases {
		if got := outName(tc.c, 3, tc.files); got != tc.want {
			t.Errorf("%s: outName = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// learn records one measured process: startup seconds to the first header,
// then runs taking perRun seconds each.
func learn(b *batchStats, key string, startup, perRun float64, runs int) {
	sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	b.add(key, sec(startup), sec(startup+perRun*float64(runs)), runs)
}

func TestBatchSize(t *testing.T) {
	const limit = 8
	var b batchStats
	size := func(key string, limit int) int { return batchSize(omnetJob("c", 0, 0), b.timing(key), limit) }
	if got := size("none", limit); got != 1 {
		t.Errorf("no data: %d, want 1", got)
	}
	// Slow start-up, short runs: as many as allowed.
	learn(&b, "fast-runs", 1, 0.01, 1)
	if got := size("fast-runs", limit); got != limit {
		t.Errorf("startup 1 s, per-run 0.01 s: %d, want %d", got, limit)
	}
	if got := size("fast-runs", 100); got != 100 {
		t.Errorf("startup 1 s, per-run 0.01 s, limit 100: %d, want 100 (0.99 × 1 / (0.01 × 0.01) = 9900)", got)
	}
	// Start-up negligible: batching gains nothing.
	learn(&b, "slow-runs", 0.001, 1, 1)
	if got := size("slow-runs", limit); got != 1 {
		t.Errorf("startup 0.001 s, per-run 1 s: %d, want 1", got)
	}
	// 0.99 × 0.1 s / (0.01 × 4 s) = 2.5, rounded up: 3 runs per process.
	// (Measured times are never exact, so no case sits on a rounding
	// boundary.)
	learn(&b, "middle", 0.1, 4, 2)
	if got := size("middle", limit); got != 3 {
		t.Errorf("startup 0.1 s, per-run 4 s: %d, want 3", got)
	}
	// 0.99 × 1 s / (0.01 × 4 s) = 24.8, but a process stays within 20 s: 5.
	learn(&b, "capped", 1, 4, 2)
	if got := size("capped", limit); got != 5 {
		t.Errorf("startup 1 s, per-run 4 s: %d, want 5 (20 s cap)", got)
	}
	// 0.97 × 10 / (0.03 × 5) = 65, but a process must stay within 20 s: 4 runs.
	learn(&b, "long", 10, 5, 1)
	if got := size("long", 100); got != 4 {
		t.Errorf("startup 10 s, per-run 5 s: %d, want 4 (20 s cap)", got)
	}
	// A failed batch turns batching off for the campaign, data or not.
	b.noBatch("fast-runs")
	b.noBatch("never-measured")
	learn(&b, "never-measured", 1, 0.01, 1)
	for _, key := range []string{"fast-runs", "never-measured"} {
		if got := size(key, limit); got != 1 {
			t.Errorf("%s after noBatch: %d, want 1", key, got)
		}
	}
}

func TestCommandLine(t *testing.T) {
	argv := []string{"./aloha", "-u", "Cmdenv", "-c", "PureAlohaExperiment"}
	c := simswarm.Command{Kind: simswarm.KindOmnetpp, Argv: argv}
	got, err := commandLine(c, []int{0, 1, 2}, "/tmp/res")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"./aloha", "-u", "Cmdenv", "-c", "PureAlohaExperiment", "-s", "-r", "0,1,2", "--result-dir=/tmp/res"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("omnetpp: %q, want %q", got, want)
	}
	if len(c.Argv) != 5 || !reflect.DeepEqual(c.Argv, argv[:5]) {
		t.Errorf("commandLine changed the command's argv: %q", c.Argv)
	}
	// -s already given: not twice.
	c.Argv = []string{"./aloha", "-s", "-c", "X"}
	got, _ = commandLine(c, []int{7}, "r")
	if want := []string{"./aloha", "-s", "-c", "X", "-r", "7", "--result-dir=r"}; !reflect.DeepEqual(got, want) {
		t.Errorf("omnetpp with -s: %q, want %q", got, want)
	}

	tc := simswarm.Command{Kind: simswarm.KindTemplate, Template: "./sim --x={x} --out={resultdir}", Repeat: 2,
		Vars: []simswarm.Var{{Name: "x", Values: []string{"a", "b c"}}}}
	got, err = commandLine(tc, []int{2}, "/res dir")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/bin/sh", "-c", "./sim --x='b c' --out='/res dir'"}; !reflect.DeepEqual(got, want) {
		t.Errorf("template: %q, want %q", got, want)
	}
	if _, err := commandLine(tc, []int{0, 1}, "r"); err == nil {
		t.Error("template with two runs in one process: no error")
	}
	if _, err := commandLine(tc, []int{4}, "r"); err == nil {
		t.Error("template run out of range: no error")
	}
	if _, err := commandLine(simswarm.Command{Kind: "bogus"}, []int{0}, "r"); err == nil {
		t.Error("unknown kind: no error")
	}
}
