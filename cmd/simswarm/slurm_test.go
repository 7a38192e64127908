package main

// Tests of simswarm run --slurm against a real Slurm (internal/slurm/
// slurmtest): munged, slurmctld and three one-core slurmd nodes, each in a
// network namespace of its own. The client runs in the root namespace, as
// on a login node; its engine listens on the nodes' bridge.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/slurm/slurmtest"
	"github.com/simswarm/simswarm/internal/testkit"
)

// slurmLab is a test Slurm and what a test client needs around it: an
// sbatch wrapper first on PATH that logs every call, a directory for the
// pilots' output, and node-local scratch for their caches.
type slurmLab struct {
	*slurmtest.Cluster
	sbatchLog string
	squeueLog string
	pilotLogs string
	// cache is the user cache directory (XDG_CACHE_HOME) of the jobs: a
	// build job's workspaces are there, as in a home on a shared disk.
	cache string
	env   []string
}

func newSlurmLab(t *testing.T, o slurmtest.Options) *slurmLab {
	t.Helper()
	c := slurmtest.Start(t, o)
	l := &slurmLab{Cluster: c}
	bin := t.TempDir()
	l.sbatchLog = filepath.Join(bin, "sbatch.log")
	real, err := exec.LookPath("sbatch")
	if err != nil {
		t.Fatal(err)
	}
	wrapper := fmt.Sprintf("#!/bin/sh\necho \"$(date +%%s.%%N) $*\" >> %q\nexec %q \"$@\"\n", l.sbatchLog, real)
	if err := os.WriteFile(filepath.Join(bin, "sbatch"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	// squeue's calls by simswarm, with their times.
	l.squeueLog = filepath.Join(bin, "squeue.log")
	if real, err = exec.LookPath("squeue"); err != nil {
		t.Fatal(err)
	}
	wrapper = fmt.Sprintf("#!/bin/sh\ndate +%%s.%%N >> %q\nexec %q \"$@\"\n", l.squeueLog, real)
	if err := os.WriteFile(filepath.Join(bin, "squeue"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	l.pilotLogs = t.TempDir()
	scratch := t.TempDir()
	for _, e := range c.Env {
		switch {
		case strings.HasPrefix(e, "SIMSWARM_"), strings.HasPrefix(e, "TMPDIR="), strings.HasPrefix(e, "XDG_CACHE_HOME="):
		case strings.HasPrefix(e, "PATH="):
			l.env = append(l.env, "PATH="+bin+":"+strings.TrimPrefix(e, "PATH="))
		default:
			l.env = append(l.env, e)
		}
	}
	// sbatch passes the environment on: the pilots' caches and credentials
	// land in the test's scratch, as in a node's $TMPDIR.
	l.cache = t.TempDir()
	l.env = append(l.env, "TMPDIR="+scratch, "XDG_CACHE_HOME="+l.cache)
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(l.pilotLogs, "*"))
			for _, f := range logs {
				b, _ := os.ReadFile(f)
				if len(b) > 3000 {
					b = b[len(b)-3000:]
				}
				t.Logf("--- pilot %s:\n%s", filepath.Base(f), b)
			}
		}
	})
	return l
}

// args are run's flags for this lab, then more.
func (l *slurmLab) args(more ...string) []string {
	return append([]string{"run", "--slurm", "--account", slurmtest.Account, "--partition", slurmtest.Partition,
		"--slurm-listen", l.Addr + ":0", "--sbatch-option=--output=" + filepath.Join(l.pilotLogs, "pilot-%A_%a.log")}, more...)
}

// command is simswarm in dir with the lab's environment and state.
func (l *slurmLab) command(dir, state string, args ...string) *exec.Cmd {
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(append([]string(nil), l.env...), "SIMSWARM_STATE="+state)
	return cmd
}

// run runs simswarm to its end (at most 5 minutes).
func (l *slurmLab) run(t *testing.T, dir, state string, args ...string) result {
	t.Helper()
	cmd := l.command(dir, state, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(5*time.Minute, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	_ = cmd.Wait()
	return result{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
}

// running is a simswarm command started in the background.
type running struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	errb testkit.SyncBuffer
}

// start starts simswarm; the test ends it if it is still running.
func (l *slurmLab) start(t *testing.T, dir, state string, args ...string) *running {
	t.Helper()
	r := &running{cmd: l.command(dir, state, args...)}
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.errb
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.cmd.Process.Kill() })
	return r
}

// wait waits for the command's end, at most within.
func (r *running) wait(t *testing.T, within time.Duration) result {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("campaign did not end within %s:\n%s", within, r.errb.String())
	}
	return result{stdout: r.out.String(), stderr: r.errb.String(), code: r.cmd.ProcessState.ExitCode()}
}

// submits are the sbatch calls that submitted pilots (not --test-only,
// not build jobs).
func (l *slurmLab) submits(t *testing.T) []string {
	t.Helper()
	return l.sbatchCalls(t, "--job-name=simswarm-pilot")
}

// sbatchCalls are the sbatch calls with an argument.
func (l *slurmLab) sbatchCalls(t *testing.T, arg string) []string {
	t.Helper()
	b, err := os.ReadFile(l.sbatchLog)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if slices.Contains(strings.Fields(line), arg) {
			out = append(out, line)
		}
	}
	return out
}

// provenanceHosts counts the runs of a results directory by the host that
// ran them.
func provenanceHosts(t *testing.T, results string) map[string]int {
	t.Helper()
	hosts := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(readFile(t, filepath.Join(results, "provenance.jsonl"))), "\n") {
		var rec struct {
			Host string `json:"host"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("provenance line %q: %v", line, err)
		}
		hosts[rec.Host]++
	}
	return hosts
}

// TestSlurmOMNeTPPAloha: real aloha's 42 runs through three Slurm pilots
// leave opp_runall's results; the build ran as a Slurm job of its own
// (its workspace is in the job's cache, none in the client's state);
// every run ran on a compute node, none on the login node; one sbatch
// submitted the one wave.
func TestSlurmOMNeTPPAloha(t *testing.T) {
	o := realOMNeT(t)
	want := alohaReference(t, o)
	l := newSlurmLab(t, slurmtest.Options{})
	dir := o.CopySample(t, "aloha", t.TempDir())
	state := t.TempDir()
	r := l.run(t, dir, state, l.args("--max-pilots", "3", "--json", "--ccache-dir", sharedCcache(), "--", "./aloha", "-u", "Cmdenv", "-c", alohaCampaign)...)
	s := jsonSummary(t, r)
	if r.code != 0 || s.Runs != 42 || s.Succeeded != 42 {
		t.Fatalf("exit %d, %+v\n%s", r.code, s, r.stderr)
	}
	sameResults(t, want, filepath.Join(dir, "results"))
	hosts := provenanceHosts(t, filepath.Join(dir, "results"))
	for h := range hosts {
		if !strings.HasPrefix(h, "n") {
			t.Errorf("runs on %q, not a compute node: %v", h, hosts)
		}
	}
	if subs := l.submits(t); len(subs) != 1 || !strings.Contains(subs[0], "--array=0-2%3") {
		t.Errorf("sbatch calls %q; want one, of a 3-pilot array", subs)
	}
	if !strings.Contains(r.stderr, "slurm: submitted 3 pilots") {
		t.Errorf("no word of the pilots:\n%s", r.stderr)
	}
	if builds := l.sbatchCalls(t, "--job-name=simswarm-build"); len(builds) != 1 || !strings.Contains(r.stderr, "slurm: submitted build job") {
		t.Errorf("build jobs %q; want one\n%s", builds, r.stderr)
	}
	if ws, _ := filepath.Glob(filepath.Join(l.cache, "simswarm", "workspaces", "*", "aloha")); len(ws) != 1 {
		t.Errorf("no build job's workspace with aloha built in it: %q", ws)
	}
	if _, err := os.Stat(filepath.Join(state, "workspaces")); err == nil {
		t.Errorf("the client built on the login node: %s exists", filepath.Join(state, "workspaces"))
	}
}

// logProject is a template campaign of n runs, each appending "start RUN"
// and, after sleeping secs and writing its result, "done RUN" to a log as
// its last act: a "done" line is a run that completed.
func logProject(t *testing.T, n int, secs string, toml ...string) (dir, log string) {
	t.Helper()
	log = filepath.Join(t.TempDir(), "runs.log")
	script := fmt.Sprintf("#!/bin/sh\necho \"start $1 $SLURMD_NODENAME\" >> %q\nsleep %s\necho $1 > \"$2/r-$1.txt\"\necho \"done $1\" >> %q\n", log, secs, log)
	dir = templateProject(t, fmt.Sprintf("[build]\ncommand = \"\"\n[run]\ncommand = \"./pilotrun.sh {run} {resultdir}\"\nrepeat = %d\n%s", n, strings.Join(toml, "")),
		map[string]string{"pilotrun.sh": script})
	return dir, log
}

// logCounts counts "start" and "done" lines per run.
func logCounts(t *testing.T, log string) (starts, dones map[string]int) {
	t.Helper()
	starts, dones = map[string]int{}, map[string]int{}
	b, _ := os.ReadFile(log)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "start":
			starts[f[1]]++
		case "done":
			dones[f[1]]++
		}
	}
	return starts, dones
}

// runNodes are the nodes runs started on.
func runNodes(t *testing.T, log string) map[string]bool {
	t.Helper()
	nodes := map[string]bool{}
	b, _ := os.ReadFile(log)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "start" {
			nodes[f[2]] = true
		}
	}
	return nodes
}

func waitUntil(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSlurmScancelOnePilot: a pilot scancelled mid-campaign hands its run
// back; every run completes exactly once, and only the run it held
// starts twice. The other pilots carry on and a top-up wave of one pilot
// replaces the lost one.
func TestSlurmScancelOnePilot(t *testing.T) {
	slurmPilotLost(t, func(l *slurmLab, job, node string) {
		if out, err := l.Command("scancel", job); err != nil {
			t.Fatalf("scancel %s: %v %s", job, err, out)
		}
	})
}

// TestSlurmNodeDown: the same when the administrator sets a pilot's node
// DOWN with scontrol (Slurm kills its job).
func TestSlurmNodeDown(t *testing.T) {
	slurmPilotLost(t, func(l *slurmLab, job, node string) {
		if out, err := l.Command("scontrol", "update", "nodename="+node, "state=down", "reason=simswarm test"); err != nil {
			t.Fatalf("scontrol down %s: %v %s", node, err, out)
		}
	})
}

// slurmPilotLost runs 12 runs of 3 s on three pilots, breaks one pilot
// with fault just after it started a run, and checks that the campaign still succeeds with
// every run done exactly once.
func slurmPilotLost(t *testing.T, fault func(l *slurmLab, job, node string)) {
	l := newSlurmLab(t, slurmtest.Options{})
	const n = 12
	dir, log := logProject(t, n, "3")
	cmd := l.command(dir, t.TempDir(), l.args("--max-pilots", "3", "--json")...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitUntil(t, 90*time.Second, "run on every node", func() bool { return len(runNodes(t, log)) == 3 })
	// status, through the engine address the client printed, shows each
	// pilot's job and node.
	m := regexp.MustCompile(`simswarm status --server (\S+) --creds (\S+)\)`).FindStringSubmatch(errb.String())
	if m == nil {
		t.Fatalf("the client did not say where its engine is:\n%s", errb.String())
	}
	st := l.run(t, dir, t.TempDir(), "status", "--server", m[1], "--creds", m[2])
	if pilots := regexp.MustCompile(`slurm job \d+_\d on n\d`).FindAllString(st.stdout, -1); st.code != 0 || len(pilots) != 3 {
		t.Errorf("status shows pilots %q; want 3:\n%s%s", pilots, st.stdout, st.stderr)
	}
	// The victim: the pilot that starts a run next, its run just begun
	// (a run whose process ended before the fault is done, not
	// interrupted).
	jobs := l.Jobs(t)
	started := len(strings.Split(readFile(t, log), "\n"))
	var victim, node string
	waitUntil(t, 30*time.Second, "a run starting", func() bool {
		lines := strings.Split(strings.TrimSpace(readFile(t, log)), "\n")
		for _, line := range lines[min(started-1, len(lines)):] {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "start" {
				node = f[2]
				return true
			}
		}
		return false
	})
	for _, j := range jobs {
		if f := strings.Fields(j); len(f) == 3 && f[1] == "RUNNING" && strings.Contains(f[0], "_") && f[2] == node {
			victim = f[0]
		}
	}
	if victim == "" {
		t.Fatalf("no running pilot on %s in squeue: %q", node, jobs)
	}
	fault(l, victim, node)
	waitUntil(t, 20*time.Second, "end of pilot "+victim, func() bool {
		for _, j := range l.Jobs(t) {
			if strings.HasPrefix(j, victim+" ") {
				return false
			}
		}
		return true
	})
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(4 * time.Minute):
		t.Fatalf("campaign did not end:\n%s", errb.String())
	}
	r := result{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
	s := jsonSummary(t, r)
	if r.code != 0 || s.Succeeded != n {
		t.Fatalf("exit %d, %+v\n%s", r.code, s, r.stderr)
	}
	starts, dones := logCounts(t, log)
	twice := 0
	for run := 0; run < n; run++ {
		k := fmt.Sprint(run)
		if dones[k] != 1 {
			t.Errorf("run %s completed %d times; want once (log:\n%s)", k, dones[k], readFile(t, log))
		}
		if starts[k] > 1 {
			twice++
		}
	}
	if twice > 1 {
		t.Errorf("%d runs started again; only the one the cancelled pilot held should", twice)
	}
	if subs := l.submits(t); len(subs) != 2 || !strings.Contains(subs[1], "--array=0-0%1") || !strings.Contains(r.stderr, "slurm: topped up with 1 pilots") {
		t.Errorf("sbatch calls %q; want the wave and a top-up of one pilot\n%s", subs, r.stderr)
	}
	for run := 0; run < n; run++ {
		if _, err := os.Stat(filepath.Join(dir, "results", fmt.Sprintf("r-%d.txt", run))); err != nil {
			t.Errorf("result of run %d: %v", run, err)
		}
	}
}

// TestSlurmInterrupt: Ctrl-C cancels the campaign and its pilots: none is
// left in squeue within 10 s, and the client exits 130.
func TestSlurmInterrupt(t *testing.T) {
	l := newSlurmLab(t, slurmtest.Options{})
	dir, log := logProject(t, 6, "60")
	cmd := l.command(dir, t.TempDir(), l.args("--max-pilots", "3")...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitUntil(t, 90*time.Second, "run on every node", func() bool { return len(runNodes(t, log)) == 3 })
	t0 := time.Now()
	_ = cmd.Process.Signal(syscall.SIGINT)
	waitUntil(t, 10*time.Second, "empty squeue", func() bool { return len(l.Jobs(t)) == 0 })
	t.Logf("squeue empty %s after Ctrl-C", time.Since(t0).Round(100*time.Millisecond))
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("client still running after Ctrl-C:\n%s", errb.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit %d; want 130\n%s", code, errb.String())
	}
	waitUntil(t, time.Until(t0.Add(10*time.Second)), "end of every run's process", func() bool {
		out, _ := exec.Command("pgrep", "-f", "pilotrun.sh").Output()
		return len(bytes.TrimSpace(out)) == 0
	})
	t.Logf("no run's process left %s after Ctrl-C", time.Since(t0).Round(100*time.Millisecond))
}

// TestSlurmChunkedArrays: with MaxArraySize=4, a wave of 10 pilots goes
// as arrays of 4, 4 and 2, and the campaign runs. With
// --slurm-build=login the build runs in the client: no build job.
func TestSlurmChunkedArrays(t *testing.T) {
	l := newSlurmLab(t, slurmtest.Options{MaxArraySize: 4})
	dir, log := logProject(t, 10, "0.2")
	state := t.TempDir()
	r := l.run(t, dir, state, l.args("--json", "--slurm-build=login")...)
	if s := jsonSummary(t, r); r.code != 0 || s.Succeeded != 10 {
		t.Fatalf("exit %d, %+v\n%s", r.code, s, r.stderr)
	}
	if builds := l.sbatchCalls(t, "--job-name=simswarm-build"); len(builds) != 0 {
		t.Errorf("build jobs %q with --slurm-build=login", builds)
	}
	if _, err := os.Stat(filepath.Join(state, "workspaces")); err != nil {
		t.Errorf("no build in the client with --slurm-build=login: %v", err)
	}
	var arrays []string
	for _, s := range l.submits(t) {
		for _, f := range strings.Fields(s) {
			if strings.HasPrefix(f, "--array=") {
				arrays = append(arrays, f)
			}
		}
	}
	sort.Strings(arrays)
	if strings.Join(arrays, " ") != "--array=0-1%2 --array=0-3%4 --array=0-3%4" {
		t.Errorf("arrays %q; want two of 4 and one of 2", arrays)
	}
	if _, dones := logCounts(t, log); len(dones) != 10 {
		t.Errorf("%d runs done; want 10", len(dones))
	}
}

// TestSlurmRefused: a bad account and a bad partition are one line each
// naming what Slurm said, exit 2, with nothing submitted or queued.
func TestSlurmRefused(t *testing.T) {
	l := newSlurmLab(t, slurmtest.Options{Nodes: 1})
	dir, _ := logProject(t, 2, "0")
	state := t.TempDir()
	for _, tc := range []struct {
		flag, value, want string
	}{
		{"--account", "nosuchaccount", "Invalid account"},
		{"--partition", "nosuchpartition", "Invalid partition name specified"},
	} {
		args := l.args()
		for i, a := range args {
			if a == tc.flag {
				args[i+1] = tc.value
			}
		}
		r := l.run(t, dir, state, args...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code != 2 || len(lines) != 1 || !strings.Contains(lines[0], tc.want) || !strings.Contains(lines[0], tc.value) && tc.flag == "--account" {
			t.Errorf("%s %s: exit %d, stderr:\n%s\nwant exit 2 and one line saying %q", tc.flag, tc.value, r.code, r.stderr, tc.want)
		}
		t.Logf("%s %s: exit %d: %s", tc.flag, tc.value, r.code, lines[0])
	}
	if subs := l.submits(t); len(subs) != 0 {
		t.Errorf("sbatch submitted %q", subs)
	}
	if jobs := l.Jobs(t); len(jobs) != 0 {
		t.Errorf("jobs in squeue: %q", jobs)
	}
}

// TestSlurmClientKilled: pilots whose client was killed with kill -9 (its
// engine gone, nobody to scancel them) end on their own once lost-exit
// has passed, releasing their allocations.
func TestSlurmClientKilled(t *testing.T) {
	l := newSlurmLab(t, slurmtest.Options{})
	dir, log := logProject(t, 6, "60", "[slurm]\nlost-exit = \"5s\"\n")
	cmd := l.command(dir, t.TempDir(), l.args("--max-pilots", "3")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 90*time.Second, "run on every node", func() bool { return len(runNodes(t, log)) == 3 })
	t0 := time.Now()
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	// The bound: lost-exit (5 s), then the runs' processes are ended
	// (SIGTERM, SIGKILL after a grace) and Slurm completes the job.
	waitUntil(t, 25*time.Second, "empty squeue", func() bool { return len(l.Jobs(t)) == 0 })
	t.Logf("pilots gone %s after the client's kill -9", time.Since(t0).Round(100*time.Millisecond))
	waitUntil(t, 5*time.Second, "end of every run's process", func() bool {
		out, _ := exec.Command("pgrep", "-f", "pilotrun.sh").Output()
		return len(bytes.TrimSpace(out)) == 0
	})
}

// TestSlurmDryRunEstimate: --dry-run --slurm prints the expected wall time
// on P pilots of C cores and the core-hours they charge, from earlier run
// times, and needs no Slurm: nothing is submitted.
func TestSlurmDryRunEstimate(t *testing.T) {
	dir, _ := logProject(t, 4, "1")
	state := t.TempDir()
	if r := runSimswarm(t, dir, state, "run", "-j", "4"); r.code != 0 {
		t.Fatalf("first campaign: exit %d\n%s", r.code, r.stderr)
	}
	toml := filepath.Join(dir, "simswarm.toml")
	if err := os.WriteFile(toml, []byte(strings.Replace(readFile(t, toml), "repeat = 4", "repeat = 16", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runSimswarm(t, dir, state, "run", "--dry-run", "--slurm", "--max-pilots", "3", "--cpus-per-pilot", "2")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// 12 runs of about 1 s on 6 slots: about 2 s, on 6 cores.
	m := regexp.MustCompile(`on Slurm: 3 pilots of 2 cores: expected wall time ([0-9.]+)s .*, ([0-9.]+) core-hours charged`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no Slurm estimate:\n%s", r.stdout)
	}
	wall, _ := strconv.ParseFloat(m[1], 64)
	ch, _ := strconv.ParseFloat(m[2], 64)
	if wall < 2 || wall > 6 || math.Abs(ch-wall*6/3600) > 0.01 {
		t.Errorf("wall %gs, %g core-hours; want 2-6 s and 6 cores' worth", wall, ch)
	}
}

// TestSlurmTimeLimit: pilots of a 1-minute limit with 10 s runs take no
// run they cannot finish before their end (less the end signal's 15 s),
// hand back what is left and end before Slurm's limit kills them; a new
// wave runs the rest. Every run completes exactly once, none is killed by
// the limit.
func TestSlurmTimeLimit(t *testing.T) {
	l := newSlurmLab(t, slurmtest.Options{})
	dir, log := logProject(t, 15, "10")
	r := l.run(t, dir, t.TempDir(), l.args("--max-pilots", "3", "--time", "1", "--json")...)
	if s := jsonSummary(t, r); r.code != 0 || s.Succeeded != 15 {
		t.Fatalf("exit %d, %+v\n%s", r.code, s, r.stderr)
	}
	_, dones := logCounts(t, log)
	for run := 0; run < 15; run++ {
		if n := dones[fmt.Sprint(run)]; n != 1 {
			t.Errorf("run %d completed %d times; want once", run, n)
		}
	}
	if subs := l.submits(t); len(subs) < 2 {
		t.Errorf("sbatch calls %q; want a second wave after the first pilots' end", subs)
	}
	// squeue is asked at most every 30 s (sites rate-limit Slurm's RPCs).
	b, _ := os.ReadFile(l.squeueLog)
	var prev float64
	for _, f := range strings.Fields(string(b)) {
		at, _ := strconv.ParseFloat(f, 64)
		if prev > 0 && at-prev < 29.5 {
			t.Errorf("squeue asked %.1fs after the previous call", at-prev)
		}
		prev = at
	}
	logs, _ := filepath.Glob(filepath.Join(l.pilotLogs, "*"))
	ended, byEstimate := 0, 0
	for _, f := range logs {
		if strings.Contains(readFile(t, f), "cannot finish by then") {
			byEstimate++
		}
		text := readFile(t, f)
		if strings.Contains(text, "TIME LIMIT") {
			t.Errorf("pilot %s was killed by the time limit:\n%s", filepath.Base(f), text)
		}
		// Ended by its own estimate, or by Slurm's end signal (which Slurm
		// may send up to a minute early).
		if strings.Contains(text, "end is near") {
			ended++
		}
	}
	if ended == 0 {
		t.Errorf("no pilot ended for its end being near")
	}
	t.Logf("%d pilots ended for their end being near, %d of them by their own estimate; %d sbatch calls", ended, byEstimate, len(l.submits(t)))
}

// TestBenchSlurm is bench/slurm.sh, run only when SIMSWARM_BENCH_SLURM is
// set: BENCH_RUNS (default 1000) short runs on three one-core Slurm pilot
// nodes against the embedded engine with the same three slots. It reports
// the run phase (first run start to last run end, from the provenance) of
// each and their ratio, and the time from `simswarm run --slurm` to the
// first run start.
func TestBenchSlurm(t *testing.T) {
	if os.Getenv("SIMSWARM_BENCH_SLURM") == "" {
		t.Skip("a benchmark: bench/slurm.sh runs it")
	}
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("BENCH_RUNS")); err == nil && v > 0 {
		n = v
	}
	l := newSlurmLab(t, slurmtest.Options{})
	// Each job's script says when it started, first thing (a prologue line).
	started := filepath.Join(t.TempDir(), "started.log")
	project := func() string {
		return templateProject(t, fmt.Sprintf("[build]\ncommand = \"\"\n[run]\ncommand = \"sh -c 'echo $0 > $1/r-$0.txt' {run} {resultdir}\"\nrepeat = %d\n[slurm]\nprologue = ['echo $SLURM_JOB_NAME $(date +%%s.%%N) >> %s']\n", n, started), map[string]string{})
	}
	phase := func(dir string) (first, last time.Time) {
		for _, line := range strings.Split(strings.TrimSpace(readFile(t, filepath.Join(dir, "results", "provenance.jsonl"))), "\n") {
			var rec struct{ Started, Finished time.Time }
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatal(err)
			}
			if first.IsZero() || rec.Started.Before(first) {
				first = rec.Started
			}
			if rec.Finished.After(last) {
				last = rec.Finished
			}
		}
		return first, last
	}
	emb := project()
	t0 := time.Now()
	if r := l.run(t, emb, t.TempDir(), "run", "-j", "3", "--json"); r.code != 0 || jsonSummary(t, r).Succeeded != n {
		t.Fatalf("embedded: exit %d\n%s", r.code, r.stderr)
	}
	ewall := time.Since(t0)
	ef, el := phase(emb)
	ep := el.Sub(ef)
	fmt.Printf("runs: %d on 3 slots; load average %s\n", n, loadavg())
	fmt.Printf("embedded -j 3:        command %6.1fs, run phase %6.1fs\n", ewall.Seconds(), ep.Seconds())
	for _, build := range []string{"slurm", "login"} {
		sl := project()
		t0 = time.Now()
		r := l.run(t, sl, t.TempDir(), l.args("--max-pilots", "3", "--json", "--slurm-build="+build)...)
		if r.code != 0 || jsonSummary(t, r).Succeeded != n {
			t.Fatalf("slurm: exit %d\n%s", r.code, r.stderr)
		}
		swall := time.Since(t0)
		sf, slast := phase(sl)
		sp := slast.Sub(sf)
		sched := l.scheduling(t, started)
		fmt.Printf("slurm, 3 pilots x 1, --slurm-build=%s: command %6.1fs, run phase %6.1fs, first run %4.1fs after the command started, %4.1fs of it Slurm's scheduling (sbatch call to job start, build job and first pilot), %4.1fs beyond\n",
			build, swall.Seconds(), sp.Seconds(), sf.Sub(t0).Seconds(), sched.Seconds(), (sf.Sub(t0) - sched).Seconds())
		fmt.Printf("ratio slurm/embedded (run phase): %.2f\n", sp.Seconds()/ep.Seconds())
		_, _ = l.Command("scancel", "--user=root")
		waitUntil(t, 60*time.Second, "empty squeue", func() bool { return len(l.Jobs(t)) == 0 })
		if err := os.Remove(l.sbatchLog); err != nil {
			t.Fatal(err)
		}
	}
}

// scheduling is how long Slurm took from the sbatch calls of the build
// job and of the first pilot array to the start of that job's script and
// of the first pilot's (the times its prologue logged to started, which
// is then emptied for the next campaign).
func (l *slurmLab) scheduling(t *testing.T, started string) time.Duration {
	t.Helper()
	first := func(path string, name func(f []string) string) map[string]time.Time {
		out := map[string]time.Time{}
		for _, line := range strings.Split(readFile(t, path), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 || slices.Contains(f, "--test-only") {
				continue
			}
			at, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				at, err = strconv.ParseFloat(f[1], 64)
			}
			if n := name(f); n != "" && err == nil {
				if _, seen := out[n]; !seen {
					out[n] = time.Unix(0, int64(at*1e9))
				}
			}
		}
		return out
	}
	calls := first(l.sbatchLog, func(f []string) string {
		for _, a := range f {
			if n, ok := strings.CutPrefix(a, "--job-name="); ok {
				return n
			}
		}
		return ""
	})
	starts := first(started, func(f []string) string { return f[0] })
	var total time.Duration
	for name, call := range calls {
		if st, ok := starts[name]; ok {
			total += st.Sub(call)
		}
	}
	if err := os.WriteFile(started, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return total
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// TestSlurmOnAServer: --slurm against a simswarm server run as a Slurm
// job of its own (where a login node may not hold the engine), its
// address published in a file: the pilots dial that server with its
// credentials, the client lists the runs, a builder in the server's job
// builds (so no build job is submitted), and every run runs on a pilot's
// node.
func TestSlurmOnAServer(t *testing.T) {
	l := newSlurmLab(t, slurmtest.Options{})
	state, work := t.TempDir(), t.TempDir()
	addrFile := filepath.Join(work, "server.addr")
	credsFile := filepath.Join(state, "client.creds")
	job := fmt.Sprintf(`#!/bin/sh
%[1]q server --listen "$(hostname -I | cut -d' ' -f1):4222" --state %[2]q --address-file %[3]q &
while [ ! -s %[3]q ]; do sleep 0.2; done
exec %[1]q builder --server "$(cat %[3]q)" --creds %[4]q --dir %[5]q --ccache-dir off
`, binary, state, addrFile, credsFile, filepath.Join(work, "ws"))
	sub := exec.Command("sbatch", "--job-name=simswarm-server", "--output="+filepath.Join(l.pilotLogs, "server-%j.log"))
	sub.Env, sub.Stdin = l.Cluster.Env, strings.NewReader(job)
	if out, err := sub.CombinedOutput(); err != nil {
		t.Fatalf("sbatch the server: %v %s", err, out)
	}
	var url string
	waitUntil(t, 60*time.Second, "the server's address file", func() bool {
		b, _ := os.ReadFile(addrFile)
		url = strings.TrimSpace(string(b))
		return url != ""
	})
	if !strings.HasPrefix(url, "nats://10.") {
		t.Fatalf("address file says %q; want the server node's address", url)
	}
	var serverNode string
	for _, j := range l.Jobs(t) {
		if f := strings.Fields(j); len(f) == 3 {
			serverNode = f[2]
		}
	}
	// The bundled aloha answers -q runconfig: its run list is a job, which
	// the client answers itself (no pilot exists before runs wait).
	dir := example(t, "aloha")
	r := l.run(t, dir, t.TempDir(), append(l.args("--max-pilots", "2", "--json", "--server", url, "--creds", credsFile), "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "0..5")...)
	if s := jsonSummary(t, r); r.code != 0 || s.Succeeded != 6 {
		t.Fatalf("exit %d, %+v\n%s", r.code, s, r.stderr)
	}
	for h := range provenanceHosts(t, filepath.Join(dir, "results")) {
		if !strings.HasPrefix(h, "n") || h == serverNode {
			t.Errorf("a run on %q, not a pilot's node (the server's job is on %s)", h, serverNode)
		}
	}
	// The server's builder built: no build job.
	if builds := l.sbatchCalls(t, "--job-name=simswarm-build"); len(builds) != 0 {
		t.Errorf("build jobs %q beside the server's builder", builds)
	}
}

// TestSlurmWithoutSlurm: --slurm where Slurm's commands are missing is
// one line saying so, exit 2, before anything is built.
func TestSlurmWithoutSlurm(t *testing.T) {
	dir, _ := logProject(t, 2, "0")
	cmd := exec.Command(binary, "run", "--slurm")
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "PATH="+t.TempDir(), "SIMSWARM_STATE="+t.TempDir())
	var errb bytes.Buffer
	cmd.Stderr = &errb
	_ = cmd.Run()
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	if code := cmd.ProcessState.ExitCode(); code != 2 || len(lines) != 1 || !strings.Contains(lines[0], "sbatch not found") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 2 and one line naming sbatch", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "results")); err == nil {
		t.Error("results/ made: something ran")
	}
}

// TestSlurmJobLimit: at a job limit (the site's MaxSubmitJobs, played by
// the test Slurm's job_submit script with the error Slurm gives there)
// simswarm submits what fits and says so in one line, and when nothing
// fits it waits and tries again instead of failing the campaign.
func TestSlurmJobLimit(t *testing.T) {
	l := newSlurmLab(t, slurmtest.Options{})
	if err := os.WriteFile(l.SubmitLimit, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, log := logProject(t, 6, "1")
	c := l.start(t, dir, t.TempDir(), l.args("--max-pilots", "3", "--json", "--slurm-build=login")...)
	waitUntil(t, 60*time.Second, "word of the job limit", func() bool {
		return strings.Contains(c.errb.String(), "slurm: at the site's job limit, 0 of 3 pilots submitted")
	})
	// The user's other jobs end: two pilots fit now.
	if err := os.WriteFile(l.SubmitLimit, []byte("2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := c.wait(t, 3*time.Minute)
	if s := jsonSummary(t, r); r.code != 0 || s.Succeeded != 6 {
		t.Fatalf("exit %d, %+v\n%s", r.code, s, r.stderr)
	}
	var limits []string
	for _, line := range strings.Split(r.stderr, "\n") {
		if strings.Contains(line, "job limit") {
			limits = append(limits, line)
		}
	}
	if len(limits) != 2 || !strings.Contains(limits[1], "2 of 3 pilots submitted") || !strings.Contains(limits[1], "accounting/QOS policy") {
		t.Errorf("job limit lines %q; want one saying 0 of 3 then one saying 2 of 3, naming Slurm's reason", limits)
	}
	if hosts := runNodes(t, log); len(hosts) != 2 {
		t.Errorf("runs on nodes %v; want the two pilots'", hosts)
	}
	t.Logf("job limit lines: %q", limits)
}

// TestSlurmFlagErrors: bad --slurm settings are one line naming the value,
// exit 2, before Slurm is asked or anything runs.
func TestSlurmFlagErrors(t *testing.T) {
	dir, _ := logProject(t, 2, "0")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cpus-per-pilot", "0"}, "--cpus-per-pilot must be at least 1, not 0"},
		{[]string{"--cpus-per-pilot", "-2"}, "--cpus-per-pilot must be at least 1, not -2"},
		{[]string{"--slurm-build", "cloud"}, `--slurm-build "cloud": want slurm`},
		{[]string{"--time", "0"}, `slurm time "0": must be more than zero`},
		{[]string{"--time", "-5"}, `slurm time "-5": want minutes`},
	} {
		cmd := exec.Command(binary, append([]string{"run", "--slurm"}, tc.args...)...)
		cmd.Dir = dir
		cmd.Env = append(cleanEnv(), "SIMSWARM_STATE="+t.TempDir())
		var errb bytes.Buffer
		cmd.Stderr = &errb
		_ = cmd.Run()
		lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
		if code := cmd.ProcessState.ExitCode(); code != 2 || len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
			t.Errorf("%q: exit %d, stderr:\n%s\nwant exit 2 and one line saying %q", tc.args, code, errb.String(), tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "results")); err == nil {
		t.Error("results/ made: something ran")
	}
}

// TestSlurmTimeTooShort: runs that history says take longer than a
// pilot's time limit allows (less its end signal) are taken by no pilot;
// after three top-up waves that got nothing done the command ends with
// exit 2 and one line naming the time limit, the runs still queued,
// instead of submitting waves without end.
func TestSlurmTimeTooShort(t *testing.T) {
	l := newSlurmLab(t, slurmtest.Options{})
	dir, log := logProject(t, 3, "12", "[slurm]\nend-signal = \"50s\"\n")
	state := t.TempDir()
	// The history: each run takes 12 s.
	if r := l.run(t, dir, state, "run", "-j", "3"); r.code != 0 {
		t.Fatalf("first campaign: exit %d\n%s", r.code, r.stderr)
	}
	if err := os.RemoveAll(filepath.Join(state, "engine")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "results")); err != nil {
		t.Fatal(err)
	}
	before, _ := logCounts(t, log)
	r := l.run(t, dir, state, l.args("--max-pilots", "3", "--time", "1", "--slurm-build=login")...)
	var last string
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if strings.HasPrefix(line, "simswarm: ") {
			last = line
		}
	}
	if r.code != 2 || !strings.Contains(last, "waves of pilots ended without finishing a run") || !strings.Contains(last, "--time 1") {
		t.Errorf("exit %d, last line %q; want exit 2 naming the time limit\n%s", r.code, last, r.stderr)
	}
	if after, _ := logCounts(t, log); len(after) != len(before) || fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("runs started %v; want none beyond the first campaign's %v", after, before)
	}
	if subs := l.submits(t); len(subs) != 4 {
		t.Errorf("pilot waves %d; want the first and 3 top-ups", len(subs))
	}
	t.Logf("exit %d: %s", r.code, last)
}

// TestSlurmBuildJobWaits: while the build job waits in Slurm's queue
// (another job holds the one node), the client says the build job waits,
// not that no builder is connected; once the node is free the campaign
// runs. A later campaign of the same sources submits no build job.
func TestSlurmBuildJobWaits(t *testing.T) {
	l := newSlurmLab(t, slurmtest.Options{Nodes: 1})
	blocker, err := l.Command("sbatch", "--parsable", "--output=/dev/null", "--wrap=sleep 300")
	if err != nil {
		t.Fatalf("sbatch the blocker: %v %s", err, blocker)
	}
	blocker = strings.TrimSpace(blocker)
	dir, _ := logProject(t, 2, "0")
	state := t.TempDir()
	c := l.start(t, dir, state, l.args("--json")...)
	for deadline := time.Now().Add(40 * time.Second); !regexp.MustCompile(`slurm: build job \d+ not started after 10s: waiting for Slurm`).MatchString(c.errb.String()); {
		if time.Now().After(deadline) {
			t.Fatalf("no word of the waiting build job within 40s:\n%s", c.errb.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out, err := l.Command("scancel", blocker); err != nil {
		t.Fatalf("scancel the blocker: %v %s", err, out)
	}
	r := c.wait(t, 2*time.Minute)
	if s := jsonSummary(t, r); r.code != 0 || s.Succeeded != 2 {
		t.Fatalf("exit %d, %+v\n%s", r.code, s, r.stderr)
	}
	if strings.Contains(r.stderr, "no builder has sent a heartbeat") {
		t.Errorf("the client said no builder is connected while its build job waited:\n%s", r.stderr)
	}
	// The same campaign again, from another run of the command: the engine
	// has its build, so no build job (and no queue wait for one).
	if err := os.RemoveAll(filepath.Join(dir, "results")); err != nil {
		t.Fatal(err)
	}
	if r := l.run(t, dir, state, l.args("--json")...); r.code != 0 || jsonSummary(t, r).Succeeded != 2 {
		t.Fatalf("second campaign: exit %d\n%s", r.code, r.stderr)
	}
	if builds := l.sbatchCalls(t, "--job-name=simswarm-build"); len(builds) != 1 {
		t.Errorf("build jobs %d; want the first campaign's only", len(builds))
	}
}
