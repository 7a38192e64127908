package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/simswarm/simswarm"
)

// plainNATS starts a NATS server with JetStream that knows nothing of
// simswarm: what the official nats image runs.
func plainNATS(t *testing.T) (url, credsFile string) {
	t.Helper()
	pass := fmt.Sprintf("pw%d", time.Now().UnixNano())
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true, Username: "simswarm", Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server did not start")
	}
	t.Cleanup(srv.Shutdown)
	credsFile = filepath.Join(t.TempDir(), "client.creds")
	if err := os.WriteFile(credsFile, []byte(fmt.Sprintf("user = \"simswarm\"\npassword = %q\n", pass)), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.ClientURL(), credsFile
}

func startWorker(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv()
	log := filepath.Join(t.TempDir(), "worker.log")
	f, _ := os.Create(log)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log)
			t.Logf("worker %v log:\n%s", args[0], b)
		}
	})
}

// TestOfficialNatsServer: a NATS server simswarm did not start is refused
// until `simswarm init` sets the engine up on it; then a campaign runs.
func TestOfficialNatsServer(t *testing.T) {
	url, credsFile := plainNATS(t)
	dir := example(t, "aloha")
	r := runSimswarm(t, dir, t.TempDir(), "run", "--server", url, "--creds", credsFile, "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "0..3")
	if r.code != 2 || !strings.Contains(r.stderr, "has no simswarm engine") {
		t.Fatalf("plain NATS server: exit %d: %s", r.code, r.stderr)
	}
	r = runSimswarm(t, dir, t.TempDir(), "init", "--server", url, "--creds", credsFile)
	if r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
	work := t.TempDir()
	startWorker(t, "builder", "--server", url, "--creds", credsFile, "--dir", filepath.Join(work, "ws"), "--ccache-dir", filepath.Join(work, "ccache"))
	startWorker(t, "runner", "--server", url, "--creds", credsFile, "--slots", "2", "--cache", filepath.Join(work, "cache"))
	r = runSimswarm(t, dir, t.TempDir(), "run", "--server", url, "--creds", credsFile, "--json", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "0..3")
	if s := jsonSummary(t, r); r.code != 0 || s.Succeeded != 4 {
		t.Fatalf("campaign on an initialised nats server: exit %d %+v\n%s", r.code, s, r.stderr)
	}

	// A worker of another version: the client refuses, naming both.
	nc, err := nats.Connect(url, nats.UserInfo("simswarm", credsPassword(t, credsFile)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	old := simswarm.Worker{ID: "old-runner-1", Role: "runner", Version: "0.0.1", Seen: time.Now(), Slots: 1}
	b, _ := json.Marshal(old)
	if err := nc.Publish("$KV.simswarm_workers.runner.old-runner-1", b); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	time.Sleep(200 * time.Millisecond)
	r = runSimswarm(t, dir, t.TempDir(), "run", "--server", url, "--creds", credsFile, "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "4")
	if r.code != 2 || !strings.Contains(r.stderr, "0.0.1") || !strings.Contains(r.stderr, simswarm.Version) {
		t.Fatalf("version skew: exit %d: %s", r.code, r.stderr)
	}
}

func credsPassword(t *testing.T, path string) string {
	t.Helper()
	for _, l := range strings.Split(readFile(t, path), "\n") {
		if v, ok := strings.CutPrefix(l, "password = "); ok {
			return strings.Trim(v, `"`)
		}
	}
	t.Fatal("no password in creds")
	return ""
}

// TestServerBadInputs: an unreachable or malformed server is a clear error
// within seconds, never a hang; worker flags are checked.
func TestServerBadInputs(t *testing.T) {
	dir := example(t, "aloha")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--server", "nats://127.0.0.1:1", "--", "./aloha"}, "cannot reach the simswarm server"},
		{[]string{"run", "--server", "localhost:4222x", "--", "./aloha"}, "malformed server URL"},
		{[]string{"run", "--server", "nats://", "--", "./aloha"}, "malformed server URL"},
		{[]string{"run", "--server", "http://localhost:4222", "--", "./aloha"}, "scheme must be nats:// or tls://"},
		{[]string{"status", "--server", "nats://127.0.0.1:1"}, "cannot reach the simswarm server"},
		{[]string{"runner", "--server", "nats://127.0.0.1:1", "--slots", "0"}, "--slots must be at least 1"},
		{[]string{"runner"}, "--server is required"},
		{[]string{"server", "--listen", "nowhere"}, "invalid --listen"},
		{[]string{"server", "--listen", "127.0.0.1:0"}, "--state is required"},
		{[]string{"run", "--server", "nats://127.0.0.1:1", "--creds", "/nonexistent.creds", "--", "./aloha"}, "/nonexistent.creds"},
	}
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		cmd := exec.CommandContext(ctx, binary, c.args...)
		cmd.Dir, cmd.Env = dir, cleanEnv()
		out, _ := cmd.CombinedOutput()
		cancel()
		code := cmd.ProcessState.ExitCode()
		if code != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("%v: exit %d, want 2 saying %q:\n%s", c.args, code, c.want, out)
		}
		if took := time.Since(start); took > 6*time.Second {
			t.Errorf("%v took %s to fail", c.args, took)
		}
	}
}
