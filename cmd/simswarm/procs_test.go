package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Process trees, end to end: a template run leaves sleeps behind (a double
// fork into a new session each), the simswarm process that supervises it is
// killed with SIGKILL, and no descendant may be alive 5 s later. The tests
// find the sleeps by a marker variable of their own in /proc/PID/environ,
// not through simswarm, and kill whatever carries it when they end.

// escapingProject is a template project of one run that leaves two
// setsid'd, double-forked sleeps behind, writes its environment into its
// result file and then takes hold seconds.
func escapingProject(t *testing.T, hold string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "escape")
	os.MkdirAll(dir, 0o755)
	toml := `[build]
command = ""
[run]
command = "(setsid sleep 300 </dev/null >/dev/null 2>&1 &); (setsid sh -c 'sleep 301' &); env > {resultdir}/env-#{run}.sca; sleep ` + hold + `"
`
	os.WriteFile(filepath.Join(dir, "simswarm.toml"), []byte(toml), 0o644)
	return dir
}

// leakMark sets a marker variable for the processes this test starts and
// kills, at the end, every process that carries it.
func leakMark(t *testing.T) (name, value string) {
	name, value = "LEAKTEST_MARK", fmt.Sprintf("%d-%s-%d", os.Getpid(), t.Name(), time.Now().UnixNano())
	t.Cleanup(func() {
		for _, pid := range marked(name + "=" + value) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return name, value
}

// marked lists the live processes whose environment holds kv, but not this
// test process.
func marked(kv string) []int {
	want := []byte(kv + "\x00")
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !(bytes.HasPrefix(env, want) || bytes.Contains(env, append([]byte{0}, want...))) {
			continue
		}
		if st, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
			if i := bytes.LastIndexByte(st, ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// sleeps lists the marked processes that are sleeps (the runs' leftovers,
// not simswarm's own processes, which carry the marker too).
func sleeps(kv string) []int {
	var out []int
	for _, pid := range marked(kv) {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil && bytes.HasPrefix(b, []byte("sleep\x00")) {
			out = append(out, pid)
		}
	}
	return out
}

func waitSleeps(t *testing.T, kv string, n int, within time.Duration, log func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for len(sleeps(kv)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sleeps running after %v:\n%s", len(sleeps(kv)), n, within, log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func noSleepsWithin(t *testing.T, kv string, within time.Duration, after string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		left := sleeps(kv)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d leftover sleeps %v still alive %v after %s", len(left), left, within, after)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEmbeddedRunKilled: kill -9 of an embedded `simswarm run` (the client
// is the runner) while its run's escaped sleeps run: none alive 5 s later.
// The same command again completes the run; that run's own leftovers end
// with it; and the run saw none of simswarm's credentials in its
// environment.
func TestEmbeddedRunKilled(t *testing.T) {
	name, value := leakMark(t)
	kv := name + "=" + value
	dir := escapingProject(t, "2")
	state := t.TempDir()
	env := append(cleanEnv(), kv, "SIMSWARM_STATE="+state, "SIMSWARM_CREDS=/secret/client.creds", "SIMSWARM_DASHBOARD_TOKEN=hunter2")
	cmd := exec.Command(binary, "run", "-q", "--json", "--timeout", "30s")
	cmd.Dir, cmd.Env = dir, env
	var errb bytes.Buffer
	cmd.Stderr = &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitSleeps(t, kv, 2, time.Minute, errb.String)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	noSleepsWithin(t, kv, 5*time.Second, "kill -9 of simswarm run")

	again := exec.Command(binary, "run", "-q", "--json", "--timeout", "30s")
	again.Dir, again.Env = dir, env
	out, err := again.Output()
	if err != nil {
		t.Fatalf("the same run again: %v\n%s", err, out)
	}
	var s summary
	if err := jsonUnmarshal(string(out), &s); err != nil || s.Succeeded != 1 {
		t.Fatalf("the same run again: %s", out)
	}
	noSleepsWithin(t, kv, 0, "the run ended (setsid grandchildren of a run that exited on its own)")
	got := readFile(t, filepath.Join(dir, "results", "env-#0.sca"))
	if !strings.Contains(got, kv) {
		t.Fatalf("the run's environment lacks the test's marker:\n%s", got)
	}
	for _, l := range strings.Split(got, "\n") {
		if strings.HasPrefix(l, "SIMSWARM_") && !strings.HasPrefix(l, "SIMSWARM_PROC=") {
			t.Errorf("the run sees %s", l)
		}
	}
}

// TestClusterRunnerKilledEndsTree: kill -9 of a cluster runner while its
// run's escaped sleeps run: none alive 5 s later. The restarted runner
// finishes the campaign, and nothing of either attempt is left running.
func TestClusterRunnerKilledEndsTree(t *testing.T) {
	name, value := leakMark(t)
	kv := name + "=" + value
	t.Setenv(name, value) // the nodes' environment, hence the runs'
	c := newCluster(t, 1)
	dir := escapingProject(t, "3")
	client := startBackground(t, c.clientCmd(dir, "run", "--json", "-q"))
	victim := c.runners[0]
	waitSleeps(t, kv, 2, time.Minute, victim.Log)
	victim.Kill()
	noSleepsWithin(t, kv, 5*time.Second, "kill -9 of the runner")
	victim.Restart()
	s := client.summary(t, 2*time.Minute, "after the runner was restarted")
	if s.Succeeded != 1 {
		t.Fatalf("after the runner was restarted: %+v", s)
	}
	noSleepsWithin(t, kv, 0, "the campaign ended")
}

// TestDistccdKilled: kill -9 of `simswarm distccd` ends its pre-forked
// distccd workers too: within 5 s none runs and the port no longer answers.
func TestDistccdKilled(t *testing.T) {
	name, value := leakMark(t)
	kv := name + "=" + value
	t.Setenv(name, value)
	d := startDistccd(t, "127.0.0.1")
	workers := func() []int {
		var out []int
		for _, pid := range marked(kv) {
			if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err == nil && strings.TrimSpace(string(b)) == "distccd" {
				out = append(out, pid)
			}
		}
		return out
	}
	if n := len(workers()); n < 2 {
		t.Fatalf("%d distccd processes, want the server and its pre-forked workers", n)
	}
	// The simswarm process only, not its group: as a crash or the OOM
	// killer would.
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = d.cmd.Wait()
	// A process that is exiting has given up its memory (its environment
	// reads empty) a moment before its sockets: the port is polled too.
	accepts := func() bool {
		c, err := net.DialTimeout("tcp", d.addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(workers()) > 0 || accepts() {
		if time.Now().After(deadline) {
			t.Fatalf("5 s after kill -9 of simswarm distccd: distccd processes %v alive, %s accepts connections: %v", workers(), d.addr, accepts())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
