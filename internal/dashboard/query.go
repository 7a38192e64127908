package dashboard

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/simswarm/simswarm"
)

// errNotFound makes a handler answer 404.
var errNotFound = errors.New("not found")

// etaWindow is how many recent minutes the ETA's rate is measured over.
const etaWindow = 10

// overviewCampaigns bounds the campaigns on the front page; the API lists all.
const overviewCampaigns = 25

// counts returns a campaign's runs by state as shown: runs without a record
// in a cancelled campaign were purged from the queue, so they are cancelled.
func (c *campIndex) shownCounts() Counts {
	k := Counts{Pending: c.counts[stPending], Running: c.counts[stRunning], Succeeded: c.counts[stSucceeded],
		Failed: c.counts[stFailed], Cancelled: c.counts[stCancelled]}
	if c.hasRec && c.rec.Runs > len(c.runs) {
		k.Pending += c.rec.Runs - len(c.runs) // run list not read (yet)
	}
	if c.cancelled() {
		k.Cancelled += k.Pending
		k.Pending = 0
	}
	return k
}

func (c *campIndex) cancelled() bool { return c.hasRec && c.rec.State == simswarm.CampaignCancelled }

// shownState is a run's state as shown.
func (c *campIndex) shownState(e *runEntry) uint8 {
	if e.state == stPending && !e.queued && c.cancelled() {
		return stCancelled
	}
	return e.state
}

// summary describes a campaign; the caller holds the model's lock.
func (c *campIndex) summary(now time.Time) CampaignSummary {
	k := c.shownCounts()
	s := CampaignSummary{ID: c.id, Counts: k, Runs: k.Of(""), State: simswarm.CampaignActive}
	if c.hasRec {
		s.Project, s.Workdir, s.Command, s.Submitted = c.rec.Project, c.rec.Workdir, describe(c.rec.Command), c.rec.Submitted
		s.Runs = max(c.rec.Runs, s.Runs)
		if c.rec.State != "" {
			s.State = c.rec.State
		}
	}
	s.Done = k.Succeeded + k.Failed + k.Cancelled
	if s.Runs > 0 {
		s.Percent = 100 * float64(s.Done) / float64(s.Runs)
	}
	left := k.Pending + k.Running
	if s.State == simswarm.CampaignActive && left == 0 && s.Runs > 0 {
		// Nobody followed it to the end (a detached campaign): it is done.
		s.State = simswarm.CampaignDone
	}
	done, earliest := c.recent.window(now, etaWindow)
	if done > 0 && earliest > 0 {
		span := now.Sub(time.Unix(0, earliest))
		if oldest := now.Sub(time.Unix((now.Unix()/60-etaWindow+1)*60, 0)); span > oldest {
			span = oldest // runs longer than the window started before it
		}
		span = max(span, time.Second)
		perSec := float64(done) / span.Seconds()
		if s.State == simswarm.CampaignActive {
			s.RatePerMinute = perSec * 60
		}
		if s.State == simswarm.CampaignActive && left > 0 {
			eta := float64(left) / perSec
			s.ETASeconds = &eta
		}
	}
	return s
}

func (m *model) campaignList(now time.Time) []CampaignSummary {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]CampaignSummary, 0, len(m.campaigns))
	for _, c := range m.campaigns {
		out = append(out, c.summary(now))
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].Submitted.Equal(out[b].Submitted) {
			return out[a].Submitted.After(out[b].Submitted)
		}
		return out[a].ID < out[b].ID
	})
	return out
}

func (m *model) overview(now time.Time) Overview {
	o := Overview{Campaigns: m.campaignList(now), At: now}
	if len(o.Campaigns) > overviewCampaigns {
		o.Campaigns = o.Campaigns[:overviewCampaigns]
	}
	w := m.workersPage(now)
	o.Workers, o.Hosts = w.Counts, w.Hosts
	m.mu.RLock()
	defer m.mu.RUnlock()
	o.Queues = append(o.Queues, m.queues...)
	o.Stored = m.stored
	o.StoredByKind = storedByKind(m.usage)
	o.Throughput = m.throughput(now)
	return o
}

// throughput is the graph's data; the caller holds the lock.
func (m *model) throughput(now time.Time) Throughput {
	var t Throughput
	cur := now.Unix() / 60
	for i := int64(59); i >= 0; i-- {
		min := cur - i
		p := MinutePoint{Minute: time.Unix(min*60, 0).UTC()}
		if b := &m.hour.b[min%60]; b.minute == min {
			p.Succeeded, p.Failed = b.succeeded, b.failed
		}
		t.Minutes = append(t.Minutes, p)
		t.Total += p.Succeeded + p.Failed
		t.Failed += p.Failed
		switch i {
		case 1:
			t.LastMinute = p.Succeeded + p.Failed
		case 0:
			t.PerMinute = float64(p.Succeeded + p.Failed)
		}
	}
	// The current minute is partial: the previous one fills in the part of
	// the last sixty seconds it covers.
	frac := float64(now.Unix()%60) / 60
	t.PerMinute += float64(t.LastMinute) * (1 - frac)
	if t.Total > 0 {
		t.FailureRate = float64(t.Failed) / float64(t.Total)
	}
	return t
}

// tableQuery is what a campaign page asks of its runs.
type tableQuery struct {
	state   simswarm.RunState
	sort    string
	order   string
	page    int
	perPage int
}

// DefaultPerPage is the runs on a page of a campaign's table.
const DefaultPerPage = 100

var sortKeys = map[string]bool{"run": true, "state": true, "worker": true, "host": true, "wall": true, "exit": true, "finished": true}

func parseTableQuery(get func(string) string) (tableQuery, error) {
	q := tableQuery{state: simswarm.RunState(get("state")), sort: get("sort"), order: get("order"), page: 1, perPage: DefaultPerPage}
	if q.state == "all" {
		q.state = ""
	}
	if _, ok := stateCode(q.state); q.state != "" && !ok {
		return q, errors.New("unknown state " + strconv.Quote(string(q.state)) + ": give pending, running, succeeded, failed or cancelled")
	}
	if q.sort == "" {
		q.sort = "run"
	}
	if !sortKeys[q.sort] {
		return q, errors.New("cannot sort by " + strconv.Quote(q.sort) + ": give run, state, worker, host, wall, exit or finished")
	}
	switch q.order {
	case "":
		q.order = "asc"
	case "asc", "desc":
	default:
		return q, errors.New("order must be asc or desc")
	}
	if p := get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return q, errors.New("page must be a number from 1")
		}
		q.page = n
	}
	if p := get("per_page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 1000 {
			return q, errors.New("per_page must be a number from 1 to 1000")
		}
		q.perPage = n
	}
	return q, nil
}

// campaignPage renders a campaign's summary and one page of its runs.
func (m *model) campaignPage(id string, q tableQuery, now time.Time) (*CampaignPage, error) {
	m.mu.Lock()
	c := m.campaigns[id]
	if c == nil {
		m.mu.Unlock()
		return nil, errNotFound
	}
	c.sort()
	m.mu.Unlock()

	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.campaigns[id] != c {
		return nil, errNotFound
	}
	p := &CampaignPage{CampaignSummary: c.summary(now), Record: c.rec}
	p.Table = c.table(q)
	return p, nil
}

// table selects, sorts and pages runs; the caller holds the read lock.
func (c *campIndex) table(q tableQuery) RunTable {
	t := RunTable{State: q.state, Sort: q.sort, Order: q.order, PerPage: q.perPage, base: "/campaigns/" + c.id}
	want, filter := stateCode(q.state)
	filter = filter && q.state != ""
	var idx []int32
	plain := !filter && q.sort == "run" // the index order: no copy needed
	if !plain {
		idx = make([]int32, 0, len(c.runs))
		for i := range c.runs {
			if !filter || c.shownState(&c.runs[i]) == want {
				idx = append(idx, int32(i))
			}
		}
		t.Total = len(idx)
	} else {
		t.Total = len(c.runs)
	}
	if q.sort != "run" {
		by := c.compare(q.sort)
		slices.SortFunc(idx, func(a, b int32) int {
			x, y := &c.runs[a], &c.runs[b]
			if q.order == "desc" {
				x, y = y, x
			}
			if d := by(x, y); d != 0 {
				return d
			}
			return cmp.Compare(x.run, y.run)
		})
	} else if q.order == "desc" && !plain {
		slices.Reverse(idx)
	}
	t.Pages = max(1, (t.Total+t.PerPage-1)/t.PerPage)
	t.Page = min(max(q.page, 1), t.Pages)
	from, to := (t.Page-1)*t.PerPage, min(t.Page*t.PerPage, t.Total)
	t.Rows = make([]RunRow, 0, max(to-from, 0))
	for k := from; k < to; k++ {
		var i int
		switch {
		case !plain:
			i = int(idx[k])
		case q.order == "desc":
			i = len(c.runs) - 1 - k
		default:
			i = k
		}
		t.Rows = append(t.Rows, c.row(&c.runs[i]))
	}
	return t
}

// compare orders runs by a column; ties are broken by run number.
func (c *campIndex) compare(key string) func(x, y *runEntry) int {
	switch key {
	case "state":
		return func(x, y *runEntry) int { return cmp.Compare(c.shownState(x), c.shownState(y)) }
	case "worker":
		return func(x, y *runEntry) int { return strings.Compare(x.worker, y.worker) }
	case "host":
		return func(x, y *runEntry) int { return strings.Compare(x.host, y.host) }
	case "wall":
		return func(x, y *runEntry) int { return cmp.Compare(x.wall, y.wall) }
	case "exit":
		return func(x, y *runEntry) int { return cmp.Compare(x.exit, y.exit) }
	case "finished":
		return func(x, y *runEntry) int { return cmp.Compare(x.finished, y.finished) }
	}
	return func(x, y *runEntry) int { return cmp.Compare(x.run, y.run) }
}

func (c *campIndex) row(e *runEntry) RunRow {
	r := RunRow{Run: e.run, Vars: e.vars, State: stateNames[c.shownState(e)], Queued: e.queued, Worker: e.worker, Host: e.host,
		WallSeconds: e.wall.Seconds(), Exit: int(e.exit), Signal: e.signal, TimedOut: e.timedOut, Reused: e.reused}
	if e.finished != 0 {
		t := time.Unix(0, e.finished).UTC()
		r.Finished = &t
	}
	return r
}

// runPage reads one run's record from the engine.
func (s *Server) runPage(ctx context.Context, id string, n int, now time.Time) (*RunPage, error) {
	s.m.mu.RLock()
	c := s.m.campaigns[id]
	var p RunPage
	var cmd simswarm.Command
	hasRec := false
	if c != nil {
		i, ok := c.pos[n]
		if !ok {
			c = nil
		} else {
			e := &c.runs[i]
			p = RunPage{Campaign: c.summary(now), Run: n, Vars: e.vars, State: stateNames[c.shownState(e)]}
			cmd, hasRec = c.rec.Command, c.hasRec
			p.Project, p.Workdir = c.rec.Project, c.rec.Workdir
		}
	}
	s.m.mu.RUnlock()
	if c == nil {
		return nil, errNotFound
	}
	if hasRec {
		p.CommandLine = commandLine(cmd, n)
	}
	rec, ok, err := s.eng.RunStatus(ctx, id, n)
	if err != nil {
		return nil, err
	}
	p.Files = []FileView{}
	if ok {
		p.Record = rec
		p.WallSeconds, p.CPUSeconds = rec.Wall.Seconds(), rec.CPU.Seconds()
		for _, f := range rec.Files {
			p.Files = append(p.Files, FileView{Name: f.Name, Size: f.Size, URL: fileURL(id, n, f.Name)})
		}
	}
	return &p, nil
}

// workersPage lists workers by host.
func (m *model) workersPage(now time.Time) WorkersPage {
	m.mu.RLock()
	var ws []WorkerView
	var k WorkerCounts
	for _, w := range m.workers {
		v := WorkerView{Worker: w.w, Key: w.key, HeardAt: w.heard, SilentFor: now.Sub(w.heard).Seconds(), State: simswarm.WorkerOnline}
		switch {
		case w.stopped:
			v.State = simswarm.WorkerStopped
			v.Busy, v.Current = 0, nil
		case w.lost(now):
			v.State = simswarm.WorkerLost
			k.Lost++
		case w.w.Draining:
			v.State = simswarm.WorkerDraining
			k.Draining++
		}
		if v.State == simswarm.WorkerOnline || v.State == simswarm.WorkerDraining {
			k.Online++
			if w.w.Role == simswarm.RoleRunner {
				k.Slots += w.w.Slots
				k.Busy += w.w.Busy
			}
		}
		for _, cur := range v.Current {
			if id, n, ok := simswarm.ParseStatusKey(cur); ok {
				v.CurrentRuns = append(v.CurrentRuns, RunRef{Campaign: id, Run: n, URL: runURL(id, n)})
			}
		}
		ws = append(ws, v)
	}
	m.mu.RUnlock()
	sort.Slice(ws, func(a, b int) bool {
		x, y := ws[a], ws[b]
		if x.Host != y.Host {
			return x.Host < y.Host
		}
		if x.Role != y.Role {
			return x.Role < y.Role
		}
		return x.ID < y.ID
	})
	return WorkersPage{Counts: k, Hosts: hostsOf(ws), At: now}
}

// worker finds a worker by id (or by its key in the workers bucket).
func (m *model) worker(id string) (simswarm.Worker, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, w := range m.workers {
		if w.w.ID == id || w.key == id {
			return w.w, !w.stopped
		}
	}
	return simswarm.Worker{}, false
}

// build finds the build record of a campaign's artifact. Builds are few,
// so a scan of the bucket is cheap; a hit is kept, a miss retried after a while.
func (s *Server) build(ctx context.Context, artifact string) *simswarm.BuildRecord {
	if artifact == "" {
		return nil
	}
	s.m.mu.RLock()
	bc, ok := s.m.builds[artifact]
	s.m.mu.RUnlock()
	if ok && ((bc.rec != nil && bc.rec.State != simswarm.BuildRunning) || time.Since(bc.at) < 10*time.Second) {
		return bc.rec
	}
	var found *simswarm.BuildRecord
	if err := s.eng.Builds(ctx, func(key string, b *simswarm.BuildRecord) {
		if b.Artifact != artifact {
			return
		}
		// The record under the build's own key has its log; the project's
		// "last build" pointer is a copy.
		if found == nil || (!strings.HasPrefix(key, "last.") && b.Log != "") {
			found = b
		}
	}); err != nil {
		return nil
	}
	s.m.mu.Lock()
	s.m.builds[artifact] = buildCache{rec: found, at: time.Now()}
	s.m.mu.Unlock()
	return found
}
