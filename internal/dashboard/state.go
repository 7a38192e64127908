package dashboard

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/status"
	"github.com/simswarm/simswarm/internal/sweep"
)

// Run states as the index keeps them: one byte per run.
const (
	stPending uint8 = iota // no record yet
	stRunning
	stSucceeded
	stFailed
	stCancelled
	nStates
)

var stateNames = [nStates]simswarm.RunState{simswarm.RunPending, simswarm.RunRunning, simswarm.RunSucceeded, simswarm.RunFailed, simswarm.RunCancelled}

func stateCode(s simswarm.RunState) (uint8, bool) {
	for i, n := range stateNames {
		if n == s {
			return uint8(i), true
		}
	}
	return 0, false
}

// LostAfter is how long a worker may stay silent before it is shown as lost:
// three missed heartbeats.
const LostAfter = 3 * engine.HeartbeatEvery

// forgetAfter bounds how long a worker that vanished stays on the page.
const (
	forgetLost    = time.Hour
	forgetStopped = 10 * time.Minute
)

// runEntry is what the index keeps of one run: small, because a campaign
// may have 100 000 of them. The output tail and result files stay in the
// engine and are read when a run's page is opened.
type runEntry struct {
	run      int
	finished int64 // unix nanoseconds
	wall     time.Duration
	exit     int32
	state    uint8
	timedOut bool
	reused   bool
	queued   bool // re-enqueued from here; no runner took it yet
	signal   string
	worker   string
	host     string
	vars     string
}

// campIndex is one campaign: its record and its runs, sorted by number.
type campIndex struct {
	id     string
	rec    simswarm.Campaign
	hasRec bool
	runs   []runEntry
	pos    map[int]int // run number -> index in runs
	sorted bool
	counts [nStates]int
	// listFor is the artifact whose run list has been merged in.
	listFor string
	// recent counts finished runs per minute for the ETA.
	recent minutes
}

// minutes counts finished runs in per-minute buckets over a sliding hour.
type minutes struct {
	b [60]minuteBucket
}

type minuteBucket struct {
	minute    int64 // unix minute this bucket holds
	succeeded int
	failed    int
	earliest  int64 // earliest start (unix ns) of a run counted here
}

func (m *minutes) add(finished time.Time, started time.Time, failed bool) {
	min := finished.Unix() / 60
	b := &m.b[min%60]
	if b.minute != min {
		*b = minuteBucket{minute: min}
	}
	if failed {
		b.failed++
	} else {
		b.succeeded++
	}
	if s := started.UnixNano(); !started.IsZero() && (b.earliest == 0 || s < b.earliest) {
		b.earliest = s
	}
}

// window sums the last n minutes up to now, and the earliest start among them.
func (m *minutes) window(now time.Time, n int) (done int, earliest int64) {
	cur := now.Unix() / 60
	for i := 0; i < n; i++ {
		b := &m.b[(cur-int64(i))%60]
		if b.minute != cur-int64(i) {
			continue
		}
		done += b.succeeded + b.failed
		if b.earliest != 0 && (earliest == 0 || b.earliest < earliest) {
			earliest = b.earliest
		}
	}
	return done, earliest
}

// workerEntry is a worker as last heard of.
type workerEntry struct {
	key     string // in the workers bucket
	w       simswarm.Worker
	heard   time.Time // when its last heartbeat reached us (its own clock may be off)
	stopped bool      // it removed its heartbeat: stopped cleanly
}

func (w *workerEntry) lost(now time.Time) bool {
	return !w.stopped && now.Sub(w.heard) > LostAfter
}

// model is everything the dashboard knows, kept current by KV watches.
type model struct {
	mu        sync.RWMutex
	campaigns map[string]*campIndex
	workers   map[string]*workerEntry
	queues    []status.Queue
	stored    uint64
	usage     *engine.Usage // stored bytes by kind (storage.go)
	hour      minutes       // every campaign's finished runs, for the graph
	intern    map[string]string
	builds    map[string]buildCache // by artifact
}

type buildCache struct {
	rec *simswarm.BuildRecord
	at  time.Time
}

func newModel() *model {
	return &model{campaigns: map[string]*campIndex{}, workers: map[string]*workerEntry{},
		intern: map[string]string{}, builds: map[string]buildCache{}}
}

// str interns worker and host names: thousands of runs share a few.
func (m *model) str(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := m.intern[s]; ok {
		return v
	}
	m.intern[s] = s
	return s
}

func (m *model) camp(id string) *campIndex {
	c := m.campaigns[id]
	if c == nil {
		c = &campIndex{id: id, pos: map[int]int{}, sorted: true}
		m.campaigns[id] = c
	}
	return c
}

// entry returns run n of c, adding it as pending when new.
func (c *campIndex) entry(n int) *runEntry {
	if i, ok := c.pos[n]; ok {
		return &c.runs[i]
	}
	if len(c.runs) > 0 && c.runs[len(c.runs)-1].run > n {
		c.sorted = false
	}
	c.runs = append(c.runs, runEntry{run: n})
	c.pos[n] = len(c.runs) - 1
	c.counts[stPending]++
	return &c.runs[len(c.runs)-1]
}

// sort restores run order after runs arrived out of it.
func (c *campIndex) sort() {
	if c.sorted {
		return
	}
	sort.Slice(c.runs, func(a, b int) bool { return c.runs[a].run < c.runs[b].run })
	for i := range c.runs {
		c.pos[c.runs[i].run] = i
	}
	c.sorted = true
}

// statusLite is the part of a status record the index needs.
type statusLite struct {
	State    simswarm.RunState `json:"state"`
	Exit     int               `json:"exit"`
	Signal   string            `json:"signal"`
	TimedOut bool              `json:"timed_out"`
	Wall     time.Duration     `json:"wall"`
	Worker   string            `json:"worker"`
	Host     string            `json:"host"`
	Reused   bool              `json:"reused"`
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished"`
}

// change says what an update touched, for live pages and metrics.
type change struct {
	campaign string
	// finished is set when a run reached a final state it was not in before.
	finished bool
	state    uint8
	wall     time.Duration
}

// applyStatus folds one status-bucket update into the index.
func (m *model) applyStatus(key string, deleted bool, val []byte, now time.Time) (change, bool) {
	id, n, ok := simswarm.ParseStatusKey(key)
	if !ok {
		return change{}, false
	}
	ch := change{campaign: id}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.camp(id)
	e := c.entry(n)
	old := e.state
	if deleted {
		c.counts[old]--
		*e = runEntry{run: n, vars: e.vars}
		c.counts[stPending]++
		return ch, true
	}
	var r statusLite
	if json.Unmarshal(val, &r) != nil {
		return change{}, false
	}
	st, ok := stateCode(r.State)
	if !ok {
		return change{}, false
	}
	fin := r.Finished.UnixNano()
	if r.Finished.IsZero() {
		fin = 0
	}
	// A final record seen before (same state and finish time) is not a new
	// finish: the watch may hand an entry over again after a reconnect.
	again := st == old && fin == e.finished
	c.counts[old]--
	c.counts[st]++
	*e = runEntry{run: n, finished: fin, wall: r.Wall, exit: int32(r.Exit), state: st, timedOut: r.TimedOut,
		reused: r.Reused, signal: m.str(r.Signal), worker: m.str(r.Worker), host: m.str(r.Host), vars: e.vars}
	if (st == stSucceeded || st == stFailed) && !again && !r.Reused && fin != 0 {
		ch.finished, ch.state, ch.wall = true, st, r.Wall
		if now.Sub(r.Finished) < time.Hour {
			m.hour.add(r.Finished, r.Started, st == stFailed)
			c.recent.add(r.Finished, r.Started, st == stFailed)
		}
	}
	return ch, true
}

// applyCampaign folds one campaigns-bucket update in. It returns the
// campaign when its run list should be loaded.
func (m *model) applyCampaign(key string, deleted bool, val []byte) (*simswarm.Campaign, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if deleted {
		delete(m.campaigns, key)
		return nil, true
	}
	var rec simswarm.Campaign
	if json.Unmarshal(val, &rec) != nil || rec.ID == "" {
		return nil, false
	}
	c := m.camp(rec.ID)
	c.rec, c.hasRec = rec, true
	if c.listFor != rec.Artifact {
		r := rec
		return &r, true
	}
	return nil, true
}

// mergeList adds a campaign's run numbers (and iteration variables) to its
// index, so that runs nobody started yet show as pending.
func (m *model) mergeList(id, artifact string, runs []int, vars []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.campaigns[id]
	if c == nil || c.rec.Artifact != artifact {
		return
	}
	for i, n := range runs {
		e := c.entry(n)
		if i < len(vars) {
			e.vars = vars[i]
		}
	}
	c.listFor = artifact
	c.sort()
}

// applyWorker folds one workers-bucket update in.
func (m *model) applyWorker(key string, deleted bool, val []byte, now time.Time, initial bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if deleted {
		if w := m.workers[key]; w != nil {
			w.stopped, w.heard = true, now
			w.w.Busy, w.w.Current = 0, nil
		}
		return true
	}
	var w simswarm.Worker
	if json.Unmarshal(val, &w) != nil {
		return false
	}
	heard := now
	if initial && w.Seen.Before(now) {
		// Heard before the dashboard started: its own time says how long ago.
		heard = w.Seen
	}
	m.workers[key] = &workerEntry{key: key, w: w, heard: heard}
	return true
}

// expireWorkers forgets workers long gone and reports whether any worker
// crossed into "lost" since the last call.
func (m *model) expireWorkers(now time.Time, lostBefore map[string]bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := false
	for k, w := range m.workers {
		if (w.stopped && now.Sub(w.heard) > forgetStopped) || now.Sub(w.heard) > forgetLost {
			delete(m.workers, k)
			changed = true
			continue
		}
		l := w.lost(now)
		if l != lostBefore[k] {
			changed = true
		}
		lostBefore[k] = l
	}
	return changed
}

// loadList reads a campaign's run list: from the lists bucket for OMNeT++
// programs, computed from the template otherwise.
func loadList(ctx context.Context, eng *engine.Engine, c *simswarm.Campaign) ([]int, []string, error) {
	if c.Command.Kind == simswarm.KindTemplate {
		n := sweep.Count(c.Command)
		runs := make([]int, n)
		vars := make([]string, n)
		for i := range runs {
			runs[i], vars[i] = i, sweep.Describe(c.Command, i)
		}
		return runs, vars, nil
	}
	l, ok, err := eng.RunList(ctx, simswarm.ListKey(c.Artifact, c.Workdir, c.Command))
	if err != nil || !ok {
		return nil, nil, err
	}
	return l.Runs, l.Vars, nil
}
