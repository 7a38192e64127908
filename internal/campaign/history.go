package campaign

import (
	"cmp"
	"container/heap"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/atomicfile"
	"github.com/simswarm/simswarm/internal/fserr"
)

// History is how long runs took in earlier campaigns, kept in the client's
// state directory (a file per project). It orders a campaign's queue
// longest first, so that its last minutes are not one long run alone, and
// estimates its wall time before it starts. A run is looked up by what
// names it across campaigns (working directory, command without what
// selects runs, iteration variables), then by its siblings (the same
// variables but the repetition), then by the campaign's mean.
type History struct {
	mu    sync.Mutex
	path  string
	Walls map[string]float64 `json:"walls"` // seconds, by histKey
	dirty bool
}

// histCap bounds a project's history: the oldest half goes when it is full.
const histCap = 200_000

// openHistory reads the history of a project ("" : none is kept).
func openHistory(stateDir, project string) *History {
	h := &History{Walls: map[string]float64{}}
	if stateDir == "" {
		return h
	}
	h.path = filepath.Join(stateDir, "history", project+".json")
	if b, err := os.ReadFile(h.path); err == nil {
		_ = json.Unmarshal(b, h)
		if h.Walls == nil {
			h.Walls = map[string]float64{}
		}
	}
	return h
}

// histKey names a run across campaigns; sibling leaves out its repetition.
func histKey(p *prepared, i int) (exact, sibling string) {
	cmd := p.cmd
	cmd.Repeat = 0
	vars := p.runs.Vars(i)
	if vars == "" {
		vars = "#" + strconv.Itoa(p.runs.Run(i))
	}
	if cmd.Kind == simswarm.KindTemplate {
		cmd.Vars = nil
	}
	base := p.workdir + "\x00" + cmd.SelectionFree() + "\x00"
	return simswarm.Hash("hist", base, vars)[:24], simswarm.Hash("hist", base, repetition.ReplaceAllString(vars, ""))[:24]
}

var repetition = regexp.MustCompile(`(, )?\$repetition=[^,]*`)

// note remembers a finished run's wall time.
func (h *History) note(p *prepared, i int, wall time.Duration) {
	if wall <= 0 {
		return
	}
	exact, sibling := histKey(p, i)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.Walls) >= histCap {
		n := 0
		for k := range h.Walls {
			if n%2 == 0 {
				delete(h.Walls, k)
			}
			n++
		}
	}
	s := wall.Seconds()
	h.Walls[exact] = s
	if old, ok := h.Walls[sibling]; ok {
		s = 0.7*old + 0.3*s
	}
	h.Walls[sibling] = s
	h.dirty = true
}

// save writes the history back; losing it only costs the next campaign
// its order and estimate.
func (h *History) save() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.path == "" || !h.dirty {
		return nil
	}
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(h.path), 0o755); err != nil {
		return fserr.WithoutPath(err)
	}
	if err := atomicfile.WriteFile(h.path, b, 0o644); err != nil {
		return fserr.WithoutPath(err)
	}
	h.dirty = false
	return nil
}

// expect is how long the run at position i is expected to take, and
// whether anything is known of it (0, false: never seen, nor its siblings).
func (h *History) expect(p *prepared, i int) (float64, bool) {
	exact, sibling := histKey(p, i)
	h.mu.Lock()
	defer h.mu.Unlock()
	if s, ok := h.Walls[exact]; ok {
		return s, true
	}
	s, ok := h.Walls[sibling]
	return s, ok
}

// longestFirst orders runs (positions) for the queue: runs nothing is
// known of first (they are measured early, while there is time to
// recover from one that is long), then the others longest first; a
// stable sort keeps the campaign's own order among equals.
func longestFirst(h *History, p *prepared, runs []int, at func(run int) (int, bool)) {
	exp := make(map[int]float64, len(runs))
	known := make(map[int]bool, len(runs))
	for _, n := range runs {
		if i, ok := at(n); ok {
			exp[n], known[n] = h.expect(p, i)
		}
	}
	sort.SliceStable(runs, func(a, b int) bool {
		ka, kb := known[runs[a]], known[runs[b]]
		if ka != kb {
			return !ka
		}
		return exp[runs[a]] > exp[runs[b]]
	})
}

// Estimate is the expected wall time of a campaign's runs on some slots.
type Estimate struct {
	Seconds float64 `json:"seconds"`
	Slots   int     `json:"slots"`
	Runs    int     `json:"runs"`    // runs that would execute
	Known   int     `json:"known"`   // of those, with a measured time
	Longest float64 `json:"longest"` // seconds
	// Lower is max(longest run, total / slots): no schedule does better.
	Lower float64 `json:"lower_bound"`
}

// estimate schedules the runs longest first on slots, runs without a
// measured time taking the mean of those with one; nil when nothing is
// known of any.
func estimate(h *History, p *prepared, positions []int, slots int) *Estimate {
	if slots <= 0 || len(positions) == 0 {
		return nil
	}
	e := &Estimate{Slots: slots, Runs: len(positions)}
	walls := make([]float64, 0, len(positions))
	sum := 0.0
	for _, i := range positions {
		if s, ok := h.expect(p, i); ok {
			walls = append(walls, s)
			sum += s
			e.Known++
		}
	}
	if e.Known == 0 {
		return nil
	}
	mean := sum / float64(e.Known)
	for range len(positions) - e.Known {
		walls = append(walls, mean)
	}
	slices.SortFunc(walls, func(a, b float64) int { return cmp.Compare(b, a) })
	// List scheduling, longest first: each run goes to the slot free first.
	free := make(slotHeap, min(slots, len(walls)))
	total := 0.0
	for _, w := range walls {
		free[0] += w
		heap.Fix(&free, 0)
		total += w
	}
	e.Seconds = slices.Max(free)
	e.Longest = walls[0]
	e.Lower = max(e.Longest, total/float64(slots))
	return e
}

// slotHeap is when each slot is free, soonest first.
type slotHeap []float64

func (h slotHeap) Len() int           { return len(h) }
func (h slotHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h slotHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *slotHeap) Push(x any)        { *h = append(*h, x.(float64)) }
func (h *slotHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// slots counts the run slots of the runners the engine heard from.
func (c *Client) slots(ctx context.Context) int {
	heard, err := c.Eng.Workers(ctx)
	if err != nil {
		return 0
	}
	n := 0
	for _, w := range heard {
		if w.Role == simswarm.RoleRunner && !w.Draining {
			n += w.Slots
		}
	}
	return n
}
