package dashboard

import (
	"fmt"
	"math"
	"strings"
)

// Chart is the throughput graph laid out for SVG, drawn on the server so
// that the page needs no chart library: runs finished per minute (line and
// area, left axis) and the share that failed (red line, right axis).
type Chart struct {
	W, H                 float64
	Left, Right, Top, Bo float64 // plot area edges
	Line, Area, Fail     string  // SVG path data
	Points               []ChartPoint
	FailPoints           []ChartPoint
	YTicks, XTicks       []Tick
	Max                  int
	Empty                bool
}

// MidX and MidY are the plot area's centre, for the "no runs" note.
func (c Chart) MidX() float64 { return (c.Left + c.Right) / 2 }
func (c Chart) MidY() float64 { return (c.Top + c.Bo) / 2 }

// ChartPoint is a marked minute, with its tooltip.
type ChartPoint struct {
	X, Y  float64
	Title string
}

// Tick is an axis label.
type Tick struct {
	X, Y  float64
	Label string
}

func chartOf(t Throughput) Chart {
	c := Chart{W: 1200, H: 230, Left: 40, Right: 1200 - 44, Top: 12, Bo: 230 - 26}
	n := len(t.Minutes)
	if n == 0 {
		c.Empty = true
		return c
	}
	// The current minute has only begun: its point is the estimate for the
	// last sixty seconds, so the line does not dip at its end.
	total := func(i int) float64 {
		if i == n-1 {
			return t.PerMinute
		}
		return float64(t.Minutes[i].Succeeded + t.Minutes[i].Failed)
	}
	peak := 0
	for i := range t.Minutes {
		peak = max(peak, int(math.Ceil(total(i))))
	}
	c.Empty = peak == 0
	c.Max = niceMax(peak)
	x := func(i int) float64 {
		if n == 1 {
			return c.Right
		}
		return c.Left + (c.Right-c.Left)*float64(i)/float64(n-1)
	}
	y := func(v float64, top float64) float64 { return c.Bo - (c.Bo-c.Top)*v/top }
	var line, fail strings.Builder
	inFail := false
	for i, m := range t.Minutes {
		runs := m.Succeeded + m.Failed
		px, py := x(i), y(total(i), float64(c.Max))
		if i == 0 {
			fmt.Fprintf(&line, "M%.1f %.1f", px, py)
		} else {
			fmt.Fprintf(&line, " L%.1f %.1f", px, py)
		}
		label := m.Minute.Local().Format("15:04")
		if i == n-1 && total(i) > 0 {
			c.Points = append(c.Points, ChartPoint{X: px, Y: py, Title: fmt.Sprintf("last 60 s: about %.0f runs", total(i))})
		} else if runs > 0 {
			c.Points = append(c.Points, ChartPoint{X: px, Y: py, Title: fmt.Sprintf("%s: %d runs finished, %d failed", label, runs, m.Failed)})
		}
		if runs > 0 {
			rate := float64(m.Failed) / float64(runs)
			fy := y(rate, 1)
			if inFail {
				fmt.Fprintf(&fail, " L%.1f %.1f", px, fy)
			} else {
				fmt.Fprintf(&fail, " M%.1f %.1f", px, fy)
			}
			inFail = true
			if m.Failed > 0 {
				c.FailPoints = append(c.FailPoints, ChartPoint{X: px, Y: fy, Title: fmt.Sprintf("%s: %.0f%% failed", label, 100*rate)})
			}
		} else {
			inFail = false
		}
	}
	c.Line = line.String()
	c.Area = fmt.Sprintf("%s L%.1f %.1f L%.1f %.1f Z", c.Line, x(n-1), c.Bo, x(0), c.Bo)
	c.Fail = strings.TrimSpace(fail.String())
	for _, v := range []int{0, c.Max / 2, c.Max} {
		c.YTicks = append(c.YTicks, Tick{X: c.Left - 8, Y: y(float64(v), float64(c.Max)), Label: fmt.Sprint(v)})
	}
	c.XTicks = append(c.XTicks, Tick{X: x(0), Y: c.Bo + 18, Label: fmt.Sprintf("−%d min", n-1)})
	for _, ago := range []int{45, 30, 15} {
		if ago < n-1 {
			c.XTicks = append(c.XTicks, Tick{X: x(n - 1 - ago), Y: c.Bo + 18, Label: fmt.Sprintf("−%d min", ago)})
		}
	}
	c.XTicks = append(c.XTicks, Tick{X: x(n - 1), Y: c.Bo + 18, Label: "now"})
	return c
}

// niceMax rounds a peak up to a round number whose half is round too, so
// the axis reads easily; never below 4, so an idle graph has a scale.
func niceMax(v int) int {
	if v <= 4 {
		return 4
	}
	p := math.Pow(10, math.Floor(math.Log10(float64(v))))
	for _, m := range []float64{1, 1.2, 1.6, 2, 3, 4, 5, 6, 8, 10} {
		if top := int(math.Round(m * p)); v <= top && top%2 == 0 {
			return top
		}
	}
	return v + v%2
}
