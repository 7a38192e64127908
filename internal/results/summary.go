package results

import (
	"context"
	"io"
	"math"
	"strings"
)

// Scalars calls fn with every scalar of the files that passes the filter,
// with its run (iteration variables, repetition, attributes): what a
// precision-driven campaign or a plot needs of a result directory.
func Scalars(ctx context.Context, files []string, filter Options, fn func(*Item) error) error {
	filter.Vectors = false
	return Walk(ctx, files, filter, func(it *Item) error {
		if it.Type != TypeScalar {
			return nil
		}
		return fn(it)
	})
}

// Group is the statistics of one scalar over the repetitions of one
// combination of iteration variables.
type Group struct {
	Vars     []Attr // iteration variables, repetition excluded
	Module   string
	Name     string
	N        int
	Mean     float64
	Stddev   float64 // sample standard deviation; NaN for n < 2
	CI95     float64 // half-width of the 95 % confidence interval of the mean (Student t); NaN for n < 2
	Min, Max float64
}

// Acc accumulates values with Welford's method: numerically stable, one
// pass, constant memory.
type Acc struct {
	N        int
	mean, m2 float64
	Min, Max float64
}

// Add takes one value.
func (a *Acc) Add(x float64) {
	if a.N == 0 {
		a.Min, a.Max = x, x
	}
	a.N++
	d := x - a.mean
	a.mean += d / float64(a.N)
	a.m2 += d * (x - a.mean)
	a.Min, a.Max = math.Min(a.Min, x), math.Max(a.Max, x)
}

// Merge adds the values another accumulator took (Chan et al.'s formula).
func (a *Acc) Merge(b Acc) {
	if b.N == 0 {
		return
	}
	if a.N == 0 {
		*a = b
		return
	}
	n := float64(a.N + b.N)
	d := b.mean - a.mean
	a.mean += d * float64(b.N) / n
	a.m2 += b.m2 + d*d*float64(a.N)*float64(b.N)/n
	a.N += b.N
	a.Min, a.Max = math.Min(a.Min, b.Min), math.Max(a.Max, b.Max)
}

// Mean of the values taken; NaN when none.
func (a *Acc) Mean() float64 {
	if a.N == 0 {
		return math.NaN()
	}
	return a.mean
}

// Stddev is the sample standard deviation; NaN below two values.
func (a *Acc) Stddev() float64 {
	if a.N < 2 {
		return math.NaN()
	}
	return math.Sqrt(a.m2 / float64(a.N-1))
}

// HalfWidth is the half-width of the confidence interval of the mean at
// the given level (0.95 for 95 %), from Student's t with n-1 degrees of
// freedom; NaN below two values.
func (a *Acc) HalfWidth(level float64) float64 {
	if a.N < 2 {
		return math.NaN()
	}
	return StudentT(1-(1-level)/2, a.N-1) * a.Stddev() / math.Sqrt(float64(a.N))
}

// Summarizer groups scalars by (iteration variables, module, name) and
// accumulates each group over repetitions. Memory grows with the number
// of groups, not of runs.
type Summarizer struct {
	groups map[string]*sumGroup
	order  []*sumGroup
	key    strings.Builder
}

type sumGroup struct {
	vars         []Attr
	module, name string
	acc          Acc
}

// NewSummarizer returns an empty summarizer.
func NewSummarizer() *Summarizer { return &Summarizer{groups: map[string]*sumGroup{}} }

// Add takes one scalar of a run.
func (s *Summarizer) Add(run *Run, module, name string, v float64) {
	s.key.Reset()
	for _, a := range run.Itervars {
		s.key.WriteString(a.Name)
		s.key.WriteByte(0)
		s.key.WriteString(a.Value)
		s.key.WriteByte(0)
	}
	s.key.WriteByte(1)
	s.key.WriteString(module)
	s.key.WriteByte(0)
	s.key.WriteString(name)
	k := s.key.String()
	g := s.groups[k]
	if g == nil {
		g = &sumGroup{vars: run.Itervars, module: module, name: name}
		s.groups[k] = g
		s.order = append(s.order, g)
	}
	g.acc.Add(v)
}

// Groups returns the groups in the order their first value came.
func (s *Summarizer) Groups() []Group {
	out := make([]Group, len(s.order))
	for i, g := range s.order {
		out[i] = Group{Vars: g.vars, Module: g.module, Name: g.name, N: g.acc.N, Mean: g.acc.Mean(), Stddev: g.acc.Stddev(),
			CI95: g.acc.HalfWidth(0.95), Min: g.acc.Min, Max: g.acc.Max}
	}
	return out
}

// Summarize reads the scalars of files (through the filter) and groups them.
func Summarize(ctx context.Context, files []string, opt Options) ([]Group, error) {
	s := NewSummarizer()
	err := Scalars(ctx, files, opt, func(it *Item) error {
		s.Add(it.Run, it.Module, it.Name, it.Value)
		return nil
	})
	return s.Groups(), err
}

// WriteSummary writes groups as a table: one column per iteration
// variable, then module, name, n, mean, stddev, ci95, min, max.
func WriteSummary(w io.Writer, format string, groups []Group) error {
	var names []string
	seen := map[string]bool{}
	for _, g := range groups {
		for _, a := range g.Vars {
			if !seen[a.Name] {
				seen[a.Name] = true
				names = append(names, a.Name)
			}
		}
	}
	t := &Table{}
	fixed := map[string]bool{"module": true, "name": true, "n": true, "mean": true, "stddev": true, "ci95": true, "min": true, "max": true}
	for _, n := range names {
		col := n
		if fixed[col] {
			col = "itervar:" + n
		}
		t.cols = append(t.cols, column{col, cString, func(r *row) cell {
			v, _ := lookup(r.group.Vars, n)
			return str(v)
		}})
	}
	g := func(f func(*Group) float64) func(*row) cell {
		return func(r *row) cell { return num(f(r.group)) }
	}
	t.cols = append(t.cols,
		column{"module", cString, func(r *row) cell { return str(r.group.Module) }},
		column{"name", cString, func(r *row) cell { return str(r.group.Name) }},
		column{"n", cInt, func(r *row) cell { return cell{kind: kInt, i: int64(r.group.N)} }},
		column{"mean", cFloat, g(func(x *Group) float64 { return x.Mean })},
		column{"stddev", cFloat, g(func(x *Group) float64 { return x.Stddev })},
		column{"ci95", cFloat, g(func(x *Group) float64 { return x.CI95 })},
		column{"min", cFloat, g(func(x *Group) float64 { return x.Min })},
		column{"max", cFloat, g(func(x *Group) float64 { return x.Max })},
	)
	rw, err := newRowWriter(format, w)
	if err != nil {
		return err
	}
	if err := rw.header(t); err != nil {
		return err
	}
	for i := range groups {
		if err := rw.write(&row{group: &groups[i]}); err != nil {
			return err
		}
	}
	return rw.close()
}

// StudentT returns the p-quantile of Student's t distribution with df
// degrees of freedom (StudentT(0.975, 9) = 2.262...), by bisection on its
// distribution function.
func StudentT(p float64, df int) float64 {
	if df < 1 || !(p > 0 && p < 1) {
		return math.NaN()
	}
	if p < 0.5 {
		return -StudentT(1-p, df)
	}
	lo, hi := 0.0, 1.0
	for tCDF(hi, float64(df)) < p {
		hi *= 2
		if hi > 1e12 {
			return math.Inf(1)
		}
	}
	for i := 0; i < 200 && hi-lo > 1e-13*hi; i++ {
		mid := (lo + hi) / 2
		if tCDF(mid, float64(df)) < p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// tCDF is P(T ≤ t) for t ≥ 0: 1 - I_x(df/2, 1/2)/2 with x = df/(df+t²).
func tCDF(t, df float64) float64 {
	x := df / (df + t*t)
	return 1 - 0.5*regIncBeta(df/2, 0.5, x)
}

// regIncBeta is the regularized incomplete beta function I_x(a, b),
// evaluated with Lentz's continued fraction.
func regIncBeta(a, b, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	la, _ := math.Lgamma(a + b)
	lb, _ := math.Lgamma(a)
	lc, _ := math.Lgamma(b)
	front := math.Exp(la - lb - lc + a*math.Log(x) + b*math.Log(1-x))
	if x > (a+1)/(a+b+2) {
		return 1 - front*betaCF(b, a, 1-x)/b
	}
	return front * betaCF(a, b, x) / a
}

func betaCF(a, b, x float64) float64 {
	const tiny = 1e-300
	nonzero := func(v float64) float64 {
		if math.Abs(v) < tiny {
			return tiny
		}
		return v
	}
	c, d := 1.0, 1/nonzero(1-(a+b)*x/(a+1))
	f := d
	// step applies one coefficient of the fraction and returns its factor.
	step := func(num float64) float64 {
		d = 1 / nonzero(1+num*d)
		c = nonzero(1 + num/c)
		return d * c
	}
	for m := 1; m <= 300; m++ {
		fm := float64(m)
		f *= step(fm * (b - fm) * x / ((a + 2*fm - 1) * (a + 2*fm)))
		del := step(-(a + fm) * (a + b + fm) * x / ((a + 2*fm) * (a + 2*fm + 1)))
		f *= del
		if math.Abs(del-1) < 1e-15 {
			break
		}
	}
	return f
}
