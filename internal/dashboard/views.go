package dashboard

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/status"
	"github.com/simswarm/simswarm/internal/sweep"
)

// The view types are both what the HTML templates render and what the JSON
// API returns: every page has its data at /api/ under the same shape.

// Counts are a campaign's runs by state.
type Counts struct {
	Pending   int `json:"pending"`
	Running   int `json:"running"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Cancelled int `json:"cancelled"`
}

// Of returns the count of a state by name (for templates).
func (c Counts) Of(state simswarm.RunState) int {
	switch state {
	case simswarm.RunPending:
		return c.Pending
	case simswarm.RunRunning:
		return c.Running
	case simswarm.RunSucceeded:
		return c.Succeeded
	case simswarm.RunFailed:
		return c.Failed
	case simswarm.RunCancelled:
		return c.Cancelled
	}
	return c.Pending + c.Running + c.Succeeded + c.Failed + c.Cancelled
}

// CampaignSummary is a campaign as the overview lists it.
type CampaignSummary struct {
	ID        string                 `json:"id"`
	Project   string                 `json:"project"`
	Workdir   string                 `json:"workdir"`
	Command   string                 `json:"command"`
	State     simswarm.CampaignState `json:"state"`
	Runs      int                    `json:"runs"`
	Counts    Counts                 `json:"counts"`
	Done      int                    `json:"done"` // runs in a final state
	Percent   float64                `json:"percent"`
	Submitted time.Time              `json:"submitted"`
	// RatePerMinute is how fast its runs finished over the last minutes;
	// ETASeconds is the time left at that rate (absent when unknown).
	RatePerMinute float64  `json:"rate_per_minute"`
	ETASeconds    *float64 `json:"eta_seconds,omitempty"`
}

// Bar is a stacked progress bar: percentages of succeeded, failed,
// cancelled and running runs.
func (c CampaignSummary) Bar() []BarPart {
	total := max(c.Runs, c.Counts.Of(""))
	if total == 0 {
		return nil
	}
	var parts []BarPart
	x := 0.0
	for _, p := range []struct {
		state simswarm.RunState
		n     int
	}{{simswarm.RunSucceeded, c.Counts.Succeeded}, {simswarm.RunFailed, c.Counts.Failed}, {simswarm.RunCancelled, c.Counts.Cancelled}, {simswarm.RunRunning, c.Counts.Running}} {
		if p.n == 0 {
			continue
		}
		w := 100 * float64(p.n) / float64(total)
		parts = append(parts, BarPart{Class: string(p.state), X: x, W: w, N: p.n})
		x += w
	}
	return parts
}

// BarPart is one colour of a progress bar.
type BarPart struct {
	Class string
	X, W  float64
	N     int
}

// Overview is the front page.
type Overview struct {
	Campaigns  []CampaignSummary `json:"campaigns"`
	Queues     []status.Queue    `json:"queues"`
	Workers    WorkerCounts      `json:"workers"`
	Throughput Throughput        `json:"throughput"`
	Stored     uint64            `json:"stored_bytes"`
	// StoredByKind: file/, snap/, art/, res/, log/, base/ and records.
	StoredByKind []StoredKind `json:"stored_by_kind,omitempty"`
	Hosts        []HostView   `json:"-"`
	At           time.Time    `json:"at"`
}

// RunQueue is the run jobs' queue.
func (o Overview) RunQueue() status.Queue {
	for _, q := range o.Queues {
		if q.Name == "run" {
			return q
		}
	}
	return status.Queue{Name: "run"}
}

// WorkerCounts sums up the workers.
type WorkerCounts struct {
	Online   int `json:"online"`
	Lost     int `json:"lost"`
	Draining int `json:"draining"`
	Slots    int `json:"slots"`
	Busy     int `json:"busy"`
}

// Throughput is runs finished per minute over the last hour, oldest first.
type Throughput struct {
	Minutes []MinutePoint `json:"minutes"`
	// LastMinute is the runs of the last complete minute; PerMinute the
	// runs of the last sixty seconds, estimated from the current and the
	// previous minute; FailureRate the share of failed runs over the hour.
	LastMinute  int     `json:"last_minute"`
	PerMinute   float64 `json:"per_minute"`
	Total       int     `json:"total"`
	Failed      int     `json:"failed"`
	FailureRate float64 `json:"failure_rate"`
}

// MinutePoint is one minute of the graph.
type MinutePoint struct {
	Minute    time.Time `json:"minute"`
	Succeeded int       `json:"succeeded"`
	Failed    int       `json:"failed"`
}

// CampaignPage is a campaign with a page of its runs.
type CampaignPage struct {
	CampaignSummary
	Record simswarm.Campaign `json:"record"`
	Build  *BuildView        `json:"build,omitempty"`
	Table  RunTable          `json:"runs"`
	Plots  *Plots            `json:"-"`
}

// RunTable is one page of a campaign's runs, filtered and sorted.
type RunTable struct {
	State   simswarm.RunState `json:"state,omitempty"` // filter; "" = all
	Sort    string            `json:"sort"`
	Order   string            `json:"order"`
	Page    int               `json:"page"`
	PerPage int               `json:"per_page"`
	Total   int               `json:"total"` // runs matching the filter
	Pages   int               `json:"pages"`
	Rows    []RunRow          `json:"rows"`
	base    string            // campaign URL
}

// RunRow is one run in a campaign's table.
type RunRow struct {
	Run         int               `json:"run"`
	Vars        string            `json:"vars,omitempty"`
	State       simswarm.RunState `json:"state"`
	Queued      bool              `json:"queued,omitempty"`
	Worker      string            `json:"worker,omitempty"`
	Host        string            `json:"host,omitempty"`
	WallSeconds float64           `json:"wall_seconds,omitempty"`
	Exit        int               `json:"exit"`
	Signal      string            `json:"signal,omitempty"`
	TimedOut    bool              `json:"timed_out,omitempty"`
	Reused      bool              `json:"reused,omitempty"`
	Finished    *time.Time        `json:"finished,omitempty"`
}

// Outcome says how a finished run ended, in a few words.
func (r RunRow) Outcome() string {
	switch {
	case r.State == simswarm.RunPending || r.State == simswarm.RunRunning || r.State == simswarm.RunCancelled:
		return ""
	case r.TimedOut:
		return "timed out"
	case r.Signal != "":
		return r.Signal
	default:
		return strconv.Itoa(r.Exit)
	}
}

// Link is a page link of the run table.
type Link struct {
	Label   string
	URL     string
	Current bool
}

// URL is the table's address with some parameters changed.
func (t RunTable) URL(kv ...string) string {
	q := url.Values{}
	set := func(k, v, def string) {
		if v != def {
			q.Set(k, v)
		}
	}
	set("state", string(t.State), "")
	set("sort", t.Sort, "run")
	set("order", t.Order, "asc")
	set("page", strconv.Itoa(t.Page), "1")
	for i := 0; i+1 < len(kv); i += 2 {
		q.Del(kv[i])
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return t.base
	}
	return t.base + "?" + q.Encode()
}

// SortURL sorts by col, flipping the order when it already does.
func (t RunTable) SortURL(col string) string {
	order := "asc"
	if t.Sort == col && t.Order == "asc" {
		order = "desc"
	}
	if col == "wall" && t.Sort != col {
		order = "desc" // the longest runs are the interesting ones
	}
	return t.URL("sort", col, "order", order, "page", "")
}

// SortMark is the arrow of the sorted column.
func (t RunTable) SortMark(col string) string {
	if t.Sort != col {
		return ""
	}
	if t.Order == "desc" {
		return "▼"
	}
	return "▲"
}

// Links are the page links: first, last, and a few around the current one.
func (t RunTable) Links() []Link {
	if t.Pages <= 1 {
		return nil
	}
	var out []Link
	last := 0
	for p := 1; p <= t.Pages; p++ {
		if p != 1 && p != t.Pages && (p < t.Page-2 || p > t.Page+2) {
			continue
		}
		if last != 0 && p != last+1 {
			out = append(out, Link{Label: "…"})
		}
		out = append(out, Link{Label: strconv.Itoa(p), URL: t.URL("page", strconv.Itoa(p)), Current: p == t.Page})
		last = p
	}
	return out
}

// First and Last are the 1-based positions of the page's rows.
func (t RunTable) First() int { return min((t.Page-1)*t.PerPage+1, t.Total) }
func (t RunTable) Last() int  { return min(t.Page*t.PerPage, t.Total) }

// BuildView is the build that made a campaign's artifact.
type BuildView struct {
	simswarm.BuildRecord
	WallSeconds float64 `json:"wall_seconds"`
	LogURL      string  `json:"log_url,omitempty"`
}

// RunPage is one run.
type RunPage struct {
	Campaign    CampaignSummary     `json:"campaign"`
	Run         int                 `json:"run"`
	Vars        string              `json:"vars,omitempty"`
	State       simswarm.RunState   `json:"state"`
	Record      *simswarm.RunRecord `json:"record,omitempty"` // absent while pending
	CommandLine string              `json:"command_line"`
	Workdir     string              `json:"workdir"`
	Project     string              `json:"project"`
	WallSeconds float64             `json:"wall_seconds"`
	CPUSeconds  float64             `json:"cpu_seconds"`
	Files       []FileView          `json:"files"`
}

// FileView is a result file with its download address.
type FileView struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	URL  string `json:"url"`
}

// Lines splits a run's output tail for display, marking OMNeT++'s `<!>` lines.
func (p RunPage) Lines() []OutputLine {
	if p.Record == nil || p.Record.Tail == "" {
		return nil
	}
	lines := strings.Split(strings.TrimRight(p.Record.Tail, "\n"), "\n")
	out := make([]OutputLine, len(lines))
	for i, l := range lines {
		out[i].Text = l
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "<!>") {
			out[i].Class = "bang"
			if strings.Contains(t, "Error") || strings.Contains(t, "mismatch") {
				out[i].Class = "bang err"
			}
		}
	}
	return out
}

// OutputLine is a line of output with its highlighting.
type OutputLine struct {
	Text  string
	Class string
}

// WorkersPage is the cluster: hosts with their workers.
type WorkersPage struct {
	Counts WorkerCounts `json:"counts"`
	Hosts  []HostView   `json:"hosts"`
	At     time.Time    `json:"at"`
}

// HostView is one machine and its workers.
type HostView struct {
	Host    string       `json:"host"`
	Lost    bool         `json:"lost"` // every worker on it is lost
	Workers []WorkerView `json:"workers"`
}

// WorkerView is a worker with what its heartbeats tell.
type WorkerView struct {
	simswarm.Worker
	Key         string               `json:"key"`
	State       simswarm.WorkerState `json:"state"`
	HeardAt     time.Time            `json:"heard_at"`
	SilentFor   float64              `json:"silent_seconds"`
	CurrentRuns []RunRef             `json:"current_runs,omitempty"`
}

// SlotStates lays out the worker's slots for the slot strip.
func (w WorkerView) SlotStates() []string {
	out := make([]string, w.Slots)
	for i := range out {
		switch {
		case w.State == simswarm.WorkerLost:
			out[i] = string(simswarm.WorkerLost)
		case i < w.Busy:
			out[i] = "busy"
		default:
			out[i] = "free"
		}
	}
	return out
}

// RunGroup is the current runs of a worker in one campaign.
type RunGroup struct {
	Campaign string
	URL      string
	Runs     []RunRef
}

// Groups gathers the worker's current runs by campaign, for display.
func (w WorkerView) Groups() []RunGroup {
	var out []RunGroup
	for _, r := range w.CurrentRuns {
		if len(out) == 0 || out[len(out)-1].Campaign != r.Campaign {
			out = append(out, RunGroup{Campaign: r.Campaign, URL: "/campaigns/" + url.PathEscape(r.Campaign)})
		}
		g := &out[len(out)-1]
		g.Runs = append(g.Runs, r)
	}
	return out
}

// RunRef points at a run.
type RunRef struct {
	Campaign string `json:"campaign"`
	Run      int    `json:"run"`
	URL      string `json:"url"`
}

func runURL(campaign string, run int) string {
	return "/campaigns/" + url.PathEscape(campaign) + "/runs/" + strconv.Itoa(run)
}

func fileURL(campaign string, run int, name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return runURL(campaign, run) + "/files/" + strings.Join(parts, "/")
}

// describe is a campaign's command as a user typed it.
func describe(c simswarm.Command) string {
	if c.Kind == simswarm.KindTemplate {
		s := c.Template
		if len(c.Args) > 0 {
			s += " -- " + quoteArgs(c.Args)
		}
		return s
	}
	s := quoteArgs(c.Argv)
	if c.Filter != "" {
		s += " -r " + sweep.Quote(c.Filter)
	}
	return s
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = sweep.Quote(a)
	}
	return strings.Join(q, " ")
}

// commandLine is the command a runner starts for run n alone.
func commandLine(c simswarm.Command, n int) string {
	if c.Kind == simswarm.KindTemplate {
		s, err := sweep.Expand(c, n, "RESULTDIR")
		if err != nil {
			return c.Template
		}
		return s
	}
	return quoteArgs(c.Argv) + " -s -r " + strconv.Itoa(n) + " --result-dir=RESULTDIR"
}

// hostsOf groups workers by host, hosts in name order, lost ones last.
func hostsOf(ws []WorkerView) []HostView {
	by := map[string]*HostView{}
	var order []string
	for _, w := range ws {
		h := by[w.Host]
		if h == nil {
			h = &HostView{Host: w.Host, Lost: true}
			by[w.Host] = h
			order = append(order, w.Host)
		}
		h.Workers = append(h.Workers, w)
		if w.State != simswarm.WorkerLost {
			h.Lost = false
		}
	}
	sort.Slice(order, func(a, b int) bool {
		ha, hb := by[order[a]], by[order[b]]
		if ha.Lost != hb.Lost {
			return hb.Lost
		}
		return order[a] < order[b]
	})
	out := make([]HostView, len(order))
	for i, h := range order {
		out[i] = *by[h]
	}
	return out
}

// Template helpers.

func humanSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case s <= 0:
		return "–"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", s)
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

func humanAgo(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 2*time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		return t.Format("2006-01-02")
	}
}

// thousands writes 100000 as 100 000, as people read counts.
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteRune(' ')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
