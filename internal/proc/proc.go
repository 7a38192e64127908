// Package proc starts the processes simswarm supervises (simulations,
// builds, distccd): each as a process tree that ends with it and with
// simswarm (tree.go), in a filtered environment, with a wall-clock limit,
// and with its output teed to a file while only a bounded tail stays in
// memory.
package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Spec describes a process to run.
type Spec struct {
	Argv    []string
	Dir     string
	Env     []string // nil: Environ() (this process's, filtered)
	Output  io.Writer
	Timeout time.Duration // 0: none
	// TailBytes bounds the output kept in memory (default 64 KiB).
	TailBytes int
	// OnLine, when set, sees each complete output line (for progress);
	// lines longer than the tail are cut.
	OnLine func(line []byte)
}

// Result is how a process ended.
type Result struct {
	Exit     int    // exit status; -1 when killed by a signal
	Signal   string // e.g. "SIGSEGV" when a signal ended it
	TimedOut bool
	// Interrupted says that ctx ended while the process still ran, so Run
	// told it to end; a process that had exited by then, whatever ctx did
	// afterwards, ended on its own.
	Interrupted bool
	Wall        time.Duration
	CPU         time.Duration // user + system of the process and its waited-for children
	Tail        []byte        // last TailBytes of stdout+stderr, interleaved as written
	Started     time.Time
}

// Failed reports whether the process did not exit 0 on its own.
func (r *Result) Failed() bool { return r.Exit != 0 || r.Signal != "" || r.TimedOut }

// Describe says how the process ended, for people.
func (r *Result) Describe() string {
	switch {
	case r.TimedOut:
		return "timed out after " + r.Wall.Round(time.Millisecond).String()
	case r.Signal != "":
		return "killed by " + r.Signal
	default:
		return fmt.Sprintf("exit status %d", r.Exit)
	}
}

// Run starts the process and waits for it. The process and every process it
// starts form one tree (see tree.go) that Run ends before it returns:
// cancelling ctx or the timeout ends it at once, and whatever is left when
// the first process exits is ended then. An error means the process could
// not start at all.
func Run(ctx context.Context, s Spec) (*Result, error) {
	if len(s.Argv) == 0 {
		return nil, errors.New("empty command")
	}
	Setup(nil)
	t, err := sup.newTree()
	if err != nil {
		return nil, fmt.Errorf("process tree: %w", err)
	}
	tail := NewTail(s.TailBytes)
	var w io.Writer = tail
	if s.OnLine != nil {
		w = io.MultiWriter(w, &lineSplitter{fn: s.OnLine, max: tail.max})
	}
	if s.Output != nil {
		w = io.MultiWriter(s.Output, w)
	}
	sw := &syncWriter{w: w}
	env := s.Env
	if env == nil {
		env = Environ()
	}
	cmd := exec.Command(s.Argv[0], s.Argv[1:]...)
	cmd.Dir = s.Dir
	cmd.Env = append(env, t.marker)
	cmd.Stdout = sw
	cmd.Stderr = sw
	// Own process group, so that a terminal's signals do not reach it; death
	// with simswarm for the first process (its tree is the reaper's).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if t.fd >= 0 {
		// Born in its cgroup: not even a fork right after exec escapes.
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, t.fd
	}
	// Wait also waits for the output pipe to close, which a grandchild that
	// outlived the process would hold open for as long as it lives: stop
	// waiting for it after orphanGrace, so the tree can be ended below.
	cmd.WaitDelay = orphanGrace
	res := &Result{Started: time.Now()}
	// Pdeathsig follows the thread that started the child, not the process:
	// keep this goroutine on that thread until the child is reaped.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		t.close()
		return nil, err
	}
	done := make(chan struct{})
	var (
		timedOut, interrupted bool
		termAt                time.Time // when the tree was told to end, if it was
		mu                    sync.Mutex
	)
	go func() {
		var timer <-chan time.Time
		if s.Timeout > 0 {
			t := time.NewTimer(s.Timeout)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-done:
			return
		case <-ctx.Done():
			if exited(cmd.Process.Pid) {
				// Ended on its own; Wait is still collecting it.
				return
			}
			mu.Lock()
			interrupted = true
			mu.Unlock()
		case <-timer:
			mu.Lock()
			timedOut = true
			mu.Unlock()
		}
		mu.Lock()
		termAt = time.Now()
		mu.Unlock()
		// TERM first so simulations can flush, then KILL for those that
		// do not listen.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		t.signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(killGrace):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.kill()
		}
	}()
	err = cmd.Wait()
	close(done)
	res.Wall = time.Since(res.Started)
	res.Tail = tail.Bytes()
	if ps := cmd.ProcessState; ps != nil {
		res.CPU = ps.UserTime() + ps.SystemTime()
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.Exit = -1
			res.Signal = signalName(ws.Signal())
		} else {
			res.Exit = ps.ExitCode()
		}
	} else if err != nil {
		t.end(killGrace)
		return nil, err
	}
	mu.Lock()
	res.TimedOut, res.Interrupted = timedOut, interrupted
	grace := killGrace
	if !termAt.IsZero() {
		grace = max(0, killGrace-time.Since(termAt)) // already told to end
	}
	mu.Unlock()
	// A descendant that outlived the process must not keep running
	// unsupervised, setsid or not.
	t.end(grace)
	return res, nil
}

// exited says whether the child pid has ended, without reaping it: a
// zombie waiting for Wait, or reaped by it already.
func exited(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	// Linux zeroes info when no child is waitable; SIGCHLD when one is.
	return err != nil || info.Signo != 0
}

// orphanGrace is how long Run keeps reading the output of children left
// behind by a process that has exited, before it kills them.
const orphanGrace = time.Second

// killGrace is how long a process tree has between TERM and KILL.
const killGrace = 2 * time.Second

func signalName(s syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGSEGV: "SIGSEGV", syscall.SIGABRT: "SIGABRT", syscall.SIGKILL: "SIGKILL",
		syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT", syscall.SIGBUS: "SIGBUS",
		syscall.SIGFPE: "SIGFPE", syscall.SIGILL: "SIGILL", syscall.SIGPIPE: "SIGPIPE",
		syscall.SIGXCPU: "SIGXCPU", syscall.SIGHUP: "SIGHUP",
	}
	if n, ok := names[s]; ok {
		return n
	}
	return fmt.Sprintf("signal %d", int(s))
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// Tail keeps the last max bytes written to it.
type Tail struct {
	max   int
	buf   []byte
	total int64
}

// NewTail returns a Tail of max bytes (64 KiB when max <= 0).
func NewTail(max int) *Tail {
	if max <= 0 {
		max = 64 << 10
	}
	return &Tail{max: max}
}

func (t *Tail) Write(p []byte) (int, error) {
	n := len(p)
	t.total += int64(n)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// Bytes is the kept tail.
func (t *Tail) Bytes() []byte { return append([]byte(nil), t.buf...) }

// Total is how many bytes were written in all.
func (t *Tail) Total() int64 { return t.total }

type lineSplitter struct {
	fn  func([]byte)
	max int
	buf []byte
}

func (l *lineSplitter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := indexByte(p, '\n')
		if i < 0 {
			if len(l.buf) < l.max {
				room := l.max - len(l.buf)
				if room > len(p) {
					room = len(p)
				}
				l.buf = append(l.buf, p[:room]...)
			}
			break
		}
		if room := l.max - len(l.buf); room > 0 {
			l.buf = append(l.buf, p[:min(i, room)]...)
		}
		l.fn(l.buf)
		l.buf = l.buf[:0]
		p = p[i+1:]
	}
	return n, nil
}

func indexByte(p []byte, c byte) int {
	for i, b := range p {
		if b == c {
			return i
		}
	}
	return -1
}

// Executable checks that path names a file that can be run, for a clear
// error before anything is submitted.
func Executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	if fi.Mode()&0o111 == 0 {
		return errors.New("is not executable")
	}
	return nil
}
