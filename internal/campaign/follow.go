package campaign

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/archive"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/progress"
)

// runState is what the client keeps per run: little, so that a campaign of
// 100 000 runs stays small in memory.
type runState struct {
	key     string
	state   string
	waiting bool // submitted or queued: an outcome will come
	cached  bool
}

// follow submits the runs that are not done and follows them to the end.
func (c *Client) follow(ctx context.Context, p *prepared) (*Summary, error) {
	camp := simswarm.Campaign{ID: p.id, Project: p.proj.Root, Workdir: p.workdir, Command: p.cmd,
		Snapshot: p.snapshot, Artifact: p.artifact, Layout: p.layout, Runs: len(p.runs), Submitted: time.Now(), State: "active"}
	if err := engine.PutJSON(ctx, c.Eng.Campaigns, p.id, camp); err != nil {
		return nil, err
	}
	states := make(map[int]*runState, len(p.runs))
	varsOf := map[int]string{}
	for i, n := range p.runs {
		states[n] = &runState{key: simswarm.RunKey(p.artifact, p.workdir, p.cmd, n)}
		if i < len(p.vars) {
			varsOf[n] = p.vars[i]
		}
	}
	w, err := c.Eng.Status.Watch(ctx, p.id+".*")
	if err != nil {
		return nil, fmt.Errorf("watch campaign: %w", err)
	}
	defer w.Stop()
	sum := &Summary{Campaign: p.id, Runs: len(p.runs), Results: p.results, Build: c.built}
	failures := map[int]*Failure{}

	// What the engine already knows about this campaign.
	for e := range w.Updates() {
		if e == nil {
			break
		}
		n, rec, ok := c.statusEntry(e, p.id)
		if !ok || states[n] == nil {
			continue
		}
		st := states[n]
		if rec.State == simswarm.RunSucceeded && rec.Key == st.key && c.restore(ctx, p, rec) {
			st.state, st.cached = simswarm.RunSucceeded, true
			sum.fingerprint(n, rec.Fingerprint)
		}
	}
	queued, err := c.queued(ctx, p.id)
	if err != nil {
		return nil, err
	}
	var submit []int
	for _, n := range p.runs {
		st := states[n]
		switch {
		case st.cached:
			sum.Cached++
			sum.Succeeded++
		case queued[n]:
			st.waiting = true
		default:
			st.waiting = true
			submit = append(submit, n)
		}
	}
	if err := c.submit(ctx, p, submit, states); err != nil {
		return nil, err
	}
	if c.Opt.Detach {
		sum.Detached = true
		sum.Failures = []Failure{}
		return sum, nil
	}
	counts := progress.Counts{Total: len(p.runs), Done: sum.Cached}
	bar := progress.New(c.Opt.Progress, len(p.runs), c.Opt.Quiet)
	defer bar.Finish()
	bar.Update(counts)
	left := len(p.runs) - sum.Cached
	apply := func(n int, rec *simswarm.RunRecord) {
		st := states[n]
		if st == nil || !st.waiting || rec.Key != st.key {
			return
		}
		prev := st.state
		st.state = rec.State
		switch rec.State {
		case simswarm.RunRunning:
			if prev != simswarm.RunRunning {
				counts.Running++
			}
		case simswarm.RunSucceeded, simswarm.RunFailed, simswarm.RunCancelled:
			if prev == simswarm.RunRunning {
				counts.Running--
			}
			st.waiting = false
			left--
			if err := c.extract(ctx, p, rec); err != nil {
				rec.State = simswarm.RunFailed
				rec.Reason = "fetching results: " + err.Error()
			}
			switch {
			case rec.State == simswarm.RunSucceeded && rec.Reused:
				sum.fingerprint(n, rec.Fingerprint)
				sum.Succeeded++
				sum.Cached++
				counts.Done++
			case rec.State == simswarm.RunSucceeded:
				sum.fingerprint(n, rec.Fingerprint)
				sum.Succeeded++
				sum.Executed++
				counts.Done++
				sum.host(rec.Host)
			case rec.State == simswarm.RunCancelled:
				sum.Cancelled++
				counts.Failed++
			default:
				sum.Failed++
				sum.Executed++
				sum.host(rec.Host)
				counts.Failed++
				failures[n] = failureOf(rec, varsOf[n], p.results)
			}
		}
		bar.Update(counts)
	}
	tick := time.NewTicker(reconcileEvery)
	defer tick.Stop()
	last := time.Now()
	for left > 0 {
		select {
		case <-ctx.Done():
			return sum, ctx.Err()
		case <-c.Opt.Interrupt:
			bar.Finish()
			c.cancel(p.id)
			sum.Cancelled = left
			sum.Failures = sorted(failures)
			return sum, ErrInterrupted
		case <-tick.C:
			if time.Since(last) >= reconcileEvery {
				if err := c.reconcile(ctx, p, states, apply); err != nil {
					return sum, err
				}
				last = time.Now()
			}
		case e := <-w.Updates():
			if e == nil {
				continue
			}
			last = time.Now()
			if n, rec, ok := c.statusEntry(e, p.id); ok {
				apply(n, rec)
			}
		}
	}
	sum.Failures = sorted(failures)
	// Runners on this host wrote through a scratch directory inside the
	// results; leave results/ as opp_runall would (it fails while in use).
	_ = os.Remove(filepath.Join(p.results, ".simswarm-scratch"))
	// A cancel from elsewhere (the dashboard) stays the campaign's state.
	var now simswarm.Campaign
	if ok, _ := engine.GetJSON(ctx, c.Eng.Campaigns, p.id, &now); !ok || now.State != "cancelled" || sum.Cancelled == 0 {
		camp.State = "done"
		_ = engine.PutJSON(ctx, c.Eng.Campaigns, p.id, camp)
	}
	return sum, nil
}

func (c *Client) statusEntry(e jetstream.KeyValueEntry, id string) (int, *simswarm.RunRecord, bool) {
	if e.Operation() != jetstream.KeyValuePut {
		return 0, nil, false
	}
	camp, n, ok := simswarm.ParseStatusKey(e.Key())
	if !ok || camp != id {
		return 0, nil, false
	}
	var rec simswarm.RunRecord
	if json.Unmarshal(e.Value(), &rec) != nil {
		return 0, nil, false
	}
	return n, &rec, true
}

// queued lists the runs of the campaign that have a job in the queue, taken
// or not: an earlier client (killed, or still attached) submitted them and
// their outcome will come.
func (c *Client) queued(ctx context.Context, id string) (map[int]bool, error) {
	info, err := c.Eng.Jobs.Info(ctx, jetstream.WithSubjectFilter(engine.CampaignSubjects(id)))
	if err != nil {
		return nil, fmt.Errorf("inspect queue: %w", err)
	}
	out := map[int]bool{}
	prefix := len(engine.CampaignSubjects(id)) - 1
	for subj := range info.State.Subjects {
		if n, err := strconv.Atoi(subj[prefix:]); err == nil {
			out[n] = true
		}
	}
	return out, nil
}

// submit enqueues the jobs of runs.
func (c *Client) submit(ctx context.Context, p *prepared, runs []int, states map[int]*runState) error {
	return c.Eng.PublishRuns(ctx, len(runs), func(i int) simswarm.RunJob {
		n := runs[i]
		job := simswarm.RunJob{Version: simswarm.Version, Campaign: p.id, Run: n, Key: states[n].key,
			Snapshot: p.snapshot, Artifact: p.artifact, Workdir: p.workdir, Command: p.cmd, Layout: p.layout,
			Timeout: c.Opt.Timeout, Batch: c.Opt.Batch, Retries: c.Opt.Retries}
		if c.Opt.Local {
			job.Local, job.Host = p.results, c.Opt.Host
		}
		return job
	})
}

// cancel removes the campaign's waiting jobs and tells runners to stop its
// running ones.
func (c *Client) cancel(id string) {
	ctx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	_ = c.Eng.Jobs.Purge(ctx, jetstream.WithPurgeSubject(engine.CampaignSubjects(id)))
	_ = c.Eng.NC.Publish(engine.SubjectCancel+"."+id, []byte(id))
	_ = c.Eng.NC.FlushTimeout(5 * time.Second)
	var camp simswarm.Campaign
	if ok, _ := engine.GetJSON(ctx, c.Eng.Campaigns, id, &camp); ok {
		camp.State = "cancelled"
		_ = engine.PutJSON(ctx, c.Eng.Campaigns, id, camp)
	}
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
	var full simswarm.RunRecord
	if ok, err := engine.GetJSON(ctx, c.Eng.Runs, rec.Key, &full); err != nil || !ok || full.State != simswarm.RunSucceeded {
		return false
	}
	if full.LocalDir != "" {
		// The only copy was in a results directory; run it again.
		_ = c.Eng.Runs.Delete(ctx, rec.Key)
		return false
	}
	return c.write(ctx, p.results, &full) == nil
}

// extract lays a finished run's files into the results directory.
func (c *Client) extract(ctx context.Context, p *prepared, rec *simswarm.RunRecord) error {
	if len(rec.Files) == 0 || (rec.LocalDir == p.results && present(p.results, rec)) {
		return nil
	}
	// On a replicated engine a read may reach a copy a moment behind the
	// one the runner wrote, or time out while the client moves to another
	// server: keep trying, through the leader too, for a while before
	// calling the record lost.
	var full simswarm.RunRecord
	deadline := time.Now().Add(30 * time.Second)
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := engine.GetJSON(rctx, c.Eng.Runs, rec.Key, &full)
		if err != nil || !ok || !full.Finished.Equal(rec.Finished) {
			ok, err = c.Eng.GetFromLeader(rctx, engine.BucketRuns, rec.Key, &full)
		}
		cancel()
		if err == nil && ok && full.Finished.Equal(rec.Finished) {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil {
				return err
			}
			return fmt.Errorf("run record %s missing", simswarm.Short(rec.Key))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return c.write(ctx, p.results, &full)
}

func (c *Client) write(ctx context.Context, dir string, rec *simswarm.RunRecord) error {
	if rec.Object != "" {
		obj, err := c.Eng.Blobs.Get(ctx, rec.Object)
		if err != nil {
			return fmt.Errorf("fetch %s: %w", rec.Object, err)
		}
		defer obj.Close()
		_, err = archive.Unpack(obj, dir)
		return err
	}
	for _, f := range rec.Files {
		name, err := archive.Clean(f.Name)
		if err != nil {
			return err
		}
		if int64(len(f.Data)) != f.Size {
			return fmt.Errorf("result %s: record holds %d of %d bytes", name, len(f.Data), f.Size)
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		tmp := dst + ".simswarm-tmp"
		if err := os.WriteFile(tmp, f.Data, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, dst); err != nil {
			return err
		}
	}
	return nil
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
func (c *Client) reconcile(ctx context.Context, p *prepared, states map[int]*runState, apply func(int, *simswarm.RunRecord)) error {
	queued, err := c.queued(ctx, p.id)
	if err != nil {
		return nil // the engine is away; try again at the next tick
	}
	var lost []int
	for n, st := range states {
		if !st.waiting || queued[n] {
			continue
		}
		var rec simswarm.RunRecord
		ok, err := engine.GetJSON(ctx, c.Eng.Status, simswarm.StatusKey(p.id, n), &rec)
		if err != nil {
			return nil
		}
		if ok && rec.Key == st.key && rec.Done() {
			apply(n, &rec)
			continue
		}
		lost = append(lost, n)
	}
	if len(lost) == 0 {
		return nil
	}
	sort.Ints(lost)
	return c.submit(ctx, p, lost, states)
}
