package dashboard

import (
	"strings"
	"testing"
	"time"
)

func TestNiceMax(t *testing.T) {
	for in, want := range map[int]int{0: 4, 3: 4, 5: 6, 7: 8, 9: 10, 11: 12, 13: 16, 58: 60, 61: 80, 99: 100, 101: 120, 250: 300, 1234: 1600} {
		if got := niceMax(in); got != want {
			t.Errorf("niceMax(%d) = %d, want %d", in, got, want)
		}
	}
}

// TestChart: one point per minute with runs, the current minute drawn at
// the estimate for the last sixty seconds, failures on their own line.
func TestChart(t *testing.T) {
	var tp Throughput
	base := time.Now().Truncate(time.Minute).Add(-59 * time.Minute)
	for i := 0; i < 60; i++ {
		p := MinutePoint{Minute: base.Add(time.Duration(i) * time.Minute)}
		if i >= 50 {
			p.Succeeded, p.Failed = 9, 1
		}
		tp.Minutes = append(tp.Minutes, p)
	}
	tp.PerMinute = 7.5
	c := chartOf(tp)
	if c.Empty || c.Max != 10 || len(c.Points) != 10 || len(c.FailPoints) != 10 {
		t.Fatalf("chart: max %d, %d points, %d failure points", c.Max, len(c.Points), len(c.FailPoints))
	}
	if last := c.Points[len(c.Points)-1]; !strings.Contains(last.Title, "last 60 s") {
		t.Errorf("last point %+v", last)
	}
	if strings.Count(c.Line, "L") != 59 || !strings.HasPrefix(c.Fail, "M") {
		t.Errorf("paths: line %q fail %q", c.Line, c.Fail)
	}
	if e := chartOf(Throughput{Minutes: make([]MinutePoint, 60)}); !e.Empty || len(e.Points) != 0 {
		t.Errorf("idle chart: %+v", e)
	}
}
