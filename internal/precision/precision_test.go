package precision

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/campaign"
	"github.com/simswarm/simswarm/internal/results"
)

func TestParseTarget(t *testing.T) {
	for _, c := range []struct {
		in        string
		scalar    string
		level     float64
		bound     float64
		relative  bool
		inclusive bool
	}{
		{"Aloha.server.channelUtilization:last ci95 < 5%", "Aloha.server.channelUtilization:last", 0.95, 0.05, true, false},
		{"  Aloha.server.channelUtilization:last   ci95<0.5 %  ", "Aloha.server.channelUtilization:last", 0.95, 0.005, true, false},
		{"Net.host[3].app.throughput ci99 <= 0.01", "Net.host[3].app.throughput", 0.99, 0.01, false, true},
		{"Net.sink.packets received ci90 < 2.5e-3", "Net.sink.packets received", 0.90, 2.5e-3, false, false},
		{`"Net.a b" ci95 < 10%`, "Net.a b", 0.95, 0.10, true, false},
		{"throughput ci99.9 < 1", "throughput", 0.999, 1, false, false},
	} {
		got, err := ParseTarget(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got.Scalar != c.scalar || math.Abs(got.Level-c.level) > 1e-12 || math.Abs(got.Bound-c.bound) > 1e-15 || got.Relative != c.relative || got.Inclusive != c.inclusive {
			t.Errorf("%q: got %+v", c.in, got)
		}
	}
	for in, want := range map[string]string{
		"Aloha.server.x ci95 < 0%":   "must be positive",
		"Aloha.server.x ci95 < -5%":  "must be positive",
		"Aloha.server.x ci95 < 0":    "must be positive",
		"Aloha.server.x ci95 > 5%":   "bounds the half-width from above",
		"Aloha.server.x ci95 < five": `"five" is not a number`,
		"Aloha.server.x ci95 < NaN":  "is not a number",
		"Aloha.server.x ci95 < inf%": "is not a number",
		"Aloha.server.x ci100 < 5%":  "not a confidence level",
		"Aloha.server.x ci5 < 5%":    "not a confidence level",
		"Aloha.server.x < 5%":        "expected 'MODULE.SCALAR ci95 < 5%'",
		"ci95 < 5%":                  "expected",
		"":                           "expected",
		"Aloha.server.x ci95 <":      "expected",
	} {
		_, err := ParseTarget(in)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one line saying %q", in, err, want)
		}
	}
}

func TestTargetMet(t *testing.T) {
	rel, _ := ParseTarget("x ci95 < 5%")
	abs, _ := ParseTarget("x ci95 <= 0.01")
	for _, c := range []struct {
		t       Target
		mean, h float64
		met     bool
		prec    string
	}{
		{rel, 10, 0.49, true, "4.9%"},
		{rel, 10, 0.5, false, "5%"},
		{rel, -10, 0.49, true, "4.9%"}, // relative to the magnitude
		{rel, 0, 0.1, false, "inf%"},
		{rel, 0, 0, true, "0%"}, // every repetition the same
		{rel, 1, math.NaN(), false, "-"},
		{abs, 5, 0.01, true, "0.01"},
		{abs, 5, 0.0101, false, "0.0101"},
	} {
		if got := c.t.Met(c.mean, c.h); got != c.met {
			t.Errorf("%s: mean %g half-width %g: met %v, want %v", c.t.Text, c.mean, c.h, got, c.met)
		}
		if got := c.t.Precision(c.mean, c.h); got != c.prec {
			t.Errorf("%s: mean %g half-width %g: precision %q, want %q", c.t.Text, c.mean, c.h, got, c.prec)
		}
	}
}

// acc holds n values of mean m and sample standard deviation s exactly:
// m ± s·sqrt((n-1)/n) alternating (n even).
func acc(n int, m, s float64) *results.Acc {
	a := &results.Acc{}
	d := s * math.Sqrt(float64(n-1)/float64(n))
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			a.Add(m + d)
		} else {
			a.Add(m - d)
		}
	}
	return a
}

func TestNext(t *testing.T) {
	rel, _ := ParseTarget("x ci95 < 5%")
	// The smallest k with t(0.975, k-1)·s/√k < 5% of the mean, by brute force.
	need := func(s, mean float64) int {
		for k := 2; ; k++ {
			if results.StudentT(0.975, k-1)*s/math.Sqrt(float64(k)) < 0.05*mean {
				return k
			}
		}
	}
	// s = 0.1, mean = 1: about (1.96·0.1/0.05)² ≈ 16 repetitions.
	want := need(0.1, 1)
	if want < 15 || want > 20 {
		t.Fatalf("brute force says %d", want)
	}
	a := acc(10, 1, 0.1)
	if math.Abs(a.Stddev()-0.1) > 1e-12 {
		t.Fatalf("helper: stddev %g", a.Stddev())
	}
	if got := Next(10, a, rel, 100); got != want {
		t.Errorf("estimated from the spread: %d, want %d", got, want)
	}
	// From 4 the estimate (16) is beyond 2n: doubled only.
	if got := Next(4, acc(4, 1, 0.1), rel, 100); got != 8 {
		t.Errorf("from 4: %d, want 8 (at most double)", got)
	}
	// Never beyond the maximum.
	if got := Next(10, a, rel, 12); got != 12 {
		t.Errorf("capped: %d, want 12", got)
	}
	if got := Next(12, a, rel, 12); got != 12 {
		t.Errorf("at the cap: %d, want 12", got)
	}
	// Nearly there: one more.
	near := acc(want-1, 1, 0.1)
	if got := Next(want-1, near, rel, 100); got != want {
		t.Errorf("one short: %d, want %d", got, want)
	}
	// No spread known: doubling.
	if got := Next(1, &results.Acc{}, rel, 100); got != 2 {
		t.Errorf("n=1: %d, want 2", got)
	}
	if got := Next(3, nil, rel, 100); got != 6 {
		t.Errorf("no values: %d, want 6", got)
	}
	// A relative target around a zero mean cannot be estimated: doubling.
	if got := Next(4, acc(4, 0, 0.1), rel, 100); got != 8 {
		t.Errorf("zero mean: %d, want 8", got)
	}
}

func TestCheck(t *testing.T) {
	rel, _ := ParseTarget("x ci95 < 5%")
	spec := Spec{Targets: []Target{rel}, Max: 10}
	plain := t.TempDir()
	tmpl := func(cmd string) string {
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, "simswarm.toml"), []byte("[build]\ncommand = \"\"\n[run]\ncommand = \""+cmd+"\"\n"), 0o644)
		return d
	}
	for _, c := range []struct {
		name string
		dir  string
		argv []string
		spec Spec
		want string // "" : accepted
	}{
		{"expression filter", plain, []string{"./aloha", "-c", "X", "-r", "$numHosts==10"}, spec, ""},
		{"run numbers", plain, []string{"./aloha", "-r", "0..9"}, spec, "not run numbers"},
		{"run number list", plain, []string{"./aloha", "-r3,4"}, spec, "not run numbers"},
		{"repeat given", plain, []string{"./aloha", "--repeat=5"}, spec, "remove --repeat"},
		{"repeat given apart", plain, []string{"./aloha", "--repeat", "5"}, spec, "remove --repeat"},
		{"max 0", plain, []string{"./aloha"}, Spec{Targets: spec.Targets, Max: 0}, "--max-repetitions must be at least 2"},
		{"max 1", plain, []string{"./aloha"}, Spec{Targets: spec.Targets, Max: 1}, "--max-repetitions must be at least 2"},
		{"no target", plain, []string{"./aloha"}, Spec{Max: 10}, "--max-repetitions needs --until"},
		{"template with repetition", tmpl("./sim --seed={repetition} --out={resultdir}/x.csv"), nil, spec, ""},
		{"template with run", tmpl("./sim --seed={run} --out={resultdir}/x.csv"), nil, spec, ""},
		{"template without", tmpl("./sim --out={resultdir}/x.csv"), nil, spec, "uses neither {repetition} nor {run}"},
	} {
		err := Check(c.dir, c.argv, c.spec)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}

// TestRoundSelection: what a round asks OMNeT++ and a template for.
func TestRoundSelection(t *testing.T) {
	a := []results.Attr{{Name: "numHosts", Value: "10"}, {Name: "ia", Value: `"exp(2s)"`}}
	b := []results.Attr{{Name: "numHosts", Value: "20"}, {Name: "ia", Value: `"exp(2s)"`}}
	r := &rounds{spec: Spec{Max: 20}, argv: []string{"./aloha", "-c", "X"}, filter: "$numHosts<30", byKey: map[string]*combo{}}
	for _, v := range [][]results.Attr{a, b} {
		cb := &combo{key: comboKey(v), vars: v}
		r.combos = append(r.combos, cb)
		r.byKey[cb.key] = cb
	}
	var opt campaign.Options
	r.selectFirst(&opt, 3)
	if got := strings.Join(opt.Argv, " "); got != "./aloha --repeat=20 -c X -r ($numHosts<30) && ($repetition<3)" {
		t.Errorf("first round: %s", got)
	}
	want := r.selectGrowth(&opt, map[string][2]int{comboKey(b): {3, 6}})
	if got := opt.Argv[len(opt.Argv)-1]; want != 3 || got != `($numHosts<30) && (($numHosts==20 && $ia=="exp(2s)" && $repetition>=3 && $repetition<6))` {
		t.Errorf("second round: %d runs, -r %s", want, got)
	}

	// A template: run n is combination n/20, repetition n%20.
	tr := &rounds{spec: Spec{Max: 20}, tmpl: &simswarm.Command{Kind: simswarm.KindTemplate, Vars: []simswarm.Var{{Name: "x", Values: []string{"1", "2"}}}, Repeat: 20}}
	opt = campaign.Options{}
	tr.selectFirst(&opt, 3)
	if opt.Repeat != 20 || fmt.Sprint(opt.Runs) != "[0 1 2 20 21 22]" {
		t.Errorf("template, first round: repeat %d, runs %v", opt.Repeat, opt.Runs)
	}
	tr.selectGrowth(&opt, map[string][2]int{comboKey([]results.Attr{{Name: "x", Value: "2"}}): {3, 5}})
	if fmt.Sprint(opt.Runs) != "[23 24]" {
		t.Errorf("template, second round: runs %v", opt.Runs)
	}
}
