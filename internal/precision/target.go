// Package precision runs a campaign until its results are precise enough
// (simswarm run --until): repetitions in rounds, each round an ordinary
// campaign, the confidence interval of a scalar's mean read from the
// results directory after each one, more repetitions only for the
// combinations of iteration variables that have not reached the target.
package precision

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Target is one precision goal: the half-width of the confidence interval
// of a scalar's mean over repetitions, below a bound.
type Target struct {
	Text   string  // as the user wrote it, for messages
	Scalar string  // MODULE.NAME as OMNeT++ writes it (a template result file: the column)
	Level  float64 // confidence level, 0.95 for ci95
	Bound  float64 // the half-width's bound: a fraction of |mean| when Relative
	// Relative: the bound is a fraction of the mean's magnitude (the
	// target was written with %); otherwise an absolute half-width.
	Relative  bool
	Inclusive bool // <= rather than <
}

// targetRE reads "SCALAR ciNN < VALUE[%]"; the scalar is everything before
// the last "ciNN" word, so names with spaces need no quoting.
var targetRE = regexp.MustCompile(`^\s*(.+?)\s+ci([0-9]+(?:\.[0-9]+)?)\s*(<=|<|>=|>|=)\s*(\S+?)\s*(%?)\s*$`)

// example is the form named in every parse error.
const example = `'MODULE.SCALAR ci95 < 5%' (relative half-width) or 'MODULE.SCALAR ci95 < 0.01' (absolute)`

// ParseTarget reads one --until expression.
func ParseTarget(s string) (Target, error) {
	m := targetRE.FindStringSubmatch(s)
	if m == nil {
		return Target{}, fmt.Errorf("--until %q: expected %s", s, example)
	}
	t := Target{Text: strings.TrimSpace(s), Scalar: strings.Trim(m[1], `"'`), Relative: m[5] == "%"}
	if t.Scalar == "" {
		return Target{}, fmt.Errorf("--until %q: no scalar named; expected %s", s, example)
	}
	level, _ := strconv.ParseFloat(m[2], 64)
	if !(level >= 50 && level < 100) {
		return Target{}, fmt.Errorf("--until %q: ci%s is not a confidence level: give one from ci50 to ci99.9 (ci95 is the usual one)", s, m[2])
	}
	t.Level = level / 100
	switch m[3] {
	case "<":
	case "<=":
		t.Inclusive = true
	default:
		return Target{}, fmt.Errorf("--until %q: a precision target bounds the half-width from above: write '<' (as in %s)", s, example)
	}
	v, err := strconv.ParseFloat(m[4], 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return Target{}, fmt.Errorf("--until %q: %q is not a number", s, m[4])
	}
	if v <= 0 {
		return Target{}, fmt.Errorf("--until %q: the target must be positive (a half-width of %s%s can never be reached)", s, m[4], m[5])
	}
	t.Bound = v
	if t.Relative {
		t.Bound = v / 100
	}
	return t, nil
}

// Met reports whether a half-width h around mean reaches the target. A
// zero half-width (every repetition gave the same value) always does.
func (t Target) Met(mean, h float64) bool {
	if math.IsNaN(h) {
		return false
	}
	if h == 0 {
		return true
	}
	b := t.Absolute(mean)
	if t.Inclusive {
		return h <= b
	}
	return h < b
}

// Absolute is the half-width the target allows around mean.
func (t Target) Absolute(mean float64) float64 {
	if t.Relative {
		return t.Bound * math.Abs(mean)
	}
	return t.Bound
}

// Precision renders the precision reached as the target is written: the
// relative half-width in percent, or the half-width.
func (t Target) Precision(mean, h float64) string {
	switch {
	case math.IsNaN(h):
		return "-"
	case !t.Relative:
		return strconv.FormatFloat(h, 'g', 4, 64)
	case h == 0:
		return "0%"
	case mean == 0:
		return "inf%"
	}
	return strconv.FormatFloat(100*h/math.Abs(mean), 'g', 3, 64) + "%"
}

// Goal renders the bound as written: "< 5%", "<= 0.01".
func (t Target) Goal() string {
	op := "<"
	if t.Inclusive {
		op = "<="
	}
	if t.Relative {
		return op + " " + strconv.FormatFloat(t.Bound*100, 'g', -1, 64) + "%"
	}
	return op + " " + strconv.FormatFloat(t.Bound, 'g', -1, 64)
}
