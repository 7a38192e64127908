package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// oneErrorLine checks a refusal: exit status 2 and one line naming what is
// wrong.
func oneErrorLine(t *testing.T, r result, want ...string) {
	t.Helper()
	line := strings.TrimSpace(r.stderr)
	if r.code != 2 || strings.Contains(line, "\n") || !strings.HasPrefix(line, "simswarm: ") {
		t.Fatalf("exit %d, want 2 and one error line:\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Fatalf("error %q does not say %q", line, w)
		}
	}
}

// TestServerLeaseAndPort: a lease of zero or below the floor, and a busy
// port, are refused at once with one line, before anything is stored.
func TestServerLeaseAndPort(t *testing.T) {
	for _, lease := range []string{"0s", "500ms", "-3s"} {
		t.Run("lease "+lease, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			r := runSimswarm(t, t.TempDir(), t.TempDir(), "server", "--listen", freeAddr(t), "--state", state, "--lease", lease)
			oneErrorLine(t, r, "invalid --lease "+lease, "at least 1s")
			if _, err := os.Stat(state); !os.IsNotExist(err) {
				t.Fatalf("a refused server made its state dir (%v)", err)
			}
		})
	}
	t.Run("busy port", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		start := time.Now()
		r := runSimswarm(t, t.TempDir(), t.TempDir(), "server", "--listen", ln.Addr().String(), "--state", t.TempDir())
		took := time.Since(start)
		oneErrorLine(t, r, "cannot listen on "+ln.Addr().String(), "address already in use")
		if took > 5*time.Second {
			t.Fatalf("the busy port was reported after %s; want at once", took.Round(time.Millisecond))
		}
	})
}

// corrupt overwrites a consumer's state file of a state directory's
// engine with garbage, as a crash or a bad disk may leave it.
func corrupt(t *testing.T, engineDir, consumer string) string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(engineDir, "jetstream", "jetstream", "*", "streams", "SIMSWARM_JOBS", "obs", consumer))
	if len(dirs) != 1 {
		t.Fatalf("consumer %s: found %v in %s", consumer, dirs, engineDir)
	}
	if err := os.WriteFile(filepath.Join(dirs[0], "o.dat"), []byte("\x17garbage, not a consumer state\x00\x01"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dirs[0]
}

// TestCorruptConsumerEmbedded: a corrupt consumer file in the embedded
// engine's state is named with the way to recover; recovering loses no
// stored result.
func TestCorruptConsumerEmbedded(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "simswarm.toml"), "[build]\ncommand = \"\"\n\n[run]\ncommand = \"echo r{run} > {resultdir}/r-{run}.txt\"\nrepeat = 3\n")
	state := t.TempDir()
	if r := runSimswarm(t, dir, state, "run", "-q"); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	bad := corrupt(t, filepath.Join(state, "engine"), "runners")
	r := runSimswarm(t, dir, state, "run", "-q")
	oneErrorLine(t, r, bad, "corrupt", "remove that directory")
	if err := os.RemoveAll(bad); err != nil {
		t.Fatal(err)
	}
	r = runSimswarm(t, dir, state, "run", "-q", "--json")
	if s := jsonSummary(t, r); r.code != 0 || s.Cached != 3 || s.Executed != 0 {
		t.Fatalf("after recovering: exit %d %+v\n%s", r.code, s, r.stderr)
	}
}

// TestCorruptConsumerServer: a server whose runners' consumer file is
// corrupt says which file and how to recover, at once; after recovering,
// the jobs that were queued are still there and run.
func TestCorruptConsumerServer(t *testing.T) {
	state := t.TempDir()
	addr := freeAddr(t)
	url := "nats://" + addr
	credsFile := filepath.Join(state, "client.creds")
	work := t.TempDir()
	start := func(args ...string) *exec.Cmd {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Env = cleanEnv()
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		log, err := os.Create(filepath.Join(work, args[0]+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait(); log.Close() })
		return cmd
	}
	waitFile := func(path, what string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(readFileOr(path), what) {
			if time.Now().After(deadline) {
				t.Fatalf("%s does not say %q within a minute:\n%s", path, what, readFileOr(path))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	srv := start("server", "--listen", addr, "--state", state)
	waitFile(filepath.Join(work, "server.log"), "listening")
	start("builder", "--server", url, "--creds", credsFile, "--dir", filepath.Join(work, "ws"), "--ccache-dir", "off")
	dir := t.TempDir()
	write(t, filepath.Join(dir, "simswarm.toml"), "[build]\ncommand = \"\"\n\n[run]\ncommand = \"echo r{run} > {resultdir}/r-{run}.txt\"\nrepeat = 4\n")
	r := runSimswarm(t, dir, t.TempDir(), "run", "--server", url, "--creds", credsFile, "--detach")
	m := regexp.MustCompile(`simswarm attach ([0-9a-f]{16})`).FindStringSubmatch(r.stderr + r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("detach: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	_ = srv.Process.Signal(syscall.SIGTERM)
	_ = srv.Wait()
	bad := corrupt(t, state, "runners")
	began := time.Now()
	r = runSimswarm(t, t.TempDir(), t.TempDir(), "server", "--listen", addr, "--state", state)
	oneErrorLine(t, r, bad, "corrupt", "remove that directory")
	if took := time.Since(began); took > 15*time.Second {
		t.Errorf("the corrupt file was reported after %s; want at once", took.Round(time.Millisecond))
	}
	if err := os.RemoveAll(bad); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(work, "server.log"))
	start("server", "--listen", addr, "--state", state)
	waitFile(filepath.Join(work, "server.log"), "listening")
	st := runSimswarm(t, dir, t.TempDir(), "status", "--server", url, "--creds", credsFile, "--json")
	if !regexp.MustCompile(`"name": "run",\s*"waiting": 4`).MatchString(st.stdout) {
		t.Fatalf("the 4 queued jobs are not in the queue after recovering:\n%s%s", st.stdout, st.stderr)
	}
	start("runner", "--server", url, "--creds", credsFile, "--slots", "2", "--cache", filepath.Join(work, "cache"))
	r = runSimswarm(t, dir, t.TempDir(), "attach", "--server", url, "--creds", credsFile, "--json", m[1])
	if s := jsonSummary(t, r); r.code != 0 || s.Succeeded != 4 || s.Executed+s.Cached != 4 {
		t.Fatalf("the queued jobs after recovering: exit %d %+v\n%s", r.code, s, r.stderr)
	}
	if n := len(files(t, filepath.Join(dir, "results"), "r-*.txt")); n != 4 {
		t.Fatalf("%d result files, want 4", n)
	}
}

func readFileOr(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
