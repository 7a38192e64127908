package dashboard

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/results"
)

func scalarItems(vars []results.Attr, rep int, names ...string) []*results.Item {
	run := &results.Run{Itervars: vars, Attrs: []results.Attr{{Name: "repetition", Value: fmt.Sprint(rep)}}}
	var out []*results.Item
	for i, n := range names {
		out = append(out, &results.Item{Run: run, Type: results.TypeScalar, Module: "Net.sink", Name: n, Value: float64(i+1) * float64(rep+1)})
	}
	return out
}

// The plot pools repetitions per (series, x), orders numeric x values,
// and computes the confidence bars; the store's bounds hold.
func TestScalarStore(t *testing.T) {
	st := newScalarStore()
	now := time.Now()
	if !st.touch("c1", now) || st.touch("c1", now) {
		t.Fatal("touch: a new campaign must be read back once")
	}
	run := 0
	for _, rate := range []string{"10", "2", "5"} { // numeric, given out of order
		for _, mode := range []string{"a", "b"} {
			for rep := 0; rep < 3; rep++ {
				vars := []results.Attr{{Name: "rate", Value: rate}, {Name: "mode", Value: mode}, {Name: "fixed", Value: "1"}}
				if !st.add(scalarJob{campaign: "c1", run: run, finished: 1}, scalarItems(vars, rep, "thr", "delay"), true) {
					t.Fatal("add refused a new run")
				}
				run++
			}
		}
	}
	if st.add(scalarJob{campaign: "c1", run: 0, finished: 1}, nil, true) {
		t.Error("a run was counted twice")
	}
	st.add(scalarJob{campaign: "c1", run: 99, finished: 1}, nil, false)
	p := st.plots("c1", "Net.sink.delay", "", "")
	if p.Runs != 18 || p.Skipped != 1 || p.Y != "Net.sink.delay" || p.X != "rate" || p.Series != "mode" {
		t.Fatalf("plots: runs %d skipped %d y %q x %q series %q", p.Runs, p.Skipped, p.Y, p.X, p.Series)
	}
	if strings.Join(p.Vars, ",") != "rate,mode" {
		t.Errorf("variables offered %v: fixed takes one value", p.Vars)
	}
	c := p.Chart
	if len(c.Series) != 2 || len(c.Series[0].Points) != 3 {
		t.Fatalf("series %d", len(c.Series))
	}
	if got := []string{c.XTicks[0].Label, c.XTicks[1].Label, c.XTicks[2].Label}; strings.Join(got, ",") != "2,5,10" {
		t.Errorf("x order %v", got)
	}
	// delay = 2 × (rep+1): values 2, 4, 6: mean 4, sd 2, 95% half-width t(0.975,2)·2/√3.
	hw := 4.302653 * 2 / math.Sqrt(3)
	want := fmt.Sprintf("rate=2, mode=a: mean 4 over 3 runs, 95%% CI ±%s", formatTick(hw))
	if c.Series[0].Points[0].Title != want {
		t.Errorf("point title %q, want %q", c.Series[0].Points[0].Title, want)
	}
	pt := c.Series[0].Points[0]
	if !(pt.Hi < pt.Y && pt.Y < pt.Lo) {
		t.Errorf("confidence bar %v..%v around %v", pt.Hi, pt.Lo, pt.Y)
	}
	if one := st.plots("c1", "Net.sink.thr", "mode", "none"); one.X != "mode" || one.Series != "" || len(one.Chart.Series) != 1 || len(one.Chart.Series[0].Points) != 2 {
		t.Errorf("one line against mode: %+v", one)
	}

	// Bounds: scalar names per campaign, campaigns kept.
	var names []string
	for i := 0; i < plotNames+10; i++ {
		names = append(names, fmt.Sprintf("s%d", i))
	}
	st.add(scalarJob{campaign: "c1", run: 1000, finished: 1}, scalarItems(nil, 0, names...), true)
	if p := st.plots("c1", "", "", ""); len(p.Names) != plotNames || !p.Full {
		t.Errorf("%d scalar names kept (bound %d), full=%v", len(p.Names), plotNames, p.Full)
	}
	for i := 2; i <= plotCampaigns+1; i++ {
		st.touch(fmt.Sprintf("c%d", i), now.Add(time.Duration(i)*time.Second))
	}
	if st.tracked("c1") || len(st.camps) != plotCampaigns {
		t.Errorf("campaigns kept %d, c1 (least recently viewed) kept: %v", len(st.camps), st.tracked("c1"))
	}
}
