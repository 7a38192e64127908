package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/creds"
	"github.com/simswarm/simswarm/internal/engine"
)

// loopServer is a real `simswarm server` on a free loopback port.
type loopServer struct {
	url, creds, state string
	cmd               *exec.Cmd
	log               string
}

func startLoopServer(t *testing.T, extra ...string) *loopServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &loopServer{url: "nats://" + addr, state: t.TempDir()}
	s.creds = filepath.Join(s.state, "client.creds")
	s.log = filepath.Join(t.TempDir(), "server.log")
	f, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(binary, append([]string{"server", "--listen", addr, "--state", s.state}, extra...)...)
	s.cmd.Env, s.cmd.Stdout, s.cmd.Stderr = cleanEnv(), f, f
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		_ = s.cmd.Wait()
		f.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", readFile(t, s.log))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(readFile(t, s.log), "listening") {
		if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", readFile(t, s.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// engine connects to the server as any holder of the cluster credentials
// can: a worker, or someone pretending to be one.
func (s *loopServer) engine(t *testing.T) *engine.Engine {
	t.Helper()
	c, err := creds.Load(s.creds)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := engine.Dial(ctx, engine.DialOptions{URL: s.url, Creds: &c, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	e, err := engine.Open(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// client runs `simswarm <cmd> --server ... --creds ... args` in dir.
func (s *loopServer) client(t *testing.T, dir string, cmd string, args ...string) result {
	t.Helper()
	return runSimswarm(t, dir, t.TempDir(), append([]string{cmd, "--server", s.url, "--creds", s.creds}, args...)...)
}

// templateProject writes a project whose runs the simswarm.toml describes.
func templateProject(t *testing.T, toml string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "proj")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files["simswarm.toml"] = toml
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// quoteList renders strings as a TOML array.
func quoteList(vs ...string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
