package runner

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
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

// lineOffsets returns the byte offsets of the lines starting with prefix,
// found independently of omnetpp.BatchHeader.
func lineOffsets(data []byte, prefix string) []int64 {
	var out []int64
	for off := 0; off < len(data); {
		if bytes.HasPrefix(data[off:], []byte(prefix)) {
			out = append(out, int64(off))
		}
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			break
		}
		off += nl + 1
	}
	return out
}

// feed writes data to h in chunks of 1..maxChunk bytes chosen by rng.
func feed(t *testing.T, h *headerIndex, data []byte, rng *rand.Rand, maxChunk int) {
	t.Helper()
	for len(data) > 0 {
		n := min(1+rng.IntN(maxChunk), len(data))
		if w, err := h.Write(data[:n]); w != n || err != nil {
			t.Fatalf("Write = %d, %v", w, err)
		}
		data = data[n:]
	}
}

// TestHeaderIndexCaptured feeds real batch output (runs 0,1,2 in one
// process) the way a pipe delivers it, in arbitrary pieces, and requires
// each run's start to be the exact byte offset of its header line: the
// console output is cut there into per-run .out files.
func TestHeaderIndexCaptured(t *testing.T) {
	data := captured(t, "aloha-s-batch012.stdout")
	want := lineOffsets(data, "PureAlohaExperiment run ")
	if len(want) != 3 || want[0] != 0 {
		t.Fatalf("captured file changed? header offsets %v", want)
	}
	for _, maxChunk := range []int{1, 2, 7, 64, 255, 256, 257, 4096, len(data)} {
		for seed := uint64(0); seed < 5; seed++ {
			rng := rand.New(rand.NewPCG(seed, uint64(maxChunk)))
			h := &headerIndex{start: time.Now()}
			feed(t, h, data, rng, maxChunk)
			heads := h.runs()
			var runs []int
			var offs []int64
			for _, hd := range heads {
				runs = append(runs, hd.run)
				offs = append(offs, hd.offset)
			}
			if !reflect.DeepEqual(runs, []int{0, 1, 2}) || !reflect.DeepEqual(offs, want) {
				t.Fatalf("chunks ≤%d seed %d: runs %v at %v, want [0 1 2] at %v", maxChunk, seed, runs, offs, want)
			}
			if h.total != int64(len(data)) {
				t.Fatalf("total %d, want %d", h.total, len(data))
			}
			for i := 1; i < len(heads); i++ {
				if heads[i].at.Before(heads[i-1].at) {
					t.Fatalf("header times out of order: %v", heads)
				}
			}
			if at, ok := h.firstAt(); !ok || !at.Equal(heads[0].at) {
				t.Fatalf("firstAt = %v %v", at, ok)
			}
		}
	}
}

// TestHeaderIndexLongLines: a header longer than the 256 bytes kept per
// line (INET runs with many iteration variables) is still found; text
// that merely looks like a header in the middle of a long line is not;
// and a line without its newline yet is not a header yet.
func TestHeaderIndexLongLines(t *testing.T) {
	longHeader := "Exp run 7: " + strings.Repeat("$v=1, ", 80) + "$repetition=0\n"
	noise := strings.Repeat("x", 300) + "Exp run 8: $v=2\n"
	var data []byte
	data = append(data, "startup banner\n"...)
	off1 := len(data)
	data = append(data, longHeader...)
	data = append(data, noise...)
	off2 := len(data)
	data = append(data, "Exp run 9: $v=3\n"...)
	for _, maxChunk := range []int{1, 13, 1000} {
		h := &headerIndex{start: time.Now()}
		feed(t, h, data, rand.New(rand.NewPCG(1, 2)), maxChunk)
		got := h.runs()
		if len(got) != 2 || got[0].run != 7 || got[0].offset != int64(off1) || got[1].run != 9 || got[1].offset != int64(off2) {
			t.Errorf("chunks ≤%d: headers %+v, want run 7 at %d and run 9 at %d", maxChunk, got, off1, off2)
		}
	}
	h := &headerIndex{start: time.Now()}
	h.Write([]byte("Exp run 3: $v=1"))
	if _, ok := h.firstAt(); ok {
		t.Error("an unterminated line counted as a header")
	}
	h.Write([]byte("\n"))
	if got := h.runs(); len(got) != 1 || got[0].run != 3 || got[0].offset != 0 {
		t.Errorf("after the newline: %+v", got)
	}
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
	seen := []header{{run: 5}, {run: 4}, {run: 6}}
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
	got := attribute(dir, []header{{run: 1}, {run: 0}})
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
	t0 := time.Unix(1_700_000_000, 0)
	sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	idx := &headerIndex{start: t0, heads: []header{{run: 0, at: t0.Add(sec(startup))}}}
	b.add(key, idx, sec(startup+perRun*float64(runs)), runs)
}

func TestBatchSize(t *testing.T) {
	const limit = 8
	var b batchStats
	if got := b.size("none", limit); got != 1 {
		t.Errorf("no data: %d, want 1", got)
	}
	// Slow start-up, short runs: as many as allowed.
	learn(&b, "fast-runs", 1, 0.01, 1)
	if got := b.size("fast-runs", limit); got != limit {
		t.Errorf("startup 1 s, per-run 0.01 s: %d, want %d", got, limit)
	}
	if got := b.size("fast-runs", 100); got != 100 {
		t.Errorf("startup 1 s, per-run 0.01 s, limit 100: %d, want 100 (9 × 1 / 0.01 = 900)", got)
	}
	// Start-up negligible: batching gains nothing.
	learn(&b, "slow-runs", 0.001, 1, 1)
	if got := b.size("slow-runs", limit); got != 1 {
		t.Errorf("startup 0.001 s, per-run 1 s: %d, want 1", got)
	}
	// 9 × 1 s / 4 s = 2.25, rounded up: 3 runs per process. (Measured
	// times are never exact, so no case sits on a rounding boundary.)
	learn(&b, "middle", 1, 4, 2)
	if got := b.size("middle", limit); got != 3 {
		t.Errorf("startup 1 s, per-run 4 s: %d, want 3", got)
	}
	// 9 × 10 / 5 = 18, but a process must stay within 20 s: 4 runs.
	learn(&b, "long", 10, 5, 1)
	if got := b.size("long", 100); got != 4 {
		t.Errorf("startup 10 s, per-run 5 s: %d, want 4 (20 s cap)", got)
	}
	// A failed batch turns batching off for the campaign, data or not.
	b.noBatch("fast-runs")
	b.noBatch("never-measured")
	learn(&b, "never-measured", 1, 0.01, 1)
	for _, key := range []string{"fast-runs", "never-measured"} {
		if got := b.size(key, limit); got != 1 {
			t.Errorf("%s after noBatch: %d, want 1", key, got)
		}
	}
	// A process that never printed a header teaches nothing.
	b.add("no-header", &headerIndex{start: time.Now()}, time.Second, 3)
	if got := b.size("no-header", limit); got != 1 {
		t.Errorf("no header: %d, want 1", got)
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
