package main

// What a cluster client and `simswarm status` say is true (issue 23,
// item 7): an idle runner shows idle, a server that went away is named
// unreachable (not workers missing), and no raw library line reaches the
// terminal.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/testkit"
)

// restart kills the server (SIGKILL), waits, and starts it again on the
// same address and state.
func (s *loopServer) restart(t *testing.T, away time.Duration) {
	t.Helper()
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
	time.Sleep(away)
	f, err := os.OpenFile(s.log, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	args := s.cmd.Args[1:]
	s.cmd = exec.Command(binary, args...)
	s.cmd.Env, s.cmd.Stdout, s.cmd.Stderr = cleanEnv(), f, f
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL); _ = s.cmd.Wait(); f.Close() })
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(readFile(t, s.log), "listening") {
		if time.Now().After(deadline) {
			t.Fatalf("server did not start again:\n%s", readFile(t, s.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestClientAndStatusSayWhatIs(t *testing.T) {
	srv := startLoopServer(t, "--lease", "2s")
	work := t.TempDir()
	startWorker(t, "builder", "--server", srv.url, "--creds", srv.creds, "--dir", filepath.Join(work, "ws"), "--ccache-dir", "off")
	startWorker(t, "runner", "--server", srv.url, "--creds", srv.creds, "--slots", "2", "--name", "r1", "--cache", filepath.Join(work, "r1"))
	marker := filepath.Join(t.TempDir(), "started")
	dir := templateProject(t, `[build]
command = ""
[run]
command = "touch `+marker+`-{run}; sleep {secs}; echo {run} > {resultdir}/out-{run}.csv"
[run.vars]
secs = [6]
`, map[string]string{})

	t.Run("idle runner shows idle", func(t *testing.T) {
		r := srv.client(t, dir, "run", "-q")
		if r.code != 0 {
			t.Fatalf("campaign: exit %d\n%s", r.code, r.stderr)
		}
		// Right after the campaign: the runner's last periodic heartbeat
		// was sent while its run was executing.
		st := srv.client(t, dir, "status")
		var line string
		for _, l := range strings.Split(st.stdout, "\n") {
			if strings.HasPrefix(l, "runner") {
				line = l
			}
		}
		if st.code != 0 || !strings.Contains(line, "idle, 2 slots") {
			t.Fatalf("status right after the campaign shows the runner as %q, want idle:\n%s%s", line, st.stdout, st.stderr)
		}
	})

	t.Run("server away", func(t *testing.T) {
		os.WriteFile(filepath.Join(dir, "simswarm.toml"), []byte(`[build]
command = ""
[run]
command = "touch `+marker+`-{run}; sleep {secs}; echo {run} > {resultdir}/out-{run}.csv"
[run.vars]
secs = [3, 3, 3, 3]
`), 0o644)
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, "run", "--server", srv.url, "--creds", srv.creds)
		cmd.Dir, cmd.Env = dir, cleanEnv()
		var errb testkit.SyncBuffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for _, err := os.Stat(marker + "-1"); err != nil; _, err = os.Stat(marker + "-1") {
			if ctx.Err() != nil {
				t.Fatalf("no run started:\n%s", errb.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Away long enough for the client's watches to miss their
		// heartbeats: the library then reports "consumer not active",
		// which reached the terminal raw.
		srv.restart(t, 40*time.Second)
		err := cmd.Wait()
		out := errb.String()
		if err != nil {
			t.Fatalf("the campaign did not end well after the server came back: %v\n%s", err, out)
		}
		if !strings.Contains(out, "simswarm: the engine at "+srv.url+" is unreachable") {
			t.Errorf("the client never said the engine is unreachable:\n%s", out)
		}
		if strings.Contains(out, "has sent a heartbeat") {
			t.Errorf("the client blamed missing workers for the server being away:\n%s", out)
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.TrimLeft(l, "\r "), "nats:") || strings.Contains(l, "on connection [") {
				t.Errorf("a raw library line reached the terminal: %q", l)
			}
		}
	})
}
