package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// engineWithWorkers sets up an engine on a plain NATS server and returns
// what a client needs.
func engineWithWorkers(t *testing.T) (url, credsFile string) {
	t.Helper()
	url, credsFile = plainNATS(t)
	if r := runSimswarm(t, t.TempDir(), t.TempDir(), "init", "--server", url, "--creds", credsFile); r.code != 0 {
		t.Fatalf("init: %s", r.stderr)
	}
	startWorker(t, "builder", "--server", url, "--creds", credsFile, "--dir", filepath.Join(t.TempDir(), "ws"), "--ccache-dir", t.TempDir())
	return url, credsFile
}

// TestCacheEviction: a runner's cache stays within its bound by evicting
// the least recently used tree, and an evicted tree comes back when needed.
func TestCacheEviction(t *testing.T) {
	url, credsFile := engineWithWorkers(t)
	log := filepath.Join(t.TempDir(), "runner.log")
	f, _ := os.Create(log)
	cache := t.TempDir()
	cmd := exec.Command(binary, "runner", "--server", url, "--creds", credsFile, "--slots", "2", "--cache", cache, "--cache-size", "100KiB", "-v")
	cmd.Env, cmd.Stdout, cmd.Stderr = cleanEnv(), f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	dir := example(t, "aloha")
	campaign := func() {
		t.Helper()
		r := runSimswarm(t, dir, t.TempDir(), "run", "--server", url, "--creds", credsFile, "--json", "--", "./aloha", "-c", "Sleepy", "--repeat=2", "--sleep=0.01")
		if s := jsonSummary(t, r); r.code != 0 || s.Succeeded != 2 {
			b, _ := os.ReadFile(log)
			t.Fatalf("exit %d %+v\n%s\nrunner:\n%s", r.code, s, r.stderr, b)
		}
	}
	campaign()
	// A changed snapshot is a second tree; the two do not fit in 100 KiB.
	readme := filepath.Join(dir, "README.md")
	os.WriteFile(readme, append([]byte(readFile(t, readme)), []byte("\nchanged\n")...), 0o644)
	campaign()
	b, _ := os.ReadFile(log)
	if !strings.Contains(string(b), `msg="evicted tree"`) {
		t.Fatalf("no tree was evicted from a 100 KiB cache holding two trees:\n%s", b)
	}
	if n := len(files(t, filepath.Join(cache, "trees"), "*-*[^ekd]")); n != 1 {
		t.Fatalf("%d trees in the cache, want 1", n)
	}
}

// TestRunnerDiskFull: a runner that cannot materialise a run's tree (its
// disk is full) hands the job back, and another runner runs it.
func TestRunnerDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root (CI runs as root)")
	}
	full := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", full).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	defer exec.Command("umount", "-l", full).Run()
	url, credsFile := engineWithWorkers(t)
	startWorker(t, "runner", "--server", url, "--creds", credsFile, "--slots", "2", "--name", "fullhost", "--cache", full)
	time.Sleep(500 * time.Millisecond) // let the full runner take the first jobs
	startWorker(t, "runner", "--server", url, "--creds", credsFile, "--slots", "2", "--name", "goodhost", "--cache", t.TempDir())
	dir := example(t, "aloha")
	r := runSimswarm(t, dir, t.TempDir(), "run", "--server", url, "--creds", credsFile, "--json", "--", "./aloha", "-c", "Sleepy", "--repeat=6", "--sleep=0.1")
	s := jsonSummary(t, r)
	if r.code != 0 || s.Succeeded != 6 {
		t.Fatalf("exit %d %+v\n%s", r.code, s, r.stderr)
	}
	var h summaryHosts
	h.parse(t, r.stdout)
	if h.Hosts["fullhost"] != 0 || h.Hosts["goodhost"] != 6 {
		t.Fatalf("runs by host %v; the full host can run none", h.Hosts)
	}
}
