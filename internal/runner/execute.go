package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/omnetpp"
	"github.com/simswarm/simswarm/internal/proc"
	"github.com/simswarm/simswarm/internal/sweep"
)

// tailBytes is how much of a run's console output its record keeps.
const tailBytes = 4 << 10

// execute runs a group of jobs of one campaign: those already done under
// their key are answered from the store, the rest run in one process, and
// runs a failed batch leaves in doubt run again alone.
func (r *Runner) execute(ctx context.Context, jobs []job) {
	var todo []job
	for _, j := range jobs {
		if r.answerCached(ctx, j) {
			continue
		}
		todo = append(todo, j)
	}
	if len(todo) == 0 {
		return
	}
	dir, release, err := r.trees.get(ctx, todo[0].Snapshot, todo[0].Artifact, todo[0].Layout)
	if err != nil {
		r.infraFault(ctx, todo, err)
		return
	}
	defer release()
	r.healthy()
	sort.Slice(todo, func(a, b int) bool { return todo[a].Run < todo[b].Run })
	// Each pass runs alone what the previous left in doubt; attempts and
	// batch splitting only shrink the set, so this ends.
	retry := r.process(ctx, dir, todo)
	for len(retry) > 0 && ctx.Err() == nil {
		var next []job
		for _, j := range retry {
			next = append(next, r.process(ctx, dir, []job{j})...)
		}
		retry = next
	}
}

// answerCached finishes a job whose run already succeeded under the same key
// (in this campaign or another): a finished run is never redone.
func (r *Runner) answerCached(ctx context.Context, j job) bool {
	var prev simswarm.RunRecord
	ok, err := engine.GetJSON(ctx, r.Eng.Runs, j.Key, &prev)
	if err != nil || !ok || prev.State != simswarm.RunSucceeded {
		return false
	}
	// Results written straight into a client's directory are not in the
	// store: they count only for that directory, and only while its files
	// are still there.
	if prev.LocalDir != "" && (prev.LocalDir != j.Local || !r.local(j) || !filesPresent(prev.LocalDir, prev.Files)) {
		return false
	}
	prev.Reused = true
	r.finish(ctx, j, &prev)
	return true
}

// infraFault hands jobs back for another try later, on this runner or
// another: the run itself never started.
func (r *Runner) infraFault(ctx context.Context, jobs []job, err error) {
	if ctx.Err() != nil {
		for _, j := range jobs {
			_ = j.msg.Nak()
		}
		return
	}
	r.Log.Warn("runner: cannot prepare run", "campaign", jobs[0].Campaign, "err", err)
	for _, j := range jobs {
		md, _ := j.msg.Metadata()
		n := uint64(1)
		if md != nil {
			n = md.NumDelivered
		}
		if n >= engine.MaxDeliver {
			r.finish(ctx, j, &simswarm.RunRecord{State: simswarm.RunFailed, Reason: err.Error()})
			continue
		}
		// Back to the queue at once, for a healthy runner; this one pauses.
		_ = j.msg.NakWithDelay(500 * time.Millisecond)
	}
	r.fault()
}

// fault notes that this host failed to prepare a job; healthy that it
// succeeded, ending the pause.
func (r *Runner) fault() {
	r.mu.Lock()
	r.faults++
	r.mu.Unlock()
}

func (r *Runner) healthy() {
	r.mu.Lock()
	r.faults = 0
	r.mu.Unlock()
}

// pause is how long the slots of a runner that keeps failing to prepare runs
// wait before taking another job: 1, 2, 4 ... 30 s after consecutive faults.
func (r *Runner) pause() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.faults == 0 {
		return 0
	}
	return min(time.Duration(1<<min(r.faults-1, 5))*time.Second, 30*time.Second)
}

// process runs jobs in one process and records the runs whose outcome is
// clear; it returns the runs to try again alone.
func (r *Runner) process(ctx context.Context, tree string, jobs []job) (retry []job) {
	first := jobs[0]
	scratch, err := r.scratchDir(first)
	if err != nil {
		r.infraFault(ctx, jobs, err)
		return nil
	}
	defer r.dropScratch(first, scratch)
	resDir := filepath.Join(scratch, "results")
	if err := os.MkdirAll(resDir, 0o755); err != nil {
		r.infraFault(ctx, jobs, err)
		return nil
	}
	argv, err := commandLine(first.Command, runsOf(jobs), resDir)
	if err != nil {
		r.finishAll(ctx, jobs, &simswarm.RunRecord{State: simswarm.RunFailed, Reason: err.Error()})
		return nil
	}
	started := time.Now()
	for _, j := range jobs {
		rec := &simswarm.RunRecord{Key: j.Key, Campaign: j.Campaign, Run: j.Run, State: simswarm.RunRunning,
			Worker: r.ID, Host: r.Host, Started: started, Batch: len(jobs)}
		// Progress only: not worth a round trip before the process starts.
		_, _ = r.Eng.PutAsync(engine.BucketStatus, simswarm.StatusKey(j.Campaign, j.Run), rec)
	}
	console, err := os.Create(filepath.Join(scratch, "console"))
	if err != nil {
		r.infraFault(ctx, jobs, err)
		return nil
	}
	idx := &headerIndex{start: started}
	var timeout time.Duration
	if first.Timeout > 0 {
		timeout = first.Timeout * time.Duration(len(jobs))
	}
	pctx, cancel := context.WithCancel(ctx)
	rc := &runCtx{cancel: cancel}
	for _, j := range jobs {
		rc.runs = append(rc.runs, simswarm.StatusKey(j.Campaign, j.Run))
	}
	r.track(first.Campaign, rc, true)
	stop := r.Eng.KeepAlive(msgsOf(jobs)...)
	res, err := proc.Run(pctx, proc.Spec{
		Argv:      argv,
		Dir:       filepath.Join(tree, filepath.FromSlash(first.Workdir)),
		Output:    io.MultiWriter(console, idx),
		Timeout:   timeout,
		TailBytes: tailBytes,
	})
	stop()
	cancelled := pctx.Err() != nil
	if err == nil {
		r.Log.Info("process ended", "campaign", first.Campaign, "runs", omnetpp.RunNumberArg(runsOf(jobs)), "how", res.Describe(), "wall", res.Wall)
	}
	r.track(first.Campaign, rc, false)
	cancel()
	console.Close()
	if ctx.Err() != nil {
		// The runner is stopping: the runs go back to the queue whole.
		for _, j := range jobs {
			_ = j.msg.Nak()
		}
		return nil
	}
	if err != nil {
		r.finishAll(ctx, jobs, &simswarm.RunRecord{State: simswarm.RunFailed, Exit: -1,
			Reason: fmt.Sprintf("cannot start %s: %v", argv[0], err), Started: started})
		return nil
	}
	if cancelled && !res.TimedOut {
		r.finishAll(ctx, jobs, &simswarm.RunRecord{State: simswarm.RunCancelled, Reason: "campaign cancelled", Started: started})
		return nil
	}
	if len(jobs) == 1 {
		rec := r.outcomeOf(readRange(filepath.Join(scratch, "console"), 0, idx.total, 1<<20), res, started)
		rec.Batch = 1
		r.collect(ctx, first, resDir, filepath.Join(scratch, "console"), 0, -1, rec)
		if first.Command.Kind == simswarm.KindOmnetpp && !res.Failed() {
			r.stats.add(first.BatchKey(), idx, res.Wall, 1)
		}
		if rec.State == simswarm.RunFailed && first.attempt < first.Retries {
			first.attempt++
			r.Log.Info("run failed, trying again", "campaign", first.Campaign, "run", first.Run, "attempt", first.attempt)
			return []job{first}
		}
		r.finish(ctx, first, rec)
		return nil
	}
	return r.settleBatch(ctx, jobs, res, idx, resDir, filepath.Join(scratch, "console"), started)
}

// settleBatch decides each run of a multi-run process. A run the process
// completed and moved past is done; the run it stopped in, and any it never
// reached, run again alone, because in OMNeT++ one failed run can make the
// following runs of the same process fail for that reason alone.
func (r *Runner) settleBatch(ctx context.Context, jobs []job, res *proc.Result, idx *headerIndex, resDir, console string, started time.Time) (retry []job) {
	byRun := map[int]job{}
	for _, j := range jobs {
		byRun[j.Run] = j
	}
	seen := idx.runs()
	end := started.Add(res.Wall)
	owners := attribute(resDir, seen)
	for i, h := range seen {
		j, ok := byRun[h.run]
		if !ok {
			continue
		}
		last := i == len(seen)-1
		segEnd := idx.total
		runEnd := end
		if !last {
			segEnd, runEnd = seen[i+1].offset, seen[i+1].at
		}
		wall := runEnd.Sub(h.at)
		cpu := time.Duration(0)
		if res.Wall > 0 {
			cpu = time.Duration(float64(res.CPU) * float64(wall) / float64(res.Wall))
		}
		part := readRange(console, h.offset, segEnd, 1<<20)
		if res.Failed() && (last || len(omnetpp.ErrorLines(part, 1)) > 0) {
			retry = append(retry, j)
			delete(byRun, h.run)
			continue
		}
		rec := r.outcomeOf(part, &proc.Result{Exit: 0, Wall: wall, CPU: cpu}, h.at)
		rec.Batch = len(jobs)
		r.collectFiles(ctx, j, resDir, owners[h.run], console, h.offset, segEnd, rec)
		r.finish(ctx, j, rec)
		delete(byRun, h.run)
	}
	if !res.Failed() && len(byRun) == 0 {
		r.stats.add(jobs[0].BatchKey(), idx, res.Wall, len(seen))
	}
	for _, j := range jobs {
		if _, left := byRun[j.Run]; left {
			retry = append(retry, j)
		}
	}
	sort.Slice(retry, func(a, b int) bool { return retry[a].Run < retry[b].Run })
	if len(retry) > 0 {
		r.stats.noBatch(jobs[0].BatchKey())
	}
	return retry
}

// outcomeOf reads a run's record from its console output and process result.
func (r *Runner) outcomeOf(output []byte, res *proc.Result, started time.Time) *simswarm.RunRecord {
	rec := &simswarm.RunRecord{
		State: simswarm.RunSucceeded, Exit: res.Exit, Signal: res.Signal, TimedOut: res.TimedOut,
		Wall: res.Wall, CPU: res.CPU, Started: started, Finished: started.Add(res.Wall),
	}
	if res.Failed() {
		rec.State = simswarm.RunFailed
		if why := omnetpp.LibraryProblem(output); why != "" {
			rec.Reason = "on " + r.Host + ": " + why
		}
	}
	rec.Errors = omnetpp.ErrorLines(output, 10)
	o := omnetpp.ParseOutcome(output)
	rec.Fingerprint, rec.Limit, rec.SimTime, rec.Events = o.Fingerprint, o.Limit, o.SimTime, o.Events
	t := output
	if len(t) > tailBytes {
		t = t[len(t)-tailBytes:]
	}
	rec.Tail = string(t)
	return rec
}

func (r *Runner) finishAll(ctx context.Context, jobs []job, tmpl *simswarm.RunRecord) {
	for _, j := range jobs {
		rec := *tmpl
		r.finish(ctx, j, &rec)
	}
}

// scratchDir is where one process writes. For a job from a client on this
// host it sits beside the client's results directory, so that moving the
// results there is a rename, not a copy.
func (r *Runner) scratchDir(j job) (string, error) {
	base := filepath.Join(r.Dir, "scratch")
	if r.local(j) {
		base = filepath.Join(j.Local, ".simswarm-scratch")
	}
	// Another slot may remove base between the two calls (see
	// dropScratch): try again then.
	var err error
	for range 3 {
		if err = os.MkdirAll(base, 0o755); err != nil {
			return "", err
		}
		var dir string
		if dir, err = os.MkdirTemp(base, fmt.Sprintf("%s-%d-", j.Campaign, j.Run)); err == nil {
			return dir, nil
		}
	}
	return "", err
}

// dropScratch removes a process's scratch directory, and the scratch base
// inside a client's results directory once it is empty: results/ should look
// as opp_runall leaves it.
func (r *Runner) dropScratch(j job, dir string) {
	os.RemoveAll(dir)
	if r.local(j) {
		_ = os.Remove(filepath.Dir(dir)) // fails while other slots use it
	}
}

func (r *Runner) local(j job) bool {
	return r.SharedDisk && j.Local != "" && j.Host == r.Host
}

func runsOf(jobs []job) []int {
	out := make([]int, len(jobs))
	for i, j := range jobs {
		out[i] = j.Run
	}
	return out
}

// commandLine is the process that executes runs of a command.
func commandLine(c simswarm.Command, runs []int, resDir string) ([]string, error) {
	switch c.Kind {
	case simswarm.KindOmnetpp:
		argv := append([]string(nil), c.Argv...)
		if !omnetpp.HasOption(argv, "-s") {
			argv = append(argv, "-s")
		}
		return append(argv, "-r", omnetpp.RunNumberArg(runs), "--result-dir="+resDir), nil
	case simswarm.KindTemplate:
		if len(runs) != 1 {
			return nil, errors.New("template commands run one run per process")
		}
		line, err := sweep.Expand(c, runs[0], resDir)
		if err != nil {
			return nil, err
		}
		return []string{"/bin/sh", "-c", line}, nil
	}
	return nil, fmt.Errorf("unknown command kind %q", c.Kind)
}

// headerIndex notes where in the console output each run of a batch begins.
type headerIndex struct {
	start     time.Time
	total     int64
	line      []byte
	lineStart int64
	inLine    bool
	mu        sync.Mutex
	heads     []header
}

type header struct {
	run    int
	offset int64
	at     time.Time
}

func (h *headerIndex) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		if !h.inLine {
			h.lineStart, h.inLine = h.total, true
		}
		chunk := p
		nl := bytes.IndexByte(p, '\n')
		if nl >= 0 {
			chunk = p[:nl+1]
		}
		// A header is short; the rest of a long line cannot make it one.
		if room := 256 - len(h.line); room > 0 {
			h.line = append(h.line, chunk[:min(room, len(chunk))]...)
		}
		h.total += int64(len(chunk))
		p = p[len(chunk):]
		if nl >= 0 {
			if _, run, ok := omnetpp.BatchHeader(h.line); ok {
				h.heads = append(h.heads, header{run: run, offset: h.lineStart, at: time.Now()})
			}
			h.line, h.inLine = h.line[:0], false
		}
	}
	return n, nil
}

func (h *headerIndex) runs() []header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]header(nil), h.heads...)
}

// firstAt is when the first run began: what came before is start-up.
func (h *headerIndex) firstAt() (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.heads) == 0 {
		return time.Time{}, false
	}
	return h.heads[0].at, true
}

func readRange(path string, from, to int64, max int64) []byte {
	if to-from > max {
		from = to - max
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	b := make([]byte, to-from)
	n, _ := f.ReadAt(b, from)
	return b[:n]
}

// attribute assigns result files of a batch to runs by the run number in
// their header; files that carry none go with the files sharing their name
// prefix, else to the first run.
func attribute(resDir string, seen []header) map[int][]string {
	owners := map[int][]string{}
	byPrefix := map[string]int{}
	var unknown []string
	_ = filepath.WalkDir(resDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(resDir, p)
		f, err := os.Open(p)
		if err != nil {
			return nil
		}
		n, ok := omnetpp.ResultRunNumber(f)
		f.Close()
		if ok {
			owners[n] = append(owners[n], rel)
			byPrefix[prefix(rel)] = n
		} else {
			unknown = append(unknown, rel)
		}
		return nil
	})
	for _, rel := range unknown {
		n, ok := byPrefix[prefix(rel)]
		if !ok && len(seen) > 0 {
			n = seen[0].run
		}
		owners[n] = append(owners[n], rel)
	}
	return owners
}

func prefix(name string) string {
	return strings.TrimSuffix(name, filepath.Ext(name))
}

// outName names a run's console output file as opp_runall's .out files are
// named: after the run's result files, else after the config and run.
func outName(c simswarm.Command, run int, files []string) string {
	pre := ""
files:
	for _, f := range files {
		switch filepath.Ext(f) {
		case ".sca", ".vec", ".vci", ".elog":
			p := prefix(f)
			if pre != "" && p != pre {
				pre = "" // result files of two names: name by the run
				break files
			}
			pre = p
		}
	}
	if pre != "" {
		return pre + ".out"
	}
	if c.Kind == simswarm.KindOmnetpp {
		return omnetpp.ConfigName(c.Argv) + "-#" + strconv.Itoa(run) + ".out"
	}
	return "run-#" + strconv.Itoa(run) + ".out"
}

func msgsOf(jobs []job) []jetstream.Msg {
	out := make([]jetstream.Msg, len(jobs))
	for i, j := range jobs {
		out[i] = j.msg
	}
	return out
}

func filesPresent(dir string, files []simswarm.File) bool {
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f.Name)))
		if err != nil || fi.Size() != f.Size {
			return false
		}
	}
	return true
}
