package dashboard

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/simswarm/simswarm/internal/results"
)

// Plots is the campaign page's results section: a scalar against an
// iteration variable, one series per value of another, and the histogram
// of run wall times.
type Plots struct {
	Names  []string `json:"scalars"`  // scalars to choose from
	Vars   []string `json:"itervars"` // iteration variables to choose from
	Y      string   `json:"y"`
	X      string   `json:"x"`
	Series string   `json:"series"`
	// SeriesAsked is the series the user chose: "" automatic, "none" one line.
	SeriesAsked string `json:"-"`
	Runs        int    `json:"runs"`    // runs whose scalars are in
	Skipped     int    `json:"skipped"` // succeeded runs whose scalars could not be read here
	Loading     bool   `json:"loading"`
	Full        bool   `json:"full"` // bounds reached: some scalars left out
	Chart       *ScalarChart
	Walls       *HistChart
}

// ScalarChart is the scalar plot laid out for SVG: per series, the mean at
// each x with its 95 % confidence bar (Student t over the runs pooled there).
type ScalarChart struct {
	W, H, Left, Right, Top, Bo float64
	Series                     []PlotSeries
	XTicks, YTicks             []Tick
	XLabel, YLabel             string
}

// PlotSeries is one line of the plot.
type PlotSeries struct {
	Label  string
	Color  string
	Path   string
	Points []PlotPoint
	LegX   float64
	LegY   float64
}

// PlotPoint is one mean with its confidence bar (Lo, Hi in SVG units;
// equal to Y when there is only one run).
type PlotPoint struct {
	X, Y, Lo, Hi float64
	Title        string
}

// MidX, MidY place the "nothing yet" note.
func (c ScalarChart) MidX() float64 { return (c.Left + c.Right) / 2 }
func (c ScalarChart) MidY() float64 { return (c.Top + c.Bo) / 2 }

// palette: distinguishable on white and for most colour vision.
var palette = []string{"#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f", "#475569", "#a16207"}

// plots builds the view for the chosen scalar and variables (defaults:
// the first scalar, the first variable with several values as x, the next
// one as series).
func (st *scalarStore) plots(id, y, x, series string) *Plots {
	st.mu.Lock()
	defer st.mu.Unlock()
	c := st.camps[id]
	if c == nil {
		return &Plots{Loading: true}
	}
	p := &Plots{Names: append([]string(nil), c.names...), Runs: c.runs, Skipped: c.skipped, Loading: c.loading, Full: c.full, SeriesAsked: series}
	// Variables that take a single value make poor axes; the one with the
	// most values makes the best x.
	var multi []string
	distinct := map[string]int{}
	for _, v := range c.vars {
		seen := map[string]bool{}
		for _, combo := range c.combos {
			if val, ok := attr(combo, v); ok {
				seen[val] = true
			}
		}
		if len(seen) > 1 {
			multi = append(multi, v)
			distinct[v] = len(seen)
		}
	}
	sort.SliceStable(multi, func(i, j int) bool { return distinct[multi[i]] > distinct[multi[j]] })
	p.Vars = multi
	if !contains(p.Names, y) && len(p.Names) > 0 {
		y = p.Names[0]
	}
	if !contains(multi, x) {
		x = ""
		if len(multi) > 0 {
			x = multi[0]
		}
	}
	// No series asked for: the next variable that varies; "none" for one line.
	switch {
	case series == "none":
		series = ""
	case !contains(multi, series) || series == x:
		series = ""
		for _, v := range multi {
			if v != x {
				series = v
				break
			}
		}
	}
	p.Y, p.X, p.Series = y, x, series
	ni, ok := c.nameIdx[y]
	if !ok || x == "" {
		return p
	}
	// Pool the accumulators of the combinations that share (series, x).
	type key struct{ s, x string }
	pooled := map[key]*results.Acc{}
	var sOrder, xOrder []string
	for ci, combo := range c.combos {
		a := c.acc[[2]int32{ni, int32(ci)}]
		if a == nil {
			continue
		}
		xv, _ := attr(combo, x)
		sv := ""
		if series != "" {
			sv, _ = attr(combo, series)
		}
		k := key{sv, xv}
		if pooled[k] == nil {
			pooled[k] = &results.Acc{}
			if !contains(sOrder, sv) {
				sOrder = append(sOrder, sv)
			}
			if !contains(xOrder, xv) {
				xOrder = append(xOrder, xv)
			}
		}
		pooled[k].Merge(*a)
	}
	numeric := true
	xs := map[string]float64{}
	for _, v := range xOrder {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			numeric = false
			break
		}
		xs[v] = f
	}
	sortValues(xOrder, numeric, xs)
	sortValues(sOrder, allNumeric(sOrder), nil)
	if !numeric {
		for i, v := range xOrder {
			xs[v] = float64(i)
		}
	}
	ch := &ScalarChart{W: 1200, H: 320, Left: 70, Right: 1200 - 170, Top: 14, Bo: 320 - 44, XLabel: x, YLabel: y}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, a := range pooled {
		m, hw := a.Mean(), a.HalfWidth(0.95)
		if math.IsNaN(hw) || math.IsInf(hw, 0) {
			hw = 0
		}
		lo, hi = math.Min(lo, m-hw), math.Max(hi, m+hw)
	}
	if math.IsInf(lo, 0) || math.IsNaN(lo) || math.IsNaN(hi) {
		return p
	}
	yTicks, ylo, yhi := niceTicks(lo, hi, 5)
	xlo, xhi := xs[xOrder[0]], xs[xOrder[len(xOrder)-1]]
	if xhi == xlo {
		xlo, xhi = xlo-1, xhi+1
	}
	px := func(v float64) float64 {
		pad := 0.04 * (ch.Right - ch.Left)
		return ch.Left + pad + (ch.Right-ch.Left-2*pad)*(v-xlo)/(xhi-xlo)
	}
	py := func(v float64) float64 { return ch.Bo - (ch.Bo-ch.Top)*(v-ylo)/(yhi-ylo) }
	for _, t := range yTicks {
		ch.YTicks = append(ch.YTicks, Tick{X: ch.Left - 8, Y: py(t), Label: formatTick(t)})
	}
	for _, v := range xOrder {
		ch.XTicks = append(ch.XTicks, Tick{X: px(xs[v]), Y: ch.Bo + 18, Label: v})
	}
	for si, sv := range sOrder {
		ps := PlotSeries{Label: series + "=" + sv, Color: palette[si%len(palette)], LegX: ch.Right + 24, LegY: ch.Top + 10 + 20*float64(si)}
		if series == "" {
			ps.Label = "all runs"
		}
		var path strings.Builder
		for _, xv := range xOrder {
			a := pooled[key{sv, xv}]
			if a == nil {
				continue
			}
			m, hw := a.Mean(), a.HalfWidth(0.95)
			pt := PlotPoint{X: px(xs[xv]), Y: py(m), Lo: py(m), Hi: py(m)}
			title := fmt.Sprintf("%s=%s", x, xv)
			if series != "" {
				title += fmt.Sprintf(", %s=%s", series, sv)
			}
			title += fmt.Sprintf(": mean %s over %d runs", formatTick(m), a.N)
			if !math.IsNaN(hw) && !math.IsInf(hw, 0) {
				pt.Lo, pt.Hi = py(m-hw), py(m+hw)
				title += fmt.Sprintf(", 95%% CI ±%s", formatTick(hw))
			}
			pt.Title = title
			if path.Len() == 0 {
				fmt.Fprintf(&path, "M%.1f %.1f", pt.X, pt.Y)
			} else {
				fmt.Fprintf(&path, " L%.1f %.1f", pt.X, pt.Y)
			}
			ps.Points = append(ps.Points, pt)
		}
		ps.Path = path.String()
		ch.Series = append(ch.Series, ps)
	}
	p.Chart = ch
	return p
}

func attr(as []results.Attr, name string) (string, bool) {
	for _, a := range as {
		if a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

func allNumeric(vs []string) bool {
	for _, v := range vs {
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return false
		}
	}
	return true
}

// sortValues orders variable values numerically when they are numbers,
// else keeps the order the runs gave them.
func sortValues(vs []string, numeric bool, known map[string]float64) {
	if !numeric {
		return
	}
	val := func(s string) float64 {
		if known != nil {
			return known[s]
		}
		f, _ := strconv.ParseFloat(s, 64)
		return f
	}
	sort.SliceStable(vs, func(i, j int) bool { return val(vs[i]) < val(vs[j]) })
}

// niceTicks returns about n round tick values covering [lo, hi], and the
// axis range they span.
func niceTicks(lo, hi float64, n int) ([]float64, float64, float64) {
	if hi == lo {
		d := math.Max(math.Abs(lo)*0.1, 1e-9)
		lo, hi = lo-d, hi+d
	}
	raw := (hi - lo) / float64(n-1)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	start := math.Floor(lo/step) * step
	end := math.Ceil(hi/step) * step
	var out []float64
	for v := start; v <= end+step/2; v += step {
		out = append(out, math.Round(v/step)*step)
	}
	return out, start, end
}

func formatTick(v float64) string {
	if v == 0 {
		return "0"
	}
	return strconv.FormatFloat(v, 'g', 5, 64)
}

// HistChart is the histogram of run wall times.
type HistChart struct {
	W, H, Left, Right, Top, Bo float64
	Bars                       []HistBar
	XTicks, YTicks             []Tick
	Runs                       int
}

// HistBar is one bin.
type HistBar struct {
	X, Y, W, H float64
	Title      string
}

// wallHistogram bins the wall times of a campaign's finished runs (the
// index keeps them, so this costs no engine read).
func (m *model) wallHistogram(id string) *HistChart {
	m.mu.RLock()
	var walls []float64
	if c := m.campaigns[id]; c != nil {
		for _, e := range c.runs {
			if (e.state == stSucceeded || e.state == stFailed) && !e.reused && e.wall > 0 {
				walls = append(walls, e.wall.Seconds())
			}
		}
	}
	m.mu.RUnlock()
	h := &HistChart{W: 1200, H: 200, Left: 70, Right: 1200 - 170, Top: 10, Bo: 200 - 40, Runs: len(walls)}
	if len(walls) == 0 {
		return h
	}
	lo, hi := walls[0], walls[0]
	for _, w := range walls {
		lo, hi = math.Min(lo, w), math.Max(hi, w)
	}
	const bins = 20
	ticks, xlo, xhi := niceTicks(lo, hi, 6)
	width := (xhi - xlo) / bins
	counts := make([]int, bins)
	for _, w := range walls {
		i := int((w - xlo) / width)
		counts[min(max(i, 0), bins-1)]++
	}
	peak := 0
	for _, c := range counts {
		peak = max(peak, c)
	}
	top := niceMax(peak)
	px := func(v float64) float64 { return h.Left + (h.Right-h.Left)*(v-xlo)/(xhi-xlo) }
	for i, c := range counts {
		x0, x1 := px(xlo+float64(i)*width), px(xlo+float64(i+1)*width)
		bh := (h.Bo - h.Top) * float64(c) / float64(top)
		h.Bars = append(h.Bars, HistBar{X: x0 + 1, Y: h.Bo - bh, W: math.Max(x1-x0-2, 1), H: bh,
			Title: fmt.Sprintf("%s–%s s: %d runs", formatTick(xlo+float64(i)*width), formatTick(xlo+float64(i+1)*width), c)})
	}
	for _, t := range ticks {
		h.XTicks = append(h.XTicks, Tick{X: px(t), Y: h.Bo + 18, Label: formatTick(t) + " s"})
	}
	for _, v := range []int{0, top / 2, top} {
		h.YTicks = append(h.YTicks, Tick{X: h.Left - 8, Y: h.Bo - (h.Bo-h.Top)*float64(v)/float64(top), Label: strconv.Itoa(v)})
	}
	return h
}
