package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCancelNotReachingEngine: Ctrl-C while the server is down (kill -9)
// must not be reported as a cancel: the client says the campaign is still
// queued and names simswarm cancel. Once the server is back, runs resume,
// and after simswarm cancel ID returns, no run of the campaign starts: the
// runs count their own starts in a log.
func TestCancelNotReachingEngine(t *testing.T) {
	f := newFaultLab(t, faultOpts{servers: 1, runners: 2, serverArgs: []string{"--lease", "2s"}})
	const runs = 40
	dir, log := faultProject(t, runs)
	client := f.client(t, dir, log, 2)
	waitEvents(t, log, 2*time.Minute, "a first run started", func(ev []execEvent) bool { return len(ev) >= 1 })
	f.servers[0].Kill()
	client.cmd.Process.Signal(syscall.SIGINT)
	interrupted := time.Now()
	done := make(chan error, 1)
	go func() { done <- client.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		client.cmd.Process.Kill()
		t.Fatalf("the interrupted client did not end within 90 s\n%s", client.errb.String())
	}
	t.Logf("the client ended %s after Ctrl-C", time.Since(interrupted).Round(100*time.Millisecond))
	stderr := strings.TrimSpace(client.errb.String())
	lines := strings.Split(stderr, "\n")
	last := lines[len(lines)-1]
	if code := client.cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit %d, want 130\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "interrupted: the engine is out of reach; trying for 15s to cancel campaign") {
		t.Errorf("the client did not say why it waits:\n%s", stderr)
	}
	if strings.Contains(stderr, "were cancelled") {
		t.Errorf("the client reports a cancel the engine never got:\n%s", stderr)
	}
	m := regexp.MustCompile(`^simswarm: interrupted, but the cancel did not reach the engine .*campaign ([0-9a-f]{16}) is still queued.*; cancel it with: simswarm cancel ([0-9a-f]{16}) --server \S+ --creds \S+$`).FindStringSubmatch(last)
	if m == nil || m[1] != m[2] {
		t.Fatalf("last line %q does not say the campaign is still queued and how to cancel it\n%s", last, stderr)
	}
	id := m[1]
	t.Logf("client: %s", last)

	// The server comes back with the campaign queued: the runners go on.
	before := len(readExecLog(t, log))
	f.servers[0].Restart()
	waitEvents(t, log, 2*time.Minute, "runs resumed after the restart", func(ev []execEvent) bool {
		for _, e := range ev[before:] {
			if !e.done {
				return true
			}
		}
		return false
	})
	var told time.Time
	deadline := time.Now().Add(time.Minute)
	for {
		cmd := exec.Command(binary, "cancel", id, "--server", f.url, "--creds", f.creds)
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		if err == nil {
			told = time.Now()
			if !regexp.MustCompile(`^campaign ` + id + ` cancelled: \d+ waiting runs? removed from the queue`).Match(out) {
				t.Fatalf("simswarm cancel said %q", out)
			}
			t.Logf("cancel: %s", strings.TrimSpace(string(out)))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("simswarm cancel %s kept failing: %v\n%s", id, err, out)
		}
		time.Sleep(time.Second)
	}
	// Past the lease and the runners' reconnection grace, nothing started
	// after the user was told the campaign is cancelled.
	time.Sleep(15 * time.Second)
	starts := 0
	for _, e := range readExecLog(t, log) {
		if e.done {
			continue
		}
		starts++
		if e.at.After(told) {
			t.Errorf("run %d started on %s at %s, %s after simswarm cancel returned", e.run, e.host, e.at.Format("15:04:05.000"), e.at.Sub(told).Round(time.Millisecond))
		}
	}
	if starts >= runs {
		t.Errorf("all %d runs started: the cancel stopped nothing", runs)
	}
	t.Logf("%d of %d runs started before the cancel", starts, runs)
}

// TestCancelDetached: a campaign submitted with --detach is cancelled by
// simswarm cancel on the embedded engine; a second cancel says it already
// was, and attach does not bring the cancelled campaign back to life.
func TestCancelDetached(t *testing.T) {
	dir := example(t, "aloha")
	state := t.TempDir()
	r := runSimswarm(t, dir, state, "run", "--detach", "--", "./aloha", "-c", "PureAlohaExperiment")
	m := regexp.MustCompile(`campaign ([0-9a-f]{16}) submitted: 42 runs`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("--detach: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	id := m[1]
	r = runSimswarm(t, dir, state, "cancel", id)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "campaign "+id+" cancelled: 42 waiting runs removed from the queue; runs in progress are stopped" {
		t.Fatalf("cancel: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runSimswarm(t, dir, state, "cancel", id)
	if r.code != 0 || !strings.Contains(r.stdout, "was already cancelled: 0 waiting runs") {
		t.Fatalf("cancel again: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runSimswarm(t, dir, state, "attach", id)
	oneLineError(t, r, 2, "campaign "+id+" was cancelled")
	if got := files(t, filepath.Join(dir, "results"), "*.sca"); len(got) != 0 {
		t.Fatalf("runs of the cancelled campaign executed: %v", got)
	}
}

// listJob stands in for a simulation given run numbers with -r: it logs
// the start of each run of its -r list as countingJob does, then sleeps.
const listJob = `#!/bin/sh
log=$1; shift; runs=""
while [ $# -gt 0 ]; do case $1 in -r) runs=$2; shift;; esac; shift; done
for n in $(echo $runs | tr , ' '); do echo "start $n ${FAULT_HOST:-?} $$ $(date +%s.%N)" >> "$log"; done
sleep 3
`

// TestListCancelNotReachingEngine: Ctrl-C of a --list campaign with the
// server down names every item's campaign as still queued, and one
// simswarm cancel with those ids cancels them all once the server is back.
func TestListCancelNotReachingEngine(t *testing.T) {
	f := newFaultLab(t, faultOpts{servers: 1, runners: 1, serverArgs: []string{"--lease", "2s"}})
	top := t.TempDir()
	log := filepath.Join(t.TempDir(), "executions.log")
	var list strings.Builder
	for _, name := range []string{"one", "two"} {
		os.MkdirAll(filepath.Join(top, name), 0o755)
		if err := os.WriteFile(filepath.Join(top, name, "job.sh"), []byte(listJob), 0o755); err != nil {
			t.Fatal(err)
		}
		list.WriteString(name + " ./job.sh " + log + " -r 0,1,2,3,4,5,6,7,8,9\n")
	}
	write(t, filepath.Join(top, "list.txt"), list.String())
	cmd := exec.Command(binary, "run", "--server", f.url, "--creds", f.creds, "-q", "--list", "list.txt")
	cmd.Dir, cmd.Env = top, append(cleanEnv(), "SIMSWARM_STATE="+t.TempDir())
	client := startBackground(t, cmd)
	waitEvents(t, log, 2*time.Minute, "a first run started", func(ev []execEvent) bool { return len(ev) >= 1 })
	f.servers[0].Kill()
	client.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- client.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		client.cmd.Process.Kill()
		t.Fatalf("the interrupted client did not end within 90 s\n%s", client.errb.String())
	}
	stderr := strings.TrimSpace(client.errb.String())
	last := stderr[strings.LastIndex(stderr, "\n")+1:]
	m := regexp.MustCompile(`campaigns ([0-9a-f]{16}) ([0-9a-f]{16}) are still queued.*; cancel them with: simswarm cancel ([0-9a-f]{16} [0-9a-f]{16}) --server`).FindStringSubmatch(last)
	if code := client.cmd.ProcessState.ExitCode(); code != 130 || m == nil || m[3] != m[1]+" "+m[2] {
		t.Fatalf("exit %d; last line %q does not name both campaigns as still queued\n%s", code, last, stderr)
	}
	f.servers[0].Restart()
	var told time.Time
	deadline := time.Now().Add(time.Minute)
	for {
		c := exec.Command(binary, "cancel", m[1], m[2], "--server", f.url, "--creds", f.creds)
		c.Env = cleanEnv()
		out, err := c.CombinedOutput()
		if err == nil {
			told = time.Now()
			if strings.Count(string(out), " cancelled: ") != 2 {
				t.Fatalf("simswarm cancel said %q", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("simswarm cancel kept failing: %v\n%s", err, out)
		}
		time.Sleep(time.Second)
	}
	time.Sleep(15 * time.Second)
	for _, e := range readExecLog(t, log) {
		if !e.done && e.at.After(told) {
			t.Errorf("a run started at %s, %s after simswarm cancel returned", e.at.Format("15:04:05.000"), e.at.Sub(told).Round(time.Millisecond))
		}
	}
}
