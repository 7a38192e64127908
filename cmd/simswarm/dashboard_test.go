package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freeAddr finds a loopback port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startSimswarm starts the binary in the background; the result comes on
// the channel when it exits.
// Its output (stdout and stderr) collects in the buffer, which may be read
// once it has exited.
func startSimswarm(t *testing.T, dir, state string, args ...string) (*exec.Cmd, *bytes.Buffer, <-chan int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SIMSWARM_STATE="+state)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr // the summary and the progress, in order
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		done <- cmd.ProcessState.ExitCode()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
	})
	return cmd, &stderr, done
}

// apiGet polls url until it answers 200 and decode accepts the body.
func apiGet(t *testing.T, url string, within time.Duration, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var v map[string]any
		if res, err := http.Get(url); err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 && json.Unmarshal(b, &v) == nil && ok(v) {
				return v
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: no satisfying answer within %v (last %v)", url, within, v)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDashboardCommand: `simswarm dashboard` refuses a public address
// without a token, and serves an embedded engine's state directory.
func TestDashboardCommand(t *testing.T) {
	state := t.TempDir()
	r := runSimswarm(t, t.TempDir(), state, "dashboard", "--listen", "0.0.0.0:9181")
	if r.code != 2 || !strings.Contains(r.stderr, "token") {
		t.Fatalf("public listener without token: exit %d: %s", r.code, r.stderr)
	}
	addr := freeAddr(t)
	cmd, stderr, done := startSimswarm(t, t.TempDir(), state, "dashboard", "--listen", addr)
	apiGet(t, "http://"+addr+"/api/overview", 20*time.Second, func(v map[string]any) bool { return v["queues"] != nil })
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("dashboard exit %d after SIGTERM: %s", code, stderr)
		}
		if !strings.Contains(stderr.String(), "dashboard on http://"+addr+"/") {
			t.Errorf("stderr does not say where: %s", stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dashboard did not stop on SIGTERM")
	}
}

// TestRunDashboard: `simswarm run --dashboard ADDR` serves the dashboard of
// its embedded campaign while it runs; cancelling the campaign there ends
// the run like Ctrl-C ends its runs (exit status 1: runs cancelled).
func TestRunDashboard(t *testing.T) {
	dir := t.TempDir()
	toml := "[build]\ncommand = \"\"\n\n[run]\ncommand = \"sleep 60; touch {resultdir}/r-{run}.sca\"\n"
	if err := os.WriteFile(filepath.Join(dir, "simswarm.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	_, stderr, done := startSimswarm(t, dir, t.TempDir(), "run", "--dashboard", addr, "-j", "1")
	base := "http://" + addr
	var id string
	apiGet(t, base+"/api/overview", 30*time.Second, func(v map[string]any) bool {
		camps, _ := v["campaigns"].([]any)
		if len(camps) != 1 {
			return false
		}
		c := camps[0].(map[string]any)
		id, _ = c["id"].(string)
		running, _ := c["counts"].(map[string]any)["running"].(float64)
		return running == 1
	})
	res, err := http.Post(base+"/api/campaigns/"+id+"/cancel", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("cancel: %d %s", res.StatusCode, b)
	}
	select {
	case code := <-done:
		if code != 1 || !strings.Contains(stderr.String(), "1 cancelled") {
			t.Errorf("run after cancel from the dashboard: exit %d\n%s", code, stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("run did not end after the dashboard cancelled its campaign\n%s", stderr)
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("dashboard on http://%s/", addr)) {
		t.Errorf("run does not say where the dashboard is:\n%s", stderr)
	}
	r := runSimswarm(t, dir, t.TempDir(), "run", "--dashboard", "0.0.0.0:0")
	if r.code != 2 || !strings.Contains(r.stderr, "--dashboard") || !strings.Contains(r.stderr, "token") {
		t.Errorf("run --dashboard on a public address without token: exit %d: %s", r.code, r.stderr)
	}
}

// TestWithoutPassword: the page header never shows credentials given in
// an engine URL.
func TestWithoutPassword(t *testing.T) {
	got := withoutPassword("nats://u:secret@a:4222,nats://b:4222")
	if got != "nats://a:4222,nats://b:4222" {
		t.Errorf("withoutPassword = %q", got)
	}
}

// TestDashboardTokenFile: the token can come from a file instead of the
// command line (where ps shows it): a dashboard reachable from other
// machines then answers only requests that carry it. Files others may
// read, empty files and both --token and --token-file are refused.
func TestDashboardTokenFile(t *testing.T) {
	state := t.TempDir()
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	os.WriteFile(good, []byte("s3cret-from-file\n"), 0o600)
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte("s3cret\n"), 0o644)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--token-file", open}, "is readable by others (mode 0644)"},
		{[]string{"--token-file", empty}, "is empty"},
		{[]string{"--token-file", filepath.Join(dir, "none")}, "no such file"},
		{[]string{"--token-file", good, "--token", "x"}, "contradict"},
	} {
		oneLineError(t, runSimswarm(t, dir, state, append([]string{"dashboard", "--listen", "0.0.0.0:0"}, c.args...)...), 2, c.want)
	}

	port := strings.TrimPrefix(freeAddr(t), "127.0.0.1:")
	cmd, stderr, _ := startSimswarm(t, dir, state, "dashboard", "--listen", "0.0.0.0:"+port, "--token-file", good)
	url := "http://127.0.0.1:" + port + "/api/overview"
	status := func(token string) int {
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	deadline := time.Now().Add(20 * time.Second)
	for status("s3cret-from-file") != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("dashboard does not accept the file's token:\n%s", stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c := status(""); c != 401 && c != 403 {
		t.Errorf("without the token: status %d, want it refused", c)
	}
	if c := status("s3cret"); c != 401 && c != 403 {
		t.Errorf("with another token: status %d, want it refused", c)
	}
	if b, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cmdline"); bytes.Contains(b, []byte("s3cret-from-file")) {
		t.Errorf("the token shows in the command line")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
}
