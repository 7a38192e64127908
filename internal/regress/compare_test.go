package regress

import (
	"math"
	"strings"
	"testing"

	"github.com/simswarm/simswarm/internal/results"
)

func series(name string, vals ...float64) Series {
	return Series{Vars: []results.Attr{{Name: "n", Value: "1"}}, Module: "Net.server", Name: name, Values: vals}
}

// TestWelch: the p-value of Welch's test as R's t.test(a, b) gives it
// (t = -1.8974, df = 5.8824, p-value = 0.1075), and the one-sample test
// against a single run.
func TestWelch(t *testing.T) {
	method, p := test([]float64{1, 2, 3, 4, 5}, []float64{2, 4, 6, 8, 10})
	if method != "welch" || math.Abs(p-0.1075) > 0.0005 {
		t.Errorf("Welch: %s p=%g, want welch 0.1075", method, p)
	}
	// t.test(c(2,4,6,8,10), mu = 3): t = 2.1213, df = 4, p-value = 0.1012.
	method, p = test([]float64{3}, []float64{2, 4, 6, 8, 10})
	if method != "one-sample" || math.Abs(p-0.1012) > 0.0005 {
		t.Errorf("one-sample: %s p=%g, want one-sample 0.1012", method, p)
	}
	if _, p := test([]float64{1, 1}, []float64{1, 1, 1}); p != 1 {
		t.Errorf("equal constants: p=%g, want 1", p)
	}
	if _, p := test([]float64{1, 1}, []float64{2, 2}); p != 0 {
		t.Errorf("different constants: p=%g, want 0", p)
	}
}

// TestCompare: exact single runs, Holm's adjusted p-values (0.01, 0.03,
// 0.04 over three tests: 0.03, 0.06, 0.06), the tolerance, missing and
// new series.
func TestCompare(t *testing.T) {
	vs := []Verdict{{P: 0.01}, {P: 0.04}, {P: 0.03}}
	holm(vs, []int{0, 1, 2})
	for i, want := range []float64{0.03, 0.06, 0.06} {
		if math.Abs(vs[i].Adjusted-want) > 1e-12 {
			t.Errorf("Holm: p %g adjusted to %g, want %g", vs[i].P, vs[i].Adjusted, want)
		}
	}

	base := &Baseline{Series: []Series{
		series("exact", 0.25),
		series("drift", 0.25),
		series("noise", 10, 11, 9, 10.5, 9.5, 10.2, 9.8, 10.1, 9.9, 10),
		series("shift", 10, 11, 9, 10.5, 9.5, 10.2, 9.8, 10.1, 9.9, 10),
		series("gone", 1),
	}}
	cur := &Baseline{Series: []Series{
		series("exact", 0.25),
		series("drift", 0.2500001),
		series("noise", 10.1, 9.9, 10.3, 9.6, 10.4, 9.7, 10.6, 9.5, 10, 10.2),
		series("shift", 12, 13, 11, 12.5, 11.5, 12.2, 11.8, 12.1, 11.9, 12),
		series("fresh", 1),
	}}
	rep := Compare(base, cur, Default)
	got := map[string]string{}
	for _, v := range rep.Verdicts {
		got[v.Series.Name] = v.Outcome
	}
	want := map[string]string{"exact": Same, "drift": Changed, "noise": Same, "shift": Changed, "gone": Missing, "fresh": New}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("%s: %s, want %s", n, got[n], w)
		}
	}
	if rep.OK() || rep.Changed != 4 || rep.Tested != 2 {
		t.Errorf("report: %d changed, %d tested", rep.Changed, rep.Tested)
	}
	loose := Compare(base, cur, Options{Alpha: 0.01, Tolerance: 0.25})
	for _, v := range loose.Verdicts {
		if (v.Series.Name == "drift" || v.Series.Name == "shift") && v.Outcome != Same {
			t.Errorf("%s within a 25%% tolerance: %s", v.Series.Name, v.Outcome)
		}
	}
	var b strings.Builder
	if err := rep.WriteTable(&b, true); err != nil || strings.Contains(b.String(), "noise") || !strings.Contains(b.String(), "+20.00%") {
		t.Errorf("table of changes:\n%s", b.String())
	}
}

// TestEncode: a baseline survives its file, one series a line.
func TestEncode(t *testing.T) {
	b := &Baseline{Format: Format, Name: "x-1", Series: []Series{series("a", 1, 2), {Module: "M", Name: "s", Field: "mean", Values: []float64{3, math.NaN(), math.Inf(-1)}}}}
	data, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n    {"); n != 2 {
		t.Errorf("%d series lines:\n%s", n, data)
	}
	back, err := Decode(data)
	if err != nil || len(back.Series) != 2 || back.Series[1].Label() != "s.mean" || back.Series[0].Values[1] != 2 || !math.IsNaN(back.Series[1].Values[1]) || !math.IsInf(back.Series[1].Values[2], -1) {
		t.Fatalf("decoded %+v, %v from\n%s", back, err, data)
	}
	if _, err := Decode([]byte(`{"format": 9, "name": "x"}`)); err == nil {
		t.Error("a format from the future was read")
	}
}
