package campaign

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/progress"
	"github.com/simswarm/simswarm/internal/results"
	"github.com/simswarm/simswarm/internal/safedir"
)

// runState is what the client keeps per run, by position in the campaign:
// 36 bytes and no pointer, so that a campaign of 100 000 runs stays small
// in memory and costs the garbage collector nothing to scan.
type runState struct {
	key     runKey
	running bool
	waiting bool // submitted or queued: an outcome will come
	cached  bool
	// failed: cached is a failure of the same run (Options.ReuseFailures).
	failed bool
}

// runKey is a run key (simswarm.RunKey, 64 hex digits) as its 32 bytes.
type runKey [32]byte

func keyOf(hexKey string) (k runKey) {
	_, _ = hex.Decode(k[:], []byte(hexKey))
	return k
}

// tracker is one client's view of a campaign it follows: the state of each
// run and what the summary will say.
type tracker struct {
	c        *Client
	p        *prepared
	states   []runState                // by position in p.runs
	index    func(run int) (int, bool) // a run number's position
	sum      *Summary
	failures map[int]*Failure
	counts   progress.Counts
	bar      *progress.Bar
	left     int // runs whose outcome has not come yet
	// prov keeps each finished run's provenance beside its results.
	prov *results.ProvenanceLog
	// own says which run key each result file belongs to, as the
	// provenance file says (nil: no provenance yet).
	own  *results.ProvenanceIndex
	camp *simswarm.Campaign
	hist *History
	// expected is the model's wall time of the runs submitted (0: unknown).
	expected time.Duration
	// slots is how many runs the engine's runners can execute at once
	// (0: unknown), the most the progress ever shows running.
	slots int
}

// show updates the progress. The running count is capped at the slots: a
// run's "running" can reach the client before the outcome of the run its
// slot executed before it (the runner stores outcomes in the background),
// and such an overlap is not two runs executing.
func (t *tracker) show() {
	c := t.counts
	if t.slots > 0 {
		c.Running = min(c.Running, t.slots)
	}
	t.bar.Update(c)
}

// provenance notes a finished run in results/provenance.jsonl; a failure to
// write it is said, not fatal: the results themselves are in place.
func (t *tracker) provenance(rec *simswarm.RunRecord) {
	if t.prov == nil {
		return
	}
	vars := ""
	if i, ok := t.index(rec.Run); ok {
		vars = t.p.runs.Vars(i)
	}
	if err := t.prov.Add(results.ProvenanceOf(t.camp, rec, vars)); err != nil && t.c.Opt.Progress != nil {
		fmt.Fprintf(t.c.Opt.Progress, "simswarm: %v\n", err)
	}
}

func newTracker(c *Client, p *prepared) *tracker {
	t := &tracker{c: c, p: p, states: make([]runState, p.runs.Len()), index: p.runs.indexer(),
		sum:      &Summary{Campaign: p.id, Runs: p.runs.Len(), Results: p.results, Build: c.built},
		failures: map[int]*Failure{}}
	for i := range t.states {
		t.states[i].key = keyOf(simswarm.RunKey(p.artifact, p.workdir, p.cmd, p.runs.Run(i), p.runs.Ident(i)))
	}
	return t
}

// state is the run's state by its number, nil for a run not in the campaign.
func (t *tracker) state(run int) *runState {
	i, ok := t.index(run)
	if !ok {
		return nil
	}
	return &t.states[i]
}

// follow submits the runs that are not done and follows them to the end.
func (c *Client) follow(ctx context.Context, p *prepared) (*Summary, error) {
	defer c.stages.Drain()
	camp := simswarm.Campaign{ID: p.id, Project: p.proj.Root, Workdir: p.workdir, Command: p.cmd,
		Snapshot: p.snapshot, Artifact: p.artifact, Layout: p.layout, Runs: p.runs.Len(), Submitted: time.Now(), Settings: p.settings,
		KeepResults: c.Opt.KeepResults}
	if c.Opt.Local {
		camp.Settings.Local, camp.Settings.Host = p.results, c.Opt.Host
	}
	// Watch first: an outcome stored between the submit and the watch
	// would otherwise be missed.
	w, err := c.Eng.WatchStatus(ctx, p.id)
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	t := newTracker(c, p)
	t.prov, t.camp, t.own = results.OpenProvenance(p.results), &camp, loadOwners(p.results)
	if note := results.SkippedNote(filepath.Join(p.results, results.ProvenanceFile), t.prov.Skipped()); note != "" {
		c.warnf("%s", note)
	}
	t.hist = openHistory(c.Opt.StateDir, p.proj.Name())
	defer func() {
		if err := t.hist.save(); err != nil {
			c.warnf("keep run times for the next campaign: %v", err)
		}
	}()
	t.known(ctx, w)
	if err := c.Eng.SubmitCampaign(ctx, camp); err != nil {
		return nil, err
	}
	if err := t.adopt(ctx); err != nil {
		return nil, err
	}
	submit, err := t.plan(ctx)
	if err != nil {
		return nil, err
	}
	p.camp = &camp
	p.submission = nonce()
	if err := c.submit(ctx, p, submit, t.hist); err != nil {
		return nil, err
	}
	if c.Opt.Detach {
		t.sum.Detached = true
		t.sum.Failures = []Failure{}
		return t.sum, nil
	}
	return t.wait(ctx, w)
}

// known takes in what the engine already knows about the campaign: runs
// that succeeded with their files in the results directory are done.
func (t *tracker) known(ctx context.Context, w *engine.StatusWatch) {
	for rec := range w.Updates() {
		if rec == nil {
			return
		}
		st := t.state(rec.Run)
		if st != nil && rec.State == simswarm.RunSucceeded && keyOf(rec.Key) == st.key && rec.LocalDir == t.p.results && !t.owns(rec) {
			// Another campaign's run wrote over its files: it runs again,
			// and no runner may answer it from its key's record while that
			// points here (the files are present, as the other run's).
			if full, ok, err := t.c.Eng.Run(ctx, rec.Key); err == nil && ok && full.LocalDir == t.p.results {
				_ = t.c.Eng.ForgetRun(ctx, rec.Key)
			}
			continue
		}
		if st != nil && rec.State == simswarm.RunSucceeded && keyOf(rec.Key) == st.key &&
			(t.own.Holds(rec.Key) || (t.owns(rec) && t.c.restore(ctx, t.p, rec))) {
			st.cached = true
			t.claimed(rec)
			t.sum.fingerprint(rec.Run, rec.Fingerprint)
			t.provenance(rec)
		}
		if st != nil && !st.cached && t.c.Opt.ReuseFailures && rec.State == simswarm.RunFailed && keyOf(rec.Key) == st.key &&
			(rec.Exit != 0 || len(rec.Errors) > 0) {
			// The simulation itself failed on this build: it would again.
			st.cached, st.failed = true, true
			vars := ""
			if i, ok := t.index(rec.Run); ok {
				vars = t.p.runs.Vars(i)
			}
			t.failures[rec.Run] = failureOf(rec, vars, t.p.results)
		}
	}
}

// claimed notes a done run's files as its own in the results directory:
// another run of the campaign naming one of them is refused.
func (t *tracker) claimed(rec *simswarm.RunRecord) {
	names := make([]string, 0, len(rec.Files))
	for _, f := range rec.Files {
		if n, err := safedir.CheckName(f.Name); err == nil {
			names = append(names, n)
		}
	}
	safedir.Claimed(t.p.results, rec.Campaign, rec.Run, names)
}

// plan decides what to submit: runs neither done nor with a job in the
// queue (an earlier client, killed or still attached, submitted those, and
// their outcome will come).
func (t *tracker) plan(ctx context.Context) ([]int, error) {
	queued, err := t.c.Eng.Queued(ctx, t.p.id)
	if err != nil {
		return nil, err
	}
	var submit []int
	for i := range t.states {
		n := t.p.runs.Run(i)
		st := &t.states[i]
		switch {
		case st.cached && st.failed:
			t.sum.Cached++
			t.sum.Failed++
		case st.cached:
			t.sum.Cached++
			t.sum.Succeeded++
		case queued[n]:
			st.waiting = true
		default:
			st.waiting = true
			submit = append(submit, n)
		}
	}
	t.left = t.p.runs.Len() - t.sum.Cached
	t.counts = progress.Counts{Total: t.p.runs.Len(), Done: t.sum.Cached}
	longestFirst(t.hist, t.p, submit, t.index)
	positions := make([]int, 0, len(submit))
	for _, n := range submit {
		if i, ok := t.index(n); ok {
			positions = append(positions, i)
		}
	}
	t.slots = t.c.slots(ctx)
	if e := estimate(t.hist, t.p, positions, t.slots); e != nil {
		t.expected = time.Duration(e.Seconds * float64(time.Second))
	}
	return submit, nil
}

// wait follows the campaign until every run it waits for has an outcome,
// the user interrupts, or someone else cancels the campaign.
func (t *tracker) wait(ctx context.Context, w *engine.StatusWatch) (*Summary, error) {
	c, p := t.c, t.p
	t.bar = progress.New(c.Opt.Progress, p.runs.Len(), c.Opt.Quiet)
	t.bar.Expect(t.expected)
	defer t.bar.Finish()
	t.show()
	cw, err := c.Eng.WatchCampaign(ctx, p.id)
	if err != nil {
		return nil, err
	}
	defer cw.Stop()
	stopNotice := c.sayIfMissing(ctx, simswarm.RoleRunner)
	defer stopNotice()
	tick := time.NewTicker(reconcileEvery)
	defer tick.Stop()
	clock := time.NewTicker(time.Second) // the progress shows time passing
	defer clock.Stop()
	last := time.Now()
	var cancelled <-chan time.Time // runs on a cancelled campaign's runners get this long to report
	var pending <-chan time.Time   // runs not seen running are cancelled then
	camps := cw.Updates()
	for t.left > 0 {
		select {
		case <-ctx.Done():
			return t.sum, ctx.Err()
		case <-c.Opt.Interrupt:
			t.bar.Finish()
			t.sum.Failures = sorted(t.failures)
			err := c.cancelOnInterrupt(p.id)
			if !errors.As(err, new(*NotCancelledError)) {
				t.sum.Cancelled += t.left
			}
			return t.sum, err
		case camp, ok := <-camps:
			if !ok {
				camps = nil // the watch ended with ctx
				continue
			}
			if camp.State == simswarm.CampaignCancelled && cancelled == nil {
				// Cancelled elsewhere (the dashboard): runs not started will
				// not be; running ones report how they ended.
				c.warnf("campaign %s was cancelled", p.id)
				// A run's "running" may reach this client a moment after
				// the cancel (it is published without waiting): runs not
				// seen running are counted cancelled a little later.
				pending = time.After(cancelGrace)
				cancelled = time.After(c.Eng.Lease + 10*time.Second)
			}
		case <-pending:
			t.cancelPending()
		case <-cancelled:
			t.cancelRest()
		case <-clock.C:
			t.show()
		case <-tick.C:
			if n := c.slots(ctx); n > 0 {
				t.slots = n // runners come and go
			}
			if cancelled == nil && time.Since(last) >= reconcileEvery {
				if err := t.reconcile(ctx); err != nil {
					return t.sum, err
				}
				last = time.Now()
			}
		case rec, ok := <-w.Updates():
			if !ok {
				return t.sum, ctx.Err()
			}
			if rec != nil {
				last = time.Now()
				t.apply(ctx, rec)
			}
		}
	}
	t.sum.Failures = sorted(t.failures)
	// A cancel from elsewhere stays the campaign's state: only an active
	// campaign becomes done.
	if _, err := c.Eng.FinishCampaign(ctx, p.id); err != nil {
		c.warnf("record campaign %s done: %v", p.id, err)
	}
	return t.sum, nil
}

// apply takes in one run record of the campaign.
func (t *tracker) apply(ctx context.Context, rec *simswarm.RunRecord) {
	st := t.state(rec.Run)
	if st == nil || !st.waiting || keyOf(rec.Key) != st.key {
		return
	}
	wasRunning := st.running
	st.running = rec.State == simswarm.RunRunning
	switch rec.State {
	case simswarm.RunRunning:
		if !wasRunning {
			t.counts.Running++
		}
	case simswarm.RunSucceeded, simswarm.RunFailed, simswarm.RunCancelled:
		if wasRunning {
			t.counts.Running--
		}
		st.waiting = false
		t.left--
		if err := t.c.extract(ctx, t.p, rec); err != nil {
			rec.State = simswarm.RunFailed
			rec.Reason = "fetching results: " + err.Error()
		}
		t.provenance(rec)
		t.count(rec)
	}
	t.show()
}

// count adds a final outcome to the summary.
func (t *tracker) count(rec *simswarm.RunRecord) {
	s := t.sum
	switch {
	case rec.State == simswarm.RunSucceeded && rec.Reused:
		s.fingerprint(rec.Run, rec.Fingerprint)
		s.Succeeded++
		s.Cached++
		t.counts.Done++
	case rec.State == simswarm.RunSucceeded:
		if i, ok := t.index(rec.Run); ok && t.hist != nil {
			t.hist.note(t.p, i, rec.Wall)
		}
		s.fingerprint(rec.Run, rec.Fingerprint)
		s.Succeeded++
		s.Executed++
		t.counts.Done++
		s.host(rec.Host)
	case rec.State == simswarm.RunCancelled:
		s.Cancelled++
		t.counts.Failed++
	default:
		s.Failed++
		s.Executed++
		s.host(rec.Host)
		t.counts.Failed++
		vars := ""
		if i, ok := t.index(rec.Run); ok {
			vars = t.p.runs.Vars(i)
		}
		t.failures[rec.Run] = failureOf(rec, vars, t.p.results)
	}
}

// cancelGrace is how long after a cancel from elsewhere a run not seen
// running is taken as never started.
const cancelGrace = 3 * time.Second

// cancelPending counts the runs of a cancelled campaign that never
// started as cancelled; cancelRest does it for those still running after
// their runners had time to report.
func (t *tracker) cancelPending() {
	for i := range t.states {
		if st := &t.states[i]; st.waiting && !st.running {
			t.cancelOne(st)
		}
	}
	t.show()
}

func (t *tracker) cancelRest() {
	for i := range t.states {
		if st := &t.states[i]; st.waiting {
			if st.running {
				t.counts.Running--
			}
			t.cancelOne(st)
		}
	}
	t.show()
}

func (t *tracker) cancelOne(st *runState) {
	st.waiting, st.running = false, false
	t.left--
	t.sum.Cancelled++
	t.counts.Failed++
}

// submit enqueues the jobs of runs, in this client's submission, each
// with its expected time from hist (nil: none).
func (c *Client) submit(ctx context.Context, p *prepared, runs []int, hist *History) error {
	index := p.runs.indexer()
	return c.Eng.SubmitRuns(ctx, len(runs), func(i int) simswarm.RunJob {
		ident := ""
		at, ok := index(runs[i])
		if ok {
			ident = p.runs.Ident(at)
		}
		j := p.camp.RunJob(runs[i], ident, p.submission)
		if ok && hist != nil {
			if s, known := hist.expect(p, at); known {
				j.Expect = time.Duration(s * float64(time.Second))
			}
		}
		return j
	})
}

// present reports whether every result file of a run is in the results
// directory as the run wrote it.
func present(dir string, rec *simswarm.RunRecord) bool {
	for _, f := range rec.Files {
		fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f.Name)))
		if err != nil || fi.Size() != f.Size {
			return false
		}
	}
	return true
}

// restore makes a finished run's files present again if they went missing;
// false means the run must execute again (its files lived only in a results
// directory that lost them).
func (c *Client) restore(ctx context.Context, p *prepared, rec *simswarm.RunRecord) bool {
	if present(p.results, rec) {
		return true
	}
	full, ok, err := c.Eng.Run(ctx, rec.Key)
	if err != nil || !ok || full.State != simswarm.RunSucceeded {
		return false
	}
	if full.LocalDir != "" {
		// The only copy was in a results directory; run it again.
		_ = c.Eng.ForgetRun(ctx, rec.Key)
		return false
	}
	return c.deliver(ctx, p.results, full) == nil
}

// extract lays a finished run's files into the results directory.
func (c *Client) extract(ctx context.Context, p *prepared, rec *simswarm.RunRecord) error {
	if len(rec.Files) == 0 || (rec.LocalDir == p.results && present(p.results, rec)) {
		return nil
	}
	full, err := c.Eng.RunFinished(ctx, rec.Key, rec.Finished, 30*time.Second)
	if err != nil {
		return err
	}
	return c.deliver(ctx, p.results, full)
}

func failureOf(rec *simswarm.RunRecord, vars, results string) *Failure {
	f := &Failure{Run: rec.Run, Vars: vars, Exit: rec.Exit, Signal: rec.Signal, TimedOut: rec.TimedOut, Reason: rec.Reason, Errors: rec.Errors}
	if f.Errors == nil {
		f.Errors = []string{}
	}
	for _, file := range rec.Files {
		if filepath.Ext(file.Name) == ".out" {
			f.Output = filepath.Join(results, filepath.FromSlash(file.Name))
		}
	}
	return f
}

func sorted(m map[int]*Failure) []Failure {
	out := make([]Failure, 0, len(m))
	for _, f := range m {
		out = append(out, *f)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Run < out[b].Run })
	return out
}

// Describe says how a failed run ended, for people.
func (f *Failure) Describe() string {
	switch {
	case f.TimedOut:
		return "timed out"
	case f.Signal != "":
		return "killed by " + f.Signal
	case f.Reason != "" && f.Exit == 0:
		return f.Reason
	default:
		return "exit status " + strconv.Itoa(f.Exit)
	}
}

func (s *Summary) host(h string) {
	if h == "" {
		return
	}
	if s.Hosts == nil {
		s.Hosts = map[string]int{}
	}
	s.Hosts[h]++
}

// reconcileEvery is how long a quiet campaign waits before it checks that
// every run it waits for still has a job or an outcome.
const reconcileEvery = 15 * time.Second

// reconcile looks for runs whose outcome the client missed or whose job the
// engine lost (a server that died between its fsyncs): an outcome is
// applied, a lost job is submitted again.
func (t *tracker) reconcile(ctx context.Context) error {
	queued, err := t.c.Eng.Queued(ctx, t.p.id)
	if err != nil {
		return nil // the engine is away; try again at the next tick
	}
	var lost []int
	for i := range t.states {
		st := &t.states[i]
		n := t.p.runs.Run(i)
		if !st.waiting || queued[n] {
			continue
		}
		rec, ok, err := t.c.Eng.RunStatus(ctx, t.p.id, n)
		if err != nil {
			return nil
		}
		if ok && keyOf(rec.Key) == st.key && rec.Done() {
			t.apply(ctx, rec)
			continue
		}
		lost = append(lost, n)
	}
	if len(lost) == 0 {
		return nil
	}
	sort.Ints(lost)
	return t.c.submit(ctx, t.p, lost, t.hist)
}
