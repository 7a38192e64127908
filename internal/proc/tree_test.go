package proc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests below start real processes that try to escape: a double fork
// (the grandchild's parent exits, so it is adopted by init) into a new
// session (setsid: no longer in the run's process group). Each test marks
// its processes with a variable of its own, finds them by that marker in
// /proc/PID/environ (not through simswarm's own bookkeeping), and kills
// whatever it finds at the end, so a failing test leaves nothing behind.

// escape is a script that leaves a setsid'd, double-forked sleep behind
// and then does what rest says.
func escape(rest string) []string {
	return sh(`(setsid sleep 300 </dev/null >/dev/null 2>&1 &); (setsid sh -c 'sleep 301' &); ` + rest)
}

// testMark gives a test its own marker variable, and kills what carries it
// when the test ends.
func testMark(t *testing.T) string {
	m := fmt.Sprintf("PROCTEST_MARK=%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_"))
	t.Cleanup(func() {
		for _, pid := range withMark(m) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return m
}

// withMark lists the live (not zombie) processes whose environment holds
// mark, other than this test process.
func withMark(mark string) []int {
	var pids []int
	want := []byte(mark + "\x00")
	eachEnviron(func(pid int, env []byte) {
		if (bytes.HasPrefix(env, want) || bytes.Contains(env, append([]byte{0}, want...))) && alive(pid) {
			pids = append(pids, pid)
		}
	})
	return pids
}

// sleepers lists the marked processes that are the sleeps of escape.
func sleepers(mark string) []int {
	var out []int
	for _, pid := range withMark(mark) {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil && bytes.HasPrefix(b, []byte("sleep\x00")) {
			out = append(out, pid)
		}
	}
	return out
}

// noneWithin polls until no process carries mark, and fails the test
// naming the survivors if some still do after limit.
func noneWithin(t *testing.T, mark string, limit time.Duration, after string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		left := withMark(mark)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var desc []string
			for _, pid := range left {
				b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
				desc = append(desc, fmt.Sprintf("%d %q", pid, bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
			}
			t.Fatalf("%d processes still alive %v after %s: %s", len(left), limit, after, strings.Join(desc, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func markedEnv(mark string) []string { return append(os.Environ(), mark) }

// TestSetsidGrandchildEndsWithRun: a run that exits normally, leaving a
// double-forked setsid sleep with its output closed and another holding
// it, leaves nothing running once Run returns, and Run does not wait for
// them to end by themselves.
func TestSetsidGrandchildEndsWithRun(t *testing.T) {
	t.Parallel()
	mark := testMark(t)
	start := time.Now()
	res := runBounded(t, context.Background(), Spec{Argv: escape(`sleep 0.3; echo parent done`), Env: markedEnv(mark)}, 15*time.Second)
	if res.Failed() || !bytes.Contains(res.Tail, []byte("parent done")) {
		t.Fatalf("got %+v (%s), want a clean exit", res, res.Describe())
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Run took %v", el)
	}
	noneWithin(t, mark, 0, "Run returned")
}

// TestTimeoutEndsSetsidTree: a timeout ends the whole tree, escaped
// grandchildren included, within 5 s.
func TestTimeoutEndsSetsidTree(t *testing.T) {
	t.Parallel()
	mark := testMark(t)
	res := runBounded(t, context.Background(), Spec{Argv: escape(`sleep 300`), Env: markedEnv(mark), Timeout: 500 * time.Millisecond}, 15*time.Second)
	if !res.TimedOut {
		t.Fatalf("got %+v, want a timeout", res)
	}
	if res.Wall > 5*time.Second {
		t.Errorf("tree ended %v after start, timeout 0.5 s", res.Wall)
	}
	noneWithin(t, mark, 0, "Run returned")
}

// TestCancelEndsSetsidTree: cancelling the context ends the whole tree,
// a grandchild that ignores SIGTERM included.
func TestCancelEndsSetsidTree(t *testing.T) {
	t.Parallel()
	mark := testMark(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(500*time.Millisecond, cancel)
	res := runBounded(t, ctx, Spec{Argv: escape(`(setsid sh -c "trap '' TERM; sleep 302; :" &); sleep 300`), Env: markedEnv(mark)}, 15*time.Second)
	if res.TimedOut || !res.Failed() {
		t.Fatalf("got %+v, want killed", res)
	}
	if res.Wall > 5500*time.Millisecond {
		t.Errorf("tree ended %v after start, cancelled after 0.5 s", res.Wall)
	}
	noneWithin(t, mark, 0, "Run returned")
}

// TestFilteredEnvironment: supervised processes do not see simswarm's own
// settings (credentials, server, token), only their marker; other
// variables pass.
func TestFilteredEnvironment(t *testing.T) {
	t.Setenv("SIMSWARM_CREDS", "/secret/client.creds")
	t.Setenv("SIMSWARM_DASHBOARD_TOKEN", "hunter2")
	t.Setenv("PROCTEST_KEEP", "kept")
	res := runBounded(t, context.Background(), Spec{Argv: []string{"env"}}, 10*time.Second)
	env := string(res.Tail)
	for _, l := range strings.Split(env, "\n") {
		if strings.HasPrefix(l, "SIMSWARM_") && !strings.HasPrefix(l, MarkerEnv+"=") {
			t.Errorf("run sees %q", l)
		}
	}
	if !strings.Contains(env, "PROCTEST_KEEP=kept\n") {
		t.Errorf("PROCTEST_KEEP did not pass:\n%s", env)
	}
	if !strings.Contains(env, MarkerEnv+"=") {
		t.Errorf("no %s marker:\n%s", MarkerEnv, env)
	}
}

// helperEnv makes the test binary a supervisor of its own (see
// TestHelperSupervisor) rather than a test run.
const helperEnv = "PROCTEST_HELPER"

// TestHelperSupervisor is not a test: it is the simswarm process of
// TestSupervisorKilled, started as a copy of the test binary. It reports
// its supervision mode, then runs the escaping script until killed; or,
// with PROCTEST_HELPER=setup, only sets up and reports what it ended.
func TestHelperSupervisor(t *testing.T) {
	switch os.Getenv(helperEnv) {
	case "run":
		r := Setup(nil)
		fmt.Printf("mode %s\n", r.Mode)
		_, _ = Run(context.Background(), Spec{Argv: escape(`echo running; sleep 300`), Output: os.Stdout})
	case "setup":
		r := Setup(nil)
		fmt.Printf("mode %s\nleftover %d\n", r.Mode, r.Leftover)
	default:
		t.Skip("helper process for TestSupervisorKilled")
	}
}

// startHelper starts the test binary as a supervisor that runs escape; it
// returns once the escaped sleeps run.
// It skips the test for mode "cgroup" where cgroup v2 is not usable; mode
// "marker" forces the environment markers. env is what the mode adds to a
// helper's environment.
func startHelper(t *testing.T, mark, mode string) (cmd *exec.Cmd, env []string) {
	t.Helper()
	if mode == "marker" {
		env = append(env, NoCgroupEnv+"=1")
	}
	cmd = exec.Command("/proc/self/exe", "-test.run=^TestHelperSupervisor$")
	cmd.Env = append(append(os.Environ(), mark, helperEnv+"=run"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	got := ""
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("helper ended before its run started")
			}
			if m, ok := strings.CutPrefix(l, "mode "); ok {
				got = m
			}
			if l == "running" {
				// Both escaped sleeps have forked once the script echoes;
				// give setsid's exec a moment.
				for i := 0; i < 100 && len(sleepers(mark)) < 2; i++ {
					time.Sleep(20 * time.Millisecond)
				}
				if n := len(sleepers(mark)); n < 2 {
					t.Fatalf("%d escaped sleeps running, want 2", n)
				}
				go func() {
					for range lines {
					}
				}()
				if mode == "cgroup" && !strings.HasPrefix(got, "cgroup v2") {
					t.Skipf("cgroup v2 is not usable here: %s", got)
				}
				return cmd, env
			}
		case <-deadline:
			t.Fatal("helper's run did not start within 20 s")
		}
	}
}

// reaperOf finds the reaper of the helper process pid.
func reaperOf(pid int) int {
	found := 0
	want := []byte(fmt.Sprintf("-%d-", pid))
	eachEnviron(func(p int, env []byte) {
		for _, kv := range bytes.Split(env, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte(reaperEnv+"=")); ok && bytes.Contains(v, want) {
				found = p
			}
		}
	})
	return found
}

// TestSupervisorKilled: kill -9 of the simswarm process that supervises a
// run whose sleeps escaped (double fork, setsid): no descendant is alive 5 s
// later. With cgroups, and with the environment markers used where cgroup
// v2 is not available.
func TestSupervisorKilled(t *testing.T) {
	for _, mode := range []string{"cgroup", "marker"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			mark := testMark(t)
			cmd, _ := startHelper(t, mark, mode)
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			noneWithin(t, mark, 5*time.Second, "kill -9 of their supervisor")
		})
	}
}

// TestRestartEndsLeftovers: when the reaper is killed with its supervisor
// (say, kill -9 of both), the escaped sleeps survive both; the next
// simswarm process on the host ends them in Setup, before it runs
// anything, and says how many it ended.
func TestRestartEndsLeftovers(t *testing.T) {
	for _, mode := range []string{"cgroup", "marker"} {
		t.Run(mode, func(t *testing.T) {
			// Not parallel: any supervisor starting meanwhile (the helpers of
			// other tests) would end these leftovers first.
			mark := testMark(t)
			cmd, env := startHelper(t, mark, mode)
			reaper := reaperOf(cmd.Process.Pid)
			if reaper == 0 {
				t.Fatal("found no reaper of the helper")
			}
			_ = syscall.Kill(reaper, syscall.SIGKILL)
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			time.Sleep(500 * time.Millisecond)
			if n := len(sleepers(mark)); n < 2 {
				t.Fatalf("%d escaped sleeps alive after both were killed, want at least the 2 escaped ones", n)
			}
			next := exec.Command("/proc/self/exe", "-test.run=^TestHelperSupervisor$")
			next.Env = append(append(os.Environ(), helperEnv+"=setup"), env...)
			out, err := next.Output()
			if err != nil {
				t.Fatalf("next supervisor: %v", err)
			}
			if !strings.Contains(string(out), "leftover ") || strings.Contains(string(out), "leftover 0\n") {
				t.Errorf("next supervisor reported %q, want the leftovers it ended", out)
			}
			noneWithin(t, mark, 0, "the next supervisor's Setup")
		})
	}
}
