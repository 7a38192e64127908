package regress

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"text/tabwriter"

	"gonum.org/v1/gonum/stat/distuv"
)

// Options say how strict a comparison is.
type Options struct {
	// Alpha is the family-wise error rate over all the scalars tested
	// (Holm's correction): the chance that a comparison of results with
	// no real change calls any scalar changed.
	Alpha float64
	// Tolerance is a relative difference of means (0.01: 1 %) that counts
	// as the same whatever the test says; for single runs, the difference
	// of the values allowed (0: exactly equal).
	Tolerance float64
}

// Default is the comparison's default strictness.
var Default = Options{Alpha: 0.01}

// Verdict outcomes.
const (
	Same    = "same"
	Changed = "changed"
	Missing = "missing" // in the baseline, not in the results
	New     = "new"     // in the results, not in the baseline
)

// Verdict is one series compared.
type Verdict struct {
	Series   Series // the baseline's (the results' for New)
	Outcome  string
	Method   string // "exact", "welch", "one-sample", "" for Missing and New
	BaseN    int
	BaseMean float64
	BaseSD   float64
	NewN     int
	NewMean  float64
	NewSD    float64
	Effect   float64 // NewMean - BaseMean
	Relative float64 // Effect / |BaseMean|; ±Inf when the baseline's mean is 0 and the effect is not
	P        float64 // the test's p-value (NaN for exact comparisons)
	Adjusted float64 // Holm-adjusted p-value (NaN for exact comparisons)
}

// Report is a comparison's outcome.
type Report struct {
	Verdicts []Verdict
	Same     int
	Changed  int // Changed, Missing and New together
	Tested   int // series compared by a test (Holm's family size)
	Options  Options
}

// OK reports whether nothing changed.
func (r *Report) OK() bool { return r.Changed == 0 }

// Compare compares results (read as a baseline, e.g. by Read) with a
// baseline, series by series: exactly where both sides hold one value (a
// deterministic single run), else by Welch's two-sample t-test (a
// one-sample test when one side holds one value), with Holm's step-down
// correction over every tested series. A series is changed when its
// corrected p-value is below Alpha and its means differ by more than the
// tolerance.
func Compare(base, cur *Baseline, o Options) *Report {
	rep := &Report{Options: o}
	have := map[string]*Series{}
	for i := range cur.Series {
		have[cur.Series[i].key()] = &cur.Series[i]
	}
	seen := map[string]bool{}
	var tested []int
	for i := range base.Series {
		b := &base.Series[i]
		k := b.key()
		seen[k] = true
		v := Verdict{Series: *b, P: math.NaN(), Adjusted: math.NaN()}
		v.BaseN, v.BaseMean, v.BaseSD = moments(b.Values)
		c := have[k]
		if c == nil {
			v.Outcome = Missing
			rep.Verdicts = append(rep.Verdicts, v)
			continue
		}
		v.NewN, v.NewMean, v.NewSD = moments(c.Values)
		v.Effect = v.NewMean - v.BaseMean
		v.Relative = relative(v.Effect, v.BaseMean)
		if v.BaseN == 1 && v.NewN == 1 {
			v.Method = "exact"
			v.Outcome = Same
			if !within(v, o.Tolerance) {
				v.Outcome = Changed
			}
		} else {
			v.Method, v.P = test(b.Values, c.Values)
			tested = append(tested, len(rep.Verdicts))
		}
		rep.Verdicts = append(rep.Verdicts, v)
	}
	holm(rep.Verdicts, tested)
	for _, i := range tested {
		v := &rep.Verdicts[i]
		v.Outcome = Same
		if v.Adjusted < o.Alpha && !within(*v, o.Tolerance) {
			v.Outcome = Changed
		}
	}
	rep.Tested = len(tested)
	for i := range cur.Series {
		c := &cur.Series[i]
		if seen[c.key()] {
			continue
		}
		v := Verdict{Series: *c, Outcome: New, P: math.NaN(), Adjusted: math.NaN()}
		v.NewN, v.NewMean, v.NewSD = moments(c.Values)
		rep.Verdicts = append(rep.Verdicts, v)
	}
	for _, v := range rep.Verdicts {
		if v.Outcome == Same {
			rep.Same++
		} else {
			rep.Changed++
		}
	}
	return rep
}

// within reports whether a difference is inside the tolerance: equal
// values (NaN equal to NaN: a scalar OMNeT++ records as nan stays nan),
// or means apart by at most Tolerance of the baseline's.
func within(v Verdict, tol float64) bool {
	if v.NewMean == v.BaseMean || math.IsNaN(v.NewMean) && math.IsNaN(v.BaseMean) {
		return true
	}
	return math.Abs(v.Effect) <= tol*math.Abs(v.BaseMean)
}

func relative(effect, base float64) float64 {
	switch {
	case effect == 0:
		return 0
	case base == 0:
		return math.Copysign(math.Inf(1), effect)
	}
	return effect / math.Abs(base)
}

// moments are n, the mean and the sample standard deviation (0 for one
// value).
func moments(xs []float64) (n int, mean, sd float64) {
	n = len(xs)
	if n == 0 {
		return 0, math.NaN(), math.NaN()
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(n)
	if n < 2 {
		return n, mean, 0
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return n, mean, math.Sqrt(ss / float64(n-1))
}

// test is Welch's two-sample t-test of equal means, two-sided; with one
// value on one side, a one-sample t-test of the other side's mean against
// it (the single run taken as exact).
func test(a, b []float64) (method string, p float64) {
	na, ma, sa := moments(a)
	nb, mb, sb := moments(b)
	if na < 2 && nb < 2 {
		return "exact", math.NaN()
	}
	method = "welch"
	var se2, df float64
	switch {
	case na < 2:
		method, se2, df = "one-sample", sb*sb/float64(nb), float64(nb-1)
	case nb < 2:
		method, se2, df = "one-sample", sa*sa/float64(na), float64(na-1)
	default:
		va, vb := sa*sa/float64(na), sb*sb/float64(nb)
		se2 = va + vb
		// Welch–Satterthwaite.
		df = se2 * se2 / (va*va/float64(na-1) + vb*vb/float64(nb-1))
	}
	d := mb - ma
	if se2 == 0 || math.IsNaN(se2) {
		// No spread on either side: equal means are the same, anything
		// else is a certain change.
		if d == 0 || math.IsNaN(d) && math.IsNaN(ma) && math.IsNaN(mb) {
			return method, 1
		}
		return method, 0
	}
	t := math.Abs(d) / math.Sqrt(se2)
	dist := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}
	return method, 2 * dist.Survival(t)
}

// holm sets the Holm-adjusted p-values of the verdicts at idx: sorted
// ascending, p_(i) times (m-i), made monotone, at most 1.
func holm(vs []Verdict, idx []int) {
	order := append([]int(nil), idx...)
	sort.SliceStable(order, func(a, b int) bool { return pOrder(vs[order[a]].P) < pOrder(vs[order[b]].P) })
	m := len(order)
	running := 0.0
	for i, j := range order {
		adj := math.Min(1, float64(m-i)*pOrder(vs[j].P))
		running = math.Max(running, adj)
		vs[j].Adjusted = running
	}
}

// pOrder puts a p-value that could not be computed last, as 1.
func pOrder(p float64) float64 {
	if math.IsNaN(p) {
		return 1
	}
	return p
}

// WriteTable prints the verdicts as a table, every series or (changedOnly)
// the changed ones, and a summary line.
func (r *Report) WriteTable(w io.Writer, changedOnly bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERDICT\tITERVARS\tMODULE\tNAME\tBASELINE\tRESULTS\tEFFECT\tP (HOLM)")
	for _, v := range r.Verdicts {
		if changedOnly && v.Outcome == Same {
			continue
		}
		vars := v.Series.VarsString()
		if vars == "" {
			vars = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Outcome, vars, v.Series.Module, v.Series.Label(),
			side(v.BaseN, v.BaseMean, v.BaseSD), side(v.NewN, v.NewMean, v.NewSD), effect(v), pvalue(v))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "compare: %d series, %d same, %d changed; %d tested (Welch, Holm at alpha %s), %d exact; tolerance %s\n",
		len(r.Verdicts), r.Same, r.Changed, r.Tested, formatFloat(r.Options.Alpha), r.exact(), percent(r.Options.Tolerance))
	return err
}

func (r *Report) exact() int {
	n := 0
	for _, v := range r.Verdicts {
		if v.Method == "exact" {
			n++
		}
	}
	return n
}

func side(n int, mean, sd float64) string {
	switch n {
	case 0:
		return "-"
	case 1:
		return formatFloat(mean)
	}
	return fmt.Sprintf("%s ± %s (n=%d)", formatFloat(mean), formatFloat(sd), n)
}

func effect(v Verdict) string {
	if v.Outcome == Missing || v.Outcome == New {
		return "-"
	}
	if v.Effect == 0 || math.IsNaN(v.Effect) {
		return "0"
	}
	if math.IsInf(v.Relative, 0) {
		return fmt.Sprintf("%+.4g", v.Effect)
	}
	return fmt.Sprintf("%+.4g (%+.2f%%)", v.Effect, 100*v.Relative)
}

func pvalue(v Verdict) string {
	if math.IsNaN(v.P) {
		if v.Method == "exact" {
			return "exact"
		}
		return "-"
	}
	return fmt.Sprintf("%.3g (%.3g)", v.P, v.Adjusted)
}

func percent(f float64) string { return strconv.FormatFloat(100*f, 'g', 4, 64) + "%" }

// WriteCSV writes every verdict as CSV: one row per series.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	num := func(f float64) string {
		if math.IsNaN(f) {
			return ""
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	_ = cw.Write([]string{"verdict", "method", "itervars", "module", "name", "field", "base_n", "base_mean", "base_stddev",
		"n", "mean", "stddev", "effect", "relative", "p", "p_holm"})
	for _, v := range r.Verdicts {
		_ = cw.Write([]string{v.Outcome, v.Method, v.Series.VarsString(), v.Series.Module, v.Series.Name, v.Series.Field,
			strconv.Itoa(v.BaseN), num(v.BaseMean), num(v.BaseSD), strconv.Itoa(v.NewN), num(v.NewMean), num(v.NewSD),
			num(v.Effect), num(v.Relative), num(v.P), num(v.Adjusted)})
	}
	cw.Flush()
	return cw.Error()
}
