package proc

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

// runBounded runs s but fails the test instead of hanging when Run does not
// return in time (a kill that misses a grandchild holding the output pipe
// would otherwise block the test for as long as the grandchild lives).
func runBounded(t *testing.T, ctx context.Context, s Spec, limit time.Duration) *Result {
	t.Helper()
	type out struct {
		res *Result
		err error
	}
	ch := make(chan out, 1)
	go func() {
		res, err := Run(ctx, s)
		ch <- out{res, err}
	}()
	select {
	case o := <-ch:
		if o.err != nil {
			t.Fatalf("Run: %v", o.err)
		}
		return o.res
	case <-time.After(limit):
		t.Fatalf("Run did not return within %v", limit)
		return nil
	}
}

func TestExitStatus(t *testing.T) {
	for _, code := range []int{0, 1, 3, 255} {
		res := runBounded(t, context.Background(), Spec{Argv: sh("exit " + strconv.Itoa(code))}, 10*time.Second)
		if res.Exit != code || res.Signal != "" || res.TimedOut {
			t.Errorf("exit %d: got %+v", code, res)
		}
		if res.Failed() != (code != 0) {
			t.Errorf("exit %d: Failed() = %v", code, res.Failed())
		}
		if want := "exit status " + strconv.Itoa(code); res.Describe() != want {
			t.Errorf("Describe = %q, want %q", res.Describe(), want)
		}
	}
}

// TestSignal: a child that kills itself is reported by signal name, as a
// crashing simulation is.
func TestSignal(t *testing.T) {
	for _, sig := range []string{"SEGV", "ABRT"} {
		// ulimit -c 0: no core file in the test's directory.
		res := runBounded(t, context.Background(), Spec{Argv: sh("ulimit -c 0; kill -" + sig + " $$"), Dir: t.TempDir()}, 10*time.Second)
		if res.Exit != -1 || res.Signal != "SIG"+sig || !res.Failed() || res.TimedOut {
			t.Errorf("kill -%s: got %+v", sig, res)
		}
		if res.Describe() != "killed by SIG"+sig {
			t.Errorf("Describe = %q", res.Describe())
		}
	}
	// A signal without a name in the table still says which it was.
	res := runBounded(t, context.Background(), Spec{Argv: sh("kill -USR1 $$")}, 10*time.Second)
	if want := "signal " + strconv.Itoa(int(syscall.SIGUSR1)); res.Signal != want {
		t.Errorf("SIGUSR1 reported as %q, want %q", res.Signal, want)
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := Run(context.Background(), Spec{}); err == nil {
		t.Error("empty argv: no error")
	}
	if _, err := Run(context.Background(), Spec{Argv: []string{filepath.Join(t.TempDir(), "nope")}}); err == nil {
		t.Error("missing program: no error")
	}
	if _, err := Run(context.Background(), Spec{Argv: sh("true"), Dir: filepath.Join(t.TempDir(), "nope")}); err == nil {
		t.Error("missing directory: no error")
	}
}

func TestDirAndEnv(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	res := runBounded(t, context.Background(), Spec{Argv: sh(`printf '%s %s' "$(pwd -P)" "$X"`), Dir: dir, Env: []string{"X=42"}}, 10*time.Second)
	if got, want := string(res.Tail), dir+" 42"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

// alive reports whether a process exists (kill -0) and is not a zombie:
// an orphan that was killed stays a zombie until whoever adopted it (here,
// possibly a slow init) reaps it, but it no longer runs.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !os.IsNotExist(err) // no /proc: trust kill -0
	}
	// "pid (comm) S ...": the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// pidFile names the file a test's shell writes its grandchild's pid to.
// The test started that process, so it makes sure, even when it fails
// early, that the process does not outlive it.
func pidFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "pid")
	t.Cleanup(func() {
		if b, err := os.ReadFile(p); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return p
}

// readPid reads the grandchild's pid; the shell writes it before anything
// else, so it must be there once Run returns.
func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		t.Fatalf("pid file holds %q", b)
	}
	return pid
}

// gone polls until pid no longer exists, up to limit.
func gone(pid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return !alive(pid)
}

// TestTimeoutKillsGroup: the timeout must reach the background grandchild
// too, not just the shell, or a simulation's helper keeps running (and
// holds the output pipe).
func TestTimeoutKillsGroup(t *testing.T) {
	t.Parallel() // waits on kills and pipes; overlapping keeps the package fast
	pidFile := pidFile(t)
	start := time.Now()
	res := runBounded(t, context.Background(), Spec{
		Argv:    sh(`sleep 100 & echo $! > "$0"; wait`),
		Timeout: 300 * time.Millisecond,
	}.withArg0(pidFile), 10*time.Second)
	if !res.TimedOut || !res.Failed() || !strings.HasPrefix(res.Describe(), "timed out after") {
		t.Errorf("got %+v (%s), want a timeout", res, res.Describe())
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Errorf("returned after %v, before the timeout", el)
	}
	if pid := readPid(t, pidFile); !gone(pid, 3*time.Second) {
		t.Errorf("grandchild %d still alive 3 s after the timeout", pid)
	}
}

// TestTimeoutKillsStubbornGrandchild: a grandchild that ignores SIGTERM
// gets SIGKILL two seconds later.
func TestTimeoutKillsStubbornGrandchild(t *testing.T) {
	t.Parallel() // waits on kills and pipes; overlapping keeps the package fast
	pidFile := pidFile(t)
	res := runBounded(t, context.Background(), Spec{
		Argv:    sh(`(trap '' TERM; exec sleep 100) & echo $! > "$0"; wait`),
		Timeout: 200 * time.Millisecond,
	}.withArg0(pidFile), 10*time.Second)
	if !res.TimedOut {
		t.Errorf("got %+v, want a timeout", res)
	}
	if pid := readPid(t, pidFile); !gone(pid, 4*time.Second) {
		t.Errorf("TERM-ignoring grandchild %d still alive 4 s after the timeout", pid)
	}
}

// TestExitedParentKillsGrandchild: a process that exits and leaves a
// grandchild behind (holding its output) must not keep Run waiting for the
// grandchild, nor leave it running; and it did not time out.
func TestExitedParentKillsGrandchild(t *testing.T) {
	t.Parallel() // waits on kills and pipes; overlapping keeps the package fast
	pidFile := pidFile(t)
	start := time.Now()
	res := runBounded(t, context.Background(), Spec{
		Argv: sh(`sleep 100 & echo $! > "$0"; echo parent done`),
	}.withArg0(pidFile), 10*time.Second)
	if res.Failed() || res.TimedOut {
		t.Errorf("got %+v, want a clean exit", res)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Run took %v waiting for the grandchild", el)
	}
	if !bytes.Contains(res.Tail, []byte("parent done")) {
		t.Errorf("tail %q lost the parent's output", res.Tail)
	}
	if pid := readPid(t, pidFile); !gone(pid, 3*time.Second) {
		t.Errorf("grandchild %d outlived Run", pid)
	}
}

// withArg0 passes the pid file to the script as $0, so the path needs no
// quoting inside the script.
func (s Spec) withArg0(arg string) Spec {
	s.Argv = append(s.Argv, arg)
	return s
}

// TestCancelKills: cancelling the context ends the process group, and it
// is not reported as a timeout.
func TestCancelKills(t *testing.T) {
	t.Parallel() // waits on kills and pipes; overlapping keeps the package fast
	pidFile := pidFile(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	defer cancel()
	res := runBounded(t, ctx, Spec{Argv: sh(`sleep 100 & echo $! > "$0"; wait`)}.withArg0(pidFile), 10*time.Second)
	if res.TimedOut || res.Signal != "SIGTERM" || !res.Failed() || !res.Interrupted {
		t.Errorf("got %+v, want interrupted, killed by SIGTERM and not timed out", res)
	}
	if pid := readPid(t, pidFile); !gone(pid, 3*time.Second) {
		t.Errorf("grandchild %d still alive after cancel", pid)
	}
}

// TestCancelAfterTheEnd: a cancel that comes after the process exited, while
// Run still reads the output a leftover child holds open, leaves the
// process's own result: exit 0, not interrupted.
func TestCancelAfterTheEnd(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	defer cancel()
	res := runBounded(t, ctx, Spec{Argv: sh(`(sleep 100 &); exit 0`)}, 10*time.Second)
	if res.Failed() || res.Interrupted {
		t.Errorf("got %+v (%s), want exit 0, not interrupted", res, res.Describe())
	}
}

// TestTailOfLargeOutput: a process writes 50 MB of random bytes; Result.Tail
// must be exactly the last TailBytes of what it wrote (compared with the
// complete copy teed to Output).
func TestTailOfLargeOutput(t *testing.T) {
	t.Parallel() // waits on kills and pipes; overlapping keeps the package fast
	const size = 50 << 20
	const keep = 1000 // not a power of two, not a divisor of any pipe chunk
	outPath := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	res := runBounded(t, context.Background(), Spec{
		Argv:      sh("head -c " + strconv.Itoa(size) + " /dev/urandom; echo; echo the-end"),
		Output:    f,
		TailBytes: keep,
	}, 30*time.Second)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	all, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != size+len("\nthe-end\n") {
		t.Fatalf("output file has %d bytes", len(all))
	}
	if !bytes.Equal(res.Tail, all[len(all)-keep:]) {
		t.Errorf("tail (%d bytes, ends %q) is not the last %d bytes of the output", len(res.Tail), res.Tail[max(0, len(res.Tail)-20):], keep)
	}
}

// TestTailBounded writes through Tail directly in chunk sizes below, at and
// above the limit and checks contents, total and that memory stays bounded.
func TestTailBounded(t *testing.T) {
	const keep = 100
	tl := NewTail(keep)
	var all []byte
	sizes := []int{1, 7, 99, 100, 101, 250, 3, 0, 64, 1000, 5}
	for round := 0; round < 50; round++ {
		for i, n := range sizes {
			p := bytes.Repeat([]byte{byte('a' + (round+i)%26)}, n)
			if n > 0 {
				p[n-1] = byte('0' + i%10)
			}
			if w, err := tl.Write(p); w != n || err != nil {
				t.Fatalf("Write = %d, %v", w, err)
			}
			all = append(all, p...)
			want := all[max(0, len(all)-keep):]
			if got := tl.Bytes(); !bytes.Equal(got, want) {
				t.Fatalf("after %d bytes: tail %q, want %q", len(all), got, want)
			}
			if cap(tl.buf) > 4*keep {
				t.Fatalf("tail buffer grew to %d bytes for a %d-byte tail", cap(tl.buf), keep)
			}
		}
	}
	if tl.Total() != int64(len(all)) {
		t.Errorf("Total = %d, want %d", tl.Total(), len(all))
	}
	// Bytes is a copy: the caller may keep it while writing goes on.
	b := tl.Bytes()
	b[0] = '!'
	if tl.Bytes()[0] == '!' {
		t.Error("Bytes shares memory with the tail")
	}
	if NewTail(0).max != 64<<10 {
		t.Error("default tail is not 64 KiB")
	}
}

// TestOnLine: lines arrive whole however the writes split them, stderr
// included; a partial last line is not a line.
func TestOnLine(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	res := runBounded(t, context.Background(), Spec{
		Argv: sh(`printf 'one\ntw'; sleep 0.05; printf 'o\n\nthree\n' >&2; printf 'partial'`),
		OnLine: func(l []byte) {
			mu.Lock()
			lines = append(lines, string(l))
			mu.Unlock()
		},
	}, 10*time.Second)
	if res.Failed() {
		t.Fatalf("%+v", res)
	}
	mu.Lock()
	defer mu.Unlock()
	if got, want := strings.Join(lines, "|"), "one|two||three"; got != want {
		t.Errorf("lines %q, want %q", got, want)
	}
}

// TestLineSplitterCuts: lines longer than the limit are cut to it, whether
// the newline comes in the same write or a later one.
func TestLineSplitterCuts(t *testing.T) {
	var got []string
	l := &lineSplitter{max: 8, fn: func(b []byte) { got = append(got, string(b)) }}
	writes := []string{"short\n", "0123456789abcdef\n", "01234", "56789abcdef\nx\n", "0123", "4", "56789\n"}
	for _, w := range writes {
		if n, err := l.Write([]byte(w)); n != len(w) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	want := []string{"short", "01234567", "01234567", "x", "01234567"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", got, want)
	}
}

func TestExecutable(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "sim")
	plain := filepath.Join(dir, "data")
	for p, mode := range map[string]os.FileMode{exe: 0o755, plain: 0o644} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := Executable(exe); err != nil {
		t.Errorf("executable file: %v", err)
	}
	if err := Executable(plain); err == nil || !strings.Contains(err.Error(), "not executable") {
		t.Errorf("plain file: %v", err)
	}
	if err := Executable(dir); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("directory: %v", err)
	}
	if err := Executable(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	// A symlink to an executable is fine (Stat follows it).
	link := filepath.Join(dir, "link")
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	if err := Executable(link); err != nil {
		t.Errorf("symlink to executable: %v", err)
	}
}
