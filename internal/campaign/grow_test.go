package campaign

import (
	"slices"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
)

func TestRenumbered(t *testing.T) {
	files := []simswarm.File{{Name: "Grow-#2.out"}, {Name: "sub/Grow-#2.sca"}, {Name: "Grow-numHosts=10-#2.sca"}, {Name: "Grow-#21.vec"}, {Name: "Other-#2.sca"}}
	got := renumbered(files, "Grow", 2, 7)
	want := []string{"Grow-#7.out", "sub/Grow-#7.sca", "Grow-numHosts=10-#2.sca", "Grow-#21.vec", "Other-#2.sca"}
	for i := range want {
		if got[i].Name != want[i] {
			t.Errorf("%s -> %s, want %s", files[i].Name, got[i].Name, want[i])
		}
	}
	if files[0].Name != "Grow-#2.out" {
		t.Error("renumbered changed its input")
	}
}

// TestLongestFirst: with history the long run goes first, runs never seen
// before it; the estimate is the longest-first schedule's makespan.
func TestLongestFirst(t *testing.T) {
	cmd := simswarm.Command{Kind: simswarm.KindTemplate, Template: "sleep {i}", Vars: []simswarm.Var{{Name: "i", Values: []string{"0", "1", "2", "3", "4"}}}}
	p := &prepared{cmd: cmd, runs: templateRuns(cmd), workdir: "."}
	h := &History{Walls: map[string]float64{}}
	for i, wall := range []float64{1, 1, 1, 10} { // run 4 never ran
		h.note(p, i, time.Duration(wall*float64(time.Second)))
	}
	runs := []int{0, 1, 2, 3, 4}
	longestFirst(h, p, runs, p.runs.indexer())
	if want := []int{4, 3, 0, 1, 2}; !slices.Equal(runs, want) {
		t.Errorf("order %v, want %v", runs, want)
	}
	// Run 4 taken as the mean (3.25 s); on 2 slots: 10 | 3.25+1+1+1.
	e := estimate(h, p, []int{0, 1, 2, 3, 4}, 2)
	if e == nil || e.Known != 4 || e.Runs != 5 || e.Seconds != 10 || e.Longest != 10 || e.Lower != 10 {
		t.Errorf("estimate %+v", e)
	}
	if e := estimate(&History{Walls: map[string]float64{}}, p, []int{0}, 2); e != nil {
		t.Errorf("an estimate with nothing known: %+v", e)
	}
}
