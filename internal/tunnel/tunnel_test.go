package tunnel

// The tunnel is tested against a real sshd (sshdtest) on a loopback port,
// with local TCP echo servers playing the manager's engine, dashboard and
// visualizer ports.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/tunnel/sshdtest"
)

// config forwards three free local ports to three echo servers through s.
func config(t testing.TB, s *sshdtest.Server) Config {
	t.Helper()
	c := Config{Addr: s.Addr, User: s.User, KeyPath: s.KeyPath, KnownHosts: s.KnownHosts(t.TempDir()), KeepAlive: time.Second}
	for range 3 {
		c.Forwards = append(c.Forwards, Forward{Local: sshdtest.FreeAddr(t), Remote: sshdtest.Echo(t)})
	}
	return c
}

func TestTunnelForwardsEveryPortBothWays(t *testing.T) {
	s := sshdtest.Start(t)
	c := config(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tun, err := Open(ctx, c)
	if err != nil {
		t.Fatalf("open: %v\nsshd log:\n%s", err, s.Log())
	}
	served := make(chan error, 1)
	go func() { served <- tun.Serve(ctx) }()

	big := make([]byte, 1<<20)
	_, _ = rand.Read(big)
	for i, f := range c.Forwards {
		sshdtest.RoundTrip(t, f.Local, []byte(fmt.Sprintf("hello through forward %d\n", i)))
		sshdtest.RoundTrip(t, f.Local, big)
	}
	tun.Close()
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	for _, f := range c.Forwards {
		if conn, err := net.DialTimeout("tcp", f.Local, time.Second); err == nil {
			conn.Close()
			t.Fatalf("%s still accepts after Close", f.Local)
		}
	}
}

func TestTunnelRedialsAfterLossAndRefusesChangedHostKey(t *testing.T) {
	s := sshdtest.Start(t)
	c := config(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tun, err := Open(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	tun.Log = quietLog(t)
	served := make(chan error, 1)
	go func() { served <- tun.Serve(ctx) }()
	sshdtest.RoundTrip(t, c.Forwards[0].Local, []byte("before"))

	// A lost connection (laptop slept) is dialled again.
	first := tun.current()
	first.Close()
	deadline := time.Now().Add(10 * time.Second)
	for cl := tun.current(); cl == nil || cl == first; cl = tun.current() {
		if time.Now().After(deadline) {
			t.Fatal("the tunnel did not dial the manager again")
		}
		time.Sleep(20 * time.Millisecond)
	}
	sshdtest.RoundTrip(t, c.Forwards[1].Local, []byte("after redial"))

	// A manager with another host key is refused, and that is final.
	s.RegenerateHostKey()
	tun.current().Close()
	select {
	case err := <-served:
		var hk *HostKeyError
		if !errors.As(err, &hk) || !strings.Contains(err.Error(), "host key mismatch") {
			t.Fatalf("serve after host key change: %v, want a host key mismatch", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the tunnel kept going after the host key changed")
	}
}

func TestTunnelRefusesChangedHostKey(t *testing.T) {
	s := sshdtest.Start(t)
	c := config(t, s)
	ctx := context.Background()
	cl, err := Dial(ctx, c)
	if err != nil {
		t.Fatalf("dial with the recorded key: %v", err)
	}
	cl.Close()
	s.RegenerateHostKey()
	_, err = Dial(ctx, c)
	var hk *HostKeyError
	if !errors.As(err, &hk) {
		t.Fatalf("dial after host key change: %v, want *HostKeyError", err)
	}
	msg := err.Error()
	for _, want := range []string{"host key mismatch", s.Addr, "refusing to connect", c.KnownHosts} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	// Open fails the same way, leaving no port bound.
	if _, err := Open(ctx, c); !errors.As(err, &hk) {
		t.Fatalf("open after host key change: %v", err)
	}
	for _, f := range c.Forwards {
		l, err := net.Listen("tcp", f.Local)
		if err != nil {
			t.Fatalf("a failed Open left %s bound: %v", f.Local, err)
		}
		l.Close()
	}
}

func TestTunnelRefusesUnknownHost(t *testing.T) {
	s := sshdtest.Start(t)
	c := config(t, s)
	if err := os.WriteFile(c.KnownHosts, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Dial(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "no host key recorded") {
		t.Fatalf("dial with an empty known_hosts: %v", err)
	}
}

func TestTunnelRunsRemoteCommands(t *testing.T) {
	s := sshdtest.Start(t)
	c := config(t, s)
	ctx := context.Background()
	cl, err := Dial(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out, err := Run(ctx, cl, "echo from-remote; cat", strings.NewReader("stdin-bytes"))
	if err != nil {
		t.Fatal(err)
	}
	if out != "from-remote\nstdin-bytes" {
		t.Fatalf("remote output %q", out)
	}
	_, err = Run(ctx, cl, "echo bad thing >&2; exit 3", nil)
	if err == nil || !strings.Contains(err.Error(), "bad thing") || !strings.Contains(err.Error(), "exit") {
		t.Fatalf("failing remote command: %v", err)
	}
}

// The bad inputs below need no sshd: they fail before any network use.

func TestTunnelKeyFileMissingOrReadableByOthers(t *testing.T) {
	dir := t.TempDir()
	c := Config{Addr: "127.0.0.1:1", User: "x", KeyPath: filepath.Join(dir, "key.pem"), KnownHosts: filepath.Join(dir, "known_hosts"),
		Forwards: []Forward{{Local: sshdtest.FreeAddr(t), Remote: "127.0.0.1:4222"}}}
	_, err := Listen(c)
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), c.KeyPath) {
		t.Fatalf("missing key: %v", err)
	}
	if err := os.WriteFile(c.KeyPath, []byte("not used"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Listen(c)
	if err == nil || !strings.Contains(err.Error(), "readable by group or others") || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("key readable by others: %v", err)
	}
}

func TestTunnelLocalPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, port, _ := net.SplitHostPort(busy.Addr().String())
	dir := t.TempDir()
	key := filepath.Join(dir, "key.pem")
	_, pemBytes := sshdtest.NewKey(t)
	if err := os.WriteFile(key, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	free := sshdtest.FreeAddr(t)
	c := Config{Addr: "127.0.0.1:1", User: "x", KeyPath: key, KnownHosts: filepath.Join(dir, "known_hosts"),
		Forwards: []Forward{{Local: free, Remote: "127.0.0.1:1"}, {Local: busy.Addr().String(), Remote: "127.0.0.1:2"}}}
	_, err = Listen(c)
	if err == nil || !strings.Contains(err.Error(), "local port "+port+" is already in use") {
		t.Fatalf("busy port: %v", err)
	}
	// The port bound before the busy one was released again.
	l, err := net.Listen("tcp", free)
	if err != nil {
		t.Fatalf("%s left bound after a failed Listen: %v", free, err)
	}
	l.Close()
}

func TestTunnelPIDFileLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "simswarm-tunnel-test.pid")
	if _, _, err := ReadPID(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no file: %v", err)
	}
	if err := WritePID(path); err != nil {
		t.Fatal(err)
	}
	pid, running, err := ReadPID(path)
	if err != nil || pid != os.Getpid() || !running {
		t.Fatalf("read own pid: %d %v %v", pid, running, err)
	}
	RemovePID(path)
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("RemovePID left the file: %v", err)
	}

	// A live tunnel (here: a sleeping process) holds the file.
	live := exec.Command("sleep", "30")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = live.Process.Kill(); _ = live.Wait() }()
	if err := os.WriteFile(path, []byte(pidLine(live.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	var re *RunningError
	if err := WritePID(path); !errors.As(err, &re) || re.PID != live.Process.Pid {
		t.Fatalf("write over a live tunnel's file: %v", err)
	}
	pid, stale, err := Stop(path, 2*time.Second)
	if err != nil || stale || pid != live.Process.Pid {
		t.Fatalf("stop live: pid %d stale %v err %v", pid, stale, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stop left the PID file: %v", err)
	}

	// A stale file: its process is gone.
	dead := deadPID(t)
	if err := os.WriteFile(path, []byte(fmt.Sprintf("%d\n", dead)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, running, _ := ReadPID(path); running {
		t.Fatalf("pid %d of an exited process reads as running", dead)
	}
	if err := WritePID(path); err != nil {
		t.Fatalf("replacing a stale PID file: %v", err)
	}
	if pid, _, _ := ReadPID(path); pid != os.Getpid() {
		t.Fatalf("stale PID file not replaced: holds %d", pid)
	}
	if err := os.WriteFile(path, []byte(fmt.Sprintf("%d\n", dead)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stale, err := Stop(path, time.Second); err != nil || !stale {
		t.Fatalf("stop stale: stale %v err %v", stale, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stop left a stale PID file: %v", err)
	}

	// A pid reused by another process since: the start time tells.
	if err := os.WriteFile(path, []byte(fmt.Sprintf("%d 1\n", os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, running, _ := ReadPID(path); running && startTime(os.Getpid()) != "" {
		t.Fatal("a PID file whose start time does not match reads as running")
	}
}

// deadPID is the pid of a process that has exited and been reaped.
func deadPID(t testing.TB) int {
	t.Helper()
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	return c.Process.Pid
}

func TestTunnelDefaultForwards(t *testing.T) {
	got := fmt.Sprint(DefaultForwards("10.42.0.10"))
	want := "[{127.0.0.1:4222 10.42.0.10:4222} {127.0.0.1:9181 10.42.0.10:9181} {127.0.0.1:8080 10.42.0.10:8080}]"
	if got != want {
		t.Errorf("forwards %s, want %s", got, want)
	}
	if f := DefaultForwards(""); f[0].Remote != "127.0.0.1:4222" {
		t.Errorf("without a manager address: %v", f)
	}
}
