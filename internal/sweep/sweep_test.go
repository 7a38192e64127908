package sweep

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/simswarm/simswarm"
)

// capturedDir holds real OMNeT++ output; the repository sits beside shared/.
const capturedDir = "../../../shared/omnetpp-output"

func tmpl(template string, repeat int, vars ...simswarm.Var) simswarm.Command {
	return simswarm.Command{Kind: simswarm.KindTemplate, Template: template, Repeat: repeat, Vars: vars}
}

func TestCount(t *testing.T) {
	a := simswarm.Var{Name: "a", Values: []string{"1", "2"}}
	b := simswarm.Var{Name: "b", Values: []string{"x", "y", "z"}}
	cases := []struct {
		c    simswarm.Command
		want int
	}{
		{tmpl("t", 0), 1},
		{tmpl("t", 1), 1},
		{tmpl("t", -3), 1}, // a repeat below 1 means once
		{tmpl("t", 4), 4},
		{tmpl("t", 0, a), 2},
		{tmpl("t", 0, a, b), 6},
		{tmpl("t", 2, a, b), 12},
	}
	for _, tc := range cases {
		if got := Count(tc.c); got != tc.want {
			t.Errorf("Count(repeat %d, %d vars) = %d, want %d", tc.c.Repeat, len(tc.c.Vars), got, tc.want)
		}
	}
}

// TestValuesOrder enumerates the product with nested loops, first variable
// outermost and repetition innermost, and requires Values to number it the
// same way.
func TestValuesOrder(t *testing.T) {
	a := simswarm.Var{Name: "a", Values: []string{"a0", "a1"}}
	b := simswarm.Var{Name: "b", Values: []string{"b0", "b1", "b2"}}
	c := tmpl("t", 2, a, b)
	n := 0
	for _, av := range a.Values {
		for _, bv := range b.Values {
			for rep := 0; rep < 2; rep++ {
				want := [][2]string{{"a", av}, {"b", bv}, {"repetition", strconv.Itoa(rep)}}
				if got := Values(c, n); !reflect.DeepEqual(got, want) {
					t.Errorf("Values(%d) = %v, want %v", n, got, want)
				}
				n++
			}
		}
	}
	if n != Count(c) {
		t.Fatalf("enumerated %d runs, Count says %d", n, Count(c))
	}
	// Without variables only the repetition varies.
	if got := Values(tmpl("t", 0), 0); !reflect.DeepEqual(got, [][2]string{{"repetition", "0"}}) {
		t.Errorf("no vars: %v", got)
	}
}

func TestDescribe(t *testing.T) {
	c := tmpl("t", 2, simswarm.Var{Name: "x", Values: []string{"1", "2"}}, simswarm.Var{Name: "mode", Values: []string{"fast"}})
	want := []string{
		"$x=1, $mode=fast, $repetition=0",
		"$x=1, $mode=fast, $repetition=1",
		"$x=2, $mode=fast, $repetition=0",
		"$x=2, $mode=fast, $repetition=1",
	}
	for n, w := range want {
		if got := Describe(c, n); got != w {
			t.Errorf("Describe(%d) = %q, want %q", n, got, w)
		}
	}
}

// TestDescribeMatchesOMNeTpp compares the numbering with what OMNeT++ 6.1
// itself printed for aloha's PureAlohaExperiment (numHosts × iaMean × 2
// repetitions): the promise is "numbered the way OMNeT++ numbers runs".
func TestDescribeMatchesOMNeTpp(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(capturedDir, "aloha-s-q-runs.stdout"))
	if err != nil {
		t.Skipf("captured OMNeT++ output not available: %v", err)
	}
	c := tmpl("t", 2,
		simswarm.Var{Name: "numHosts", Values: []string{"10", "15", "20"}},
		simswarm.Var{Name: "iaMean", Values: []string{"1", "2", "3", "4", "5", "7", "9"}})
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		num, vars, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "Run "), ": ")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil {
			t.Fatalf("bad captured line %q", sc.Text())
		}
		if got := Describe(c, n); got != vars {
			t.Errorf("run %d: Describe = %q, OMNeT++ says %q", n, got, vars)
		}
		seen++
	}
	if seen != Count(c) {
		t.Errorf("captured %d runs, Count = %d", seen, Count(c))
	}
}

func TestExpand(t *testing.T) {
	c := tmpl("./sim --rate={rate} --name={name} -n {run} -r {repetition} --out={resultdir} {args} {unknown} {open",
		2,
		simswarm.Var{Name: "rate", Values: []string{"1", "2.5"}},
		simswarm.Var{Name: "name", Values: []string{"plain", "two words"}})
	c.Args = []string{"-x", "it's"}
	got, err := Expand(c, 5, "/res dir")
	if err != nil {
		t.Fatal(err)
	}
	// Run 5 = rate 2.5 (5/4), name "plain" ((5/2)%2 = 0), repetition 1.
	want := `./sim --rate=2.5 --name=plain -n 5 -r 1 --out='/res dir' -x 'it'\''s' {unknown} {open`
	if got != want {
		t.Errorf("Expand =\n %s\nwant\n %s", got, want)
	}
	got, err = Expand(c, 2, "r")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "--name='two words'") {
		t.Errorf("run 2 should have name 'two words': %s", got)
	}
	// No args: {args} disappears.
	c.Args = nil
	if got, _ := Expand(c, 0, "r"); !strings.Contains(got, "--out=r  {unknown}") {
		t.Errorf("empty {args}: %s", got)
	}
}

// TestExpandInsideBraces: a placeholder inside shell braces (a function
// body, an awk program) is replaced just like one outside; LoadConfig's
// check accepts such templates, so Expand must fill them in.
func TestExpandInsideBraces(t *testing.T) {
	c := tmpl(`f() { echo {x}; }; f; awk 'BEGIN{print "{x}"}' {resultdir}`, 0,
		simswarm.Var{Name: "x", Values: []string{"v"}})
	got, err := Expand(c, 0, "out")
	if err != nil {
		t.Fatal(err)
	}
	want := `f() { echo v; }; f; awk 'BEGIN{print "v"}' out`
	if got != want {
		t.Errorf("Expand =\n %s\nwant\n %s", got, want)
	}
}

func TestExpandOutOfRange(t *testing.T) {
	c := tmpl("s {resultdir}", 3)
	for _, n := range []int{-1, 3, 100} {
		if _, err := Expand(c, n, "r"); err == nil {
			t.Errorf("Expand(run %d of 3) succeeded", n)
		}
	}
	if _, err := Expand(c, 2, "r"); err != nil {
		t.Errorf("last run: %v", err)
	}
}

// nasty are values a user might put in a variable or an argument; each
// must reach the program as exactly one word.
var nasty = []string{
	"", "plain", "two words", "it's", `say "hi"`, "$HOME", "${PATH}", "a;b", "x; touch pwned", "`touch pwned`",
	"$(touch pwned)", "back\\slash", "*", "~", "#comment", "a\nb", "tab\there", "&", "|", "<in", ">pwned", "'", `'\''`, "--flag=1,2",
}

// TestQuoteThroughShell runs printf under /bin/sh with every nasty value
// quoted and checks the words come back unchanged and nothing ran.
func TestQuoteThroughShell(t *testing.T) {
	dir := t.TempDir()
	var line strings.Builder
	line.WriteString(`printf '%s\0'`)
	for _, s := range nasty {
		line.WriteString(" " + Quote(s))
	}
	cmd := exec.Command("/bin/sh", "-c", line.String())
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sh: %v (line %s)", err, line.String())
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if !reflect.DeepEqual(got, nasty) {
		t.Errorf("words through sh:\n got %q\nwant %q", got, nasty)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("a quoted value ran a command")
	}
	// Plain words stay readable.
	for _, s := range []string{"plain", "1.5", "a/b", "--x=1,2", "user@host:9", "50%"} {
		if Quote(s) != s {
			t.Errorf("Quote(%q) = %q, want it unquoted", s, Quote(s))
		}
	}
}

// TestExpandThroughShell: the whole expanded command, variables, result
// directory and args, parsed by /bin/sh.
func TestExpandThroughShell(t *testing.T) {
	dir := t.TempDir()
	c := tmpl(`printf '%s\0' {v} {args} {resultdir} {run}`, 0, simswarm.Var{Name: "v", Values: nasty})
	c.Args = []string{"a b", "$HOME", "x;touch pwned"}
	resdir := filepath.Join(dir, "res $dir; 'q'")
	for n := 0; n < Count(c); n++ {
		line, err := Expand(c, n, resdir)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("/bin/sh", "-c", line)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("run %d: sh: %v (line %s)", n, err, line)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		want := []string{nasty[n], "a b", "$HOME", "x;touch pwned", resdir, strconv.Itoa(n)}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("run %d: got %q, want %q", n, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("an expanded value ran a command")
	}
}

// TestSizeExact: a template's size is counted exactly, however large, and
// Count never wraps around or goes negative (repeat = 2^62 used to panic in
// makeslice, 2^62+1 with 4 values used to wrap to 4 runs).
func TestSizeExact(t *testing.T) {
	four := simswarm.Var{Name: "v", Values: []string{"1", "2", "3", "4"}}
	hundred := simswarm.Var{Name: "h", Values: make([]string, 100)}
	cases := []struct {
		c     simswarm.Command
		size  string
		count int
	}{
		{tmpl("t", 1<<62), "4611686018427387904", 1 << 62},
		{tmpl("t", 1<<62+1, four), "18446744073709551620", math.MaxInt},
		{tmpl("t", 1000, hundred, hundred, hundred), "1000000000", 1_000_000_000},
		{tmpl("t", math.MaxInt, four, four), "147573952589676412912", math.MaxInt},
	}
	for _, tc := range cases {
		if got := Size(tc.c).String(); got != tc.size {
			t.Errorf("Size(repeat %d, %d vars) = %s, want %s", tc.c.Repeat, len(tc.c.Vars), got, tc.size)
		}
		if got := Count(tc.c); got != tc.count {
			t.Errorf("Count(repeat %d, %d vars) = %d, want %d", tc.c.Repeat, len(tc.c.Vars), got, tc.count)
		}
	}
	if got := Factors(tmpl("t", 1000, hundred, four)); got != "100 x 4 values x 1000 repetitions" {
		t.Errorf("Factors = %q", got)
	}
}
