package main

// What the user sees is true: progress counts, elapsed time, exit statuses
// and state directories (issue 23, item 7).

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/testkit"
	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: the progress bar only draws on a
// terminal, so a test of what it shows needs one.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 160})
	return m, s
}

// runOnTerminal runs simswarm in dir with its stderr on a terminal and
// returns everything the terminal received.
func runOnTerminal(t *testing.T, dir, state string, args ...string) (string, int) {
	t.Helper()
	m, s := openPTY(t)
	defer m.Close()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SIMSWARM_STATE="+state)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, s
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var term bytes.Buffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			term.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(4 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("simswarm %v did not end", args)
	}
	<-read
	return term.String(), cmd.ProcessState.ExitCode()
}

// TestProgressTellsTheTruth: with -j 1 the bar never shows more runs
// running than the one slot, and a long run shows its time passing
// instead of a clock frozen at [0s:0s].
func TestProgressTellsTheTruth(t *testing.T) {
	dir := templateProject(t, `[build]
command = ""
[run]
command = "sleep {secs}; echo {run} > {resultdir}/out-{run}.csv"
[run.vars]
secs = [4, 0.3, 0.3, 0.3, 0.3, 0.3]
`, map[string]string{})
	state := t.TempDir()
	term, code := runOnTerminal(t, dir, state, "run", "-j", "1")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, term)
	}
	most := 0
	for _, m := range regexp.MustCompile(`(\d+) running`).FindAllStringSubmatch(term, -1) {
		n, _ := strconv.Atoi(m[1])
		most = max(most, n)
	}
	if most != 1 {
		t.Errorf("with -j 1 the bar showed at most %d running, want 1:\n%q", most, term)
	}
	// The first run takes 4 s and nothing finishes meanwhile: the bar's
	// clock must still move while it shows 0 done (two of 1 s, 2 s, 3 s
	// at least: a loaded machine may skip one), not jump from 0 s to the
	// first outcome.
	ticks := map[int]bool{}
	for _, m := range regexp.MustCompile(`\(0/6\) \[(\d+)s:`).FindAllStringSubmatch(term, -1) {
		if n, _ := strconv.Atoi(m[1]); n >= 1 && n <= 3 {
			ticks[n] = true
		}
	}
	if len(ticks) < 2 {
		t.Errorf("the bar's clock stood still during a 4 s run:\n%q", term)
	}
}

// TestStateMustExist: the commands that read an engine refuse a state
// directory that is not one, instead of making an empty engine there and
// showing nothing; an empty --state is a mistake, not the default.
func TestStateMustExist(t *testing.T) {
	work := t.TempDir()
	missing := filepath.Join(work, "stat")
	for _, args := range [][]string{
		{"status", "--state", missing},
		{"gc", "--dry-run", "--state", missing},
		{"logs", "build", "0123abcd", "--state", missing},
		{"results", "0123456789abcdef", "--state", missing},
	} {
		r := runSimswarm(t, work, t.TempDir(), args...)
		if r.code != 2 || !strings.Contains(r.stderr, "simswarm: state directory "+missing+" does not exist") {
			t.Errorf("%v: exit %d: %s", args, r.code, r.stderr)
		}
		if _, err := os.Stat(missing); err == nil {
			t.Fatalf("%v made the misspelled state directory", args)
		}
	}
	r := runSimswarm(t, work, t.TempDir(), "status", "--state", work)
	if r.code != 2 || !strings.Contains(r.stderr, "holds no simswarm engine") {
		t.Errorf("status on a directory without an engine: exit %d: %s", r.code, r.stderr)
	}
	for _, cmd := range []string{"status", "gc", "run", "results", "server"} {
		r := runSimswarm(t, work, t.TempDir(), cmd, "--state", "")
		first := strings.SplitN(strings.TrimSpace(r.stderr), "\n", 2)[0]
		if r.code != 2 || !strings.Contains(first, `invalid argument "" for "--state" flag: empty`) {
			t.Errorf("%s --state '': exit %d: %s", cmd, r.code, r.stderr)
		}
	}
}

// TestCrashDoesNotExitTwo: exit status 2 promises nothing was run, so a
// crash of simswarm in the middle of a campaign must not end with it. The
// Go runtime's own crash path (SIGQUIT dumps the goroutines and exits as
// an unrecovered panic does) is the one taken.
func TestCrashDoesNotExitTwo(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "started")
	dir := templateProject(t, `[build]
command = ""
[run]
command = "touch `+marker+`; sleep 30; echo {run} > {resultdir}/out-{run}.csv"
repeat = 2
`, map[string]string{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "run", "-j", "1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SIMSWARM_STATE="+t.TempDir(), "GOTRACEBACK=")
	var errb testkit.SyncBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, err := os.Stat(marker); err != nil; _, err = os.Stat(marker) {
		if ctx.Err() != nil {
			t.Fatalf("the run never started:\n%s", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGQUIT)
	_ = cmd.Wait()
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Exited() && ws.ExitStatus() == 2 {
		t.Fatalf("a crash mid-campaign exited 2 (\"nothing was run\")")
	}
	if !ws.Signaled() || ws.Signal() != syscall.SIGABRT {
		t.Fatalf("a crash ended with %v, want SIGABRT", cmd.ProcessState)
	}
}

// TestUntilUnknownScalarAfterRuns: --until naming a scalar no run records
// is found only after the first round executed: exit 1, not 2 ("nothing
// was run"), saying the runs were kept; the same command again, with
// every run done already, executes nothing and exits 2.
func TestUntilUnknownScalarAfterRuns(t *testing.T) {
	dir := untilTemplate(t)
	state := t.TempDir()
	args := []string{"run", "-j", "2", "--until", "nosuch ci95 < 5%", "--max-repetitions", "10"}
	for i, want := range []int{1, 2} {
		r := runSimswarm(t, dir, state, args...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		last := lines[len(lines)-1]
		if r.code != want || !strings.HasPrefix(last, "simswarm: ") || !strings.Contains(last, `no run records nosuch; the runs record v`) {
			t.Fatalf("attempt %d: exit %d (want %d), last line %q", i+1, r.code, want, last)
		}
		if executed := strings.Contains(last, "runs executed"); executed != (want == 1) {
			t.Errorf("attempt %d: the line %q should say whether runs executed", i+1, last)
		}
	}
}
