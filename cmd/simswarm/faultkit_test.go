package main

// What the fault tests share: a template project whose runs count
// themselves in a log, a lab of real servers and workers, and the checks
// every scenario makes (each run executed and stored once, its result in
// results/ once, the summary's counts).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/creds"
)

// countingJob is a run of the fault tests' template project: it appends
// `start N` and `done N` (with the runner's name, its pid and the time) to a
// log shared by every runner, so executions are counted by the runs
// themselves, not by what simswarm says about them.
const countingJob = `#!/bin/sh
n=$1 out=$2 log=$3 secs=$4
echo "start $n ${FAULT_HOST:-?} $$ $(date +%s.%N)" >> "$log"
sleep "$secs"
echo "run $n" > "$out/run-$n.txt"
echo "done $n ${FAULT_HOST:-?} $$ $(date +%s.%N)" >> "$log"
`

// faultProject writes a project of runs runs and returns its directory and
// the path of its execution log (passed to the runs as {args}, with the
// seconds each run sleeps).
func faultProject(t *testing.T, runs int) (dir, log string) {
	t.Helper()
	dir = t.TempDir()
	log = filepath.Join(t.TempDir(), "executions.log")
	toml := fmt.Sprintf("[build]\ncommand = \"\"\n\n[run]\ncommand = \"sh job.sh {run} {resultdir} {args}\"\nrepeat = %d\n", runs)
	write(t, filepath.Join(dir, "simswarm.toml"), toml)
	write(t, filepath.Join(dir, "job.sh"), countingJob)
	return dir, log
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// bigTree adds files files of random bytes, size bytes in all, under
// dir/data: a tree of INET's order that takes long to fetch.
func bigTree(t *testing.T, dir string, files int, size int64) {
	t.Helper()
	rng := mrand.NewChaCha8([32]byte{byte(time.Now().UnixNano())})
	buf := make([]byte, size/int64(files))
	for i := 0; i < files; i++ {
		sub := filepath.Join(dir, "data", strconv.Itoa(i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		_, _ = rng.Read(buf)
		if err := os.WriteFile(filepath.Join(sub, strconv.Itoa(i)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// execEvent is one line of the execution log.
type execEvent struct {
	done bool
	run  int
	host string
	pid  int
	at   time.Time
}

func readExecLog(t *testing.T, path string) []execEvent {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []execEvent
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 5 || (fs[0] != "start" && fs[0] != "done") {
			t.Fatalf("execution log %s: bad line %q", path, sc.Text())
		}
		n, _ := strconv.Atoi(fs[1])
		pid, _ := strconv.Atoi(fs[3])
		sec, _ := strconv.ParseFloat(fs[4], 64)
		out = append(out, execEvent{done: fs[0] == "done", run: n, host: fs[2], pid: pid,
			at: time.Unix(0, int64(sec*1e9))})
	}
	return out
}

// execCounts are per run: how often it started and finished, and whether
// it started again after it had finished once.
type execCounts struct {
	starts, dones  map[int]int
	rerunAfterDone []int
}

func countExecs(events []execEvent) execCounts {
	c := execCounts{starts: map[int]int{}, dones: map[int]int{}}
	for _, e := range events {
		if e.done {
			c.dones[e.run]++
		} else {
			if c.dones[e.run] > 0 {
				c.rerunAfterDone = append(c.rerunAfterDone, e.run)
			}
			c.starts[e.run]++
		}
	}
	return c
}

// checkExecutedOnce: every run of 0..runs-1 finished exactly once, none
// started again after it had finished, and each started once, except those
// of mayRestart (runs a killed host was executing), which may have started
// twice.
func checkExecutedOnce(t *testing.T, log string, runs int, mayRestart map[int]bool) execCounts {
	t.Helper()
	c := countExecs(readExecLog(t, log))
	for n := 0; n < runs; n++ {
		if c.dones[n] != 1 {
			t.Errorf("run %d finished %d times (the execution log's `done %d` lines), want once", n, c.dones[n], n)
		}
		limit := 1
		if mayRestart[n] {
			limit = 2
		}
		if c.starts[n] < 1 || c.starts[n] > limit {
			t.Errorf("run %d started %d times, want %s", n, c.starts[n], map[int]string{1: "once", 2: "once, or twice as its host was killed"}[limit])
		}
	}
	for _, n := range c.rerunAfterDone {
		t.Errorf("run %d was executed again after it had finished", n)
	}
	for n := range c.starts {
		if n < 0 || n >= runs {
			t.Errorf("the log names run %d, outside 0..%d", n, runs-1)
		}
	}
	return c
}

// checkResults: results/ holds each of runs' result file once, with the
// content that run wrote.
func checkResults(t *testing.T, dir string, runs []int) {
	t.Helper()
	got := files(t, filepath.Join(dir, "results"), "run-*.txt")
	if len(got) != len(runs) {
		var names []string
		for _, g := range got {
			names = append(names, filepath.Base(g))
		}
		t.Errorf("results/ holds %d run files, want %d: %v", len(got), len(runs), names)
	}
	for _, n := range runs {
		p := filepath.Join(dir, "results", fmt.Sprintf("run-%d.txt", n))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("result of run %d: %v", n, err)
		} else if string(b) != fmt.Sprintf("run %d\n", n) {
			t.Errorf("result of run %d is %q", n, b)
		}
	}
}

func upTo(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// faultLab is a server (or three), a builder and runners, each on a node
// of its own; every runner's runs know its name as $FAULT_HOST.
type faultLab struct {
	lab     *netlab
	servers []*node
	runners []*node
	url     string // every server, comma-separated
	creds   string
}

type faultOpts struct {
	servers    int      // 1 or 3 (--cluster, --replicas 3)
	runners    int      // each with 2 slots
	serverArgs []string // e.g. --lease 1s
}

func newFaultLab(t *testing.T, o faultOpts) *faultLab {
	t.Helper()
	var names []string
	for i := 1; i <= o.servers; i++ {
		names = append(names, "s"+strconv.Itoa(i))
	}
	names = append(names, "builder")
	for i := 1; i <= o.runners; i++ {
		names = append(names, "runner"+strconv.Itoa(i))
	}
	names = append(names, "dash")
	f := &faultLab{lab: newNetlab(t, names...)}
	state := t.TempDir()
	f.creds = filepath.Join(state, "client.creds")
	writeCreds(t, f.creds)
	var urls []string
	for i := 1; i <= o.servers; i++ {
		name := "s" + strconv.Itoa(i)
		args := []string{"server", "--listen", f.lab.addr(name) + ":4222", "--state", filepath.Join(state, name),
			"--name", name, "--creds", f.creds}
		if o.servers > 1 {
			var routes []string
			for j := 1; j <= o.servers; j++ {
				if j != i {
					routes = append(routes, "nats://"+f.lab.addr("s"+strconv.Itoa(j))+":6222")
				}
			}
			args = append(args, "--cluster", f.lab.addr(name)+":6222", "--routes", strings.Join(routes, ","), "--replicas", strconv.Itoa(o.servers))
		}
		f.servers = append(f.servers, f.lab.start(name, append(args, o.serverArgs...)...))
		urls = append(urls, "nats://"+f.lab.addr(name)+":4222")
	}
	f.url = strings.Join(urls, ",")
	for _, s := range f.servers {
		waitLog(t, s, "listening", 2*time.Minute)
	}
	work := t.TempDir()
	f.lab.start("builder", "builder", "--server", f.url, "--creds", f.creds, "--dir", filepath.Join(work, "ws"),
		"--ccache-dir", filepath.Join(work, "ccache"))
	for i := 1; i <= o.runners; i++ {
		name := "runner" + strconv.Itoa(i)
		f.runners = append(f.runners, f.lab.startEnv(name, []string{"FAULT_HOST=" + name}, "runner", "--server", f.url,
			"--creds", f.creds, "--slots", "2", "--name", name, "--cache", filepath.Join(work, name), "-v"))
	}
	for _, r := range f.runners {
		waitLog(t, r, "connected", time.Minute)
	}
	return f
}

// client is a simswarm run of the project in dir, started in the root
// namespace, following until the end.
func (f *faultLab) client(t *testing.T, dir, log string, secs float64, extra ...string) *background {
	t.Helper()
	args := append([]string{"run", "--server", f.url, "--creds", f.creds, "--json", "-q"}, extra...)
	args = append(args, "--", log, strconv.FormatFloat(secs, 'f', -1, 64))
	cmd := exec.Command(binary, args...)
	cmd.Dir, cmd.Env = dir, append(cleanEnv(), "SIMSWARM_STATE="+t.TempDir())
	return startBackground(t, cmd)
}

// waitEvents waits until the execution log satisfies ok.
func waitEvents(t *testing.T, log string, within time.Duration, what string, ok func([]execEvent) bool) []execEvent {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ev := readExecLog(t, log)
		if ok(ev) {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %s; execution log:\n%s", what, within, readFile(t, log))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func countDone(ev []execEvent) int {
	n := 0
	for _, e := range ev {
		if e.done {
			n++
		}
	}
	return n
}

// killHost SIGKILLs a runner and every process under it at once, as the
// loss of its host would.
func killHost(t *testing.T, n *node) {
	t.Helper()
	pids := descendants(n.Pid())
	n.Signal(syscall.SIGKILL)
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
}

// descendants lists the processes under pid, from /proc.
func descendants(pid int) []int {
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p))
		for _, task := range tasks {
			b, _ := os.ReadFile(task)
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
					queue = append(queue, c)
				}
			}
		}
	}
	return out
}

// connectEngine opens a NATS connection to the lab's servers, for what
// only the engine can tell (stream leaders, what is stored).
func (f *faultLab) connectEngine(t *testing.T) jetstream.JetStream {
	t.Helper()
	c, err := creds.Load(f.creds)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(f.url, nats.UserInfo(c.User, c.Password), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// streamInfo asks for a stream's info, retrying for a while (a cluster
// that lost a server takes a moment to elect a new leader).
func streamInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		s, err := js.Stream(ctx, name)
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = s.Info(ctx)
		}
		cancel()
		if err == nil && (info.Cluster == nil || info.Cluster.Leader != "" || len(info.Cluster.Replicas) == 0) {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s: %v", name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkStoredOnce: the runs bucket holds one record per run. Each is
// written once by a runner, and a second time by the client when it has
// fetched the run's results (the record then says where they went and the
// archive is gone).
func (f *faultLab) checkStoredOnce(t *testing.T, runs int) {
	t.Helper()
	js := f.connectEngine(t)
	info := streamInfo(t, js, "KV_simswarm_runs")
	if info.State.Msgs != uint64(runs) {
		t.Errorf("the runs bucket holds %d records, want %d", info.State.Msgs, runs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "simswarm_runs")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	delivered := 0
	for key := range keys.Keys() {
		en, err := kv.Get(ctx, key)
		if err != nil {
			t.Fatalf("run record %s: %v", key, err)
		}
		var rec simswarm.RunRecord
		if err := json.Unmarshal(en.Value(), &rec); err != nil {
			t.Fatalf("run record %s: %v", key, err)
		}
		if rec.LocalDir != "" && rec.Object == "" {
			delivered++
		}
	}
	// A write retried after its answer was lost (the stream leader moved)
	// stores the same outcome twice: harmless, and why this is a log line
	// and not a check. Runs executed twice are caught by the execution log.
	if want := uint64(runs + delivered); info.State.LastSeq != want {
		t.Logf("run records were written %d times for %d runs (%d of them delivered)", info.State.LastSeq, runs, delivered)
	}
}

// leaders maps each server name to the number of the campaign-critical
// streams (jobs, run records, run status) it leads.
func (f *faultLab) leaders(t *testing.T) (map[string]int, string) {
	t.Helper()
	js := f.connectEngine(t)
	out := map[string]int{}
	var desc []string
	for _, name := range []string{"SIMSWARM_JOBS", "KV_simswarm_runs", "KV_simswarm_status"} {
		info := streamInfo(t, js, name)
		if info.Cluster == nil || info.Cluster.Leader == "" {
			t.Fatalf("stream %s has no leader", name)
		}
		out[info.Cluster.Leader]++
		desc = append(desc, name+"@"+info.Cluster.Leader)
	}
	return out, strings.Join(desc, " ")
}

// checkSummary compares a --json summary with what it must say.
func checkSummary(t *testing.T, s summary, want summary) {
	t.Helper()
	if s.Runs != want.Runs || s.Succeeded != want.Succeeded || s.Failed != want.Failed || s.Executed != want.Executed ||
		s.Cached != want.Cached || s.Cancelled != want.Cancelled {
		t.Errorf("summary: %d runs, %d succeeded, %d failed, %d executed, %d already done, %d cancelled; want %d, %d, %d, %d, %d, %d",
			s.Runs, s.Succeeded, s.Failed, s.Executed, s.Cached, s.Cancelled,
			want.Runs, want.Succeeded, want.Failed, want.Executed, want.Cached, want.Cancelled)
	}
}

// checkAllOnce is what a campaign of runs runs must come to whatever the
// fault: each executed, stored and in results/ once, all counted as
// executed in the summary; only the runs of mayRestart may have started
// twice.
func (f *faultLab) checkAllOnce(t *testing.T, dir, log string, s summary, runs int, mayRestart map[int]bool) {
	t.Helper()
	checkExecutedOnce(t, log, runs, mayRestart)
	checkSummary(t, s, summary{Runs: runs, Succeeded: runs, Executed: runs})
	checkResults(t, dir, upTo(runs))
	f.checkStoredOnce(t, runs)
}

func sortedKeys(m map[int]bool) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}
