// Package proc starts the processes simswarm supervises (simulations and
// builds): in their own process group so that a kill reaches their children,
// with a wall-clock limit, and with their output teed to a file while only a
// bounded tail stays in memory.
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
)

// Spec describes a process to run.
type Spec struct {
	Argv    []string
	Dir     string
	Env     []string // nil: inherit
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
	Wall     time.Duration
	CPU      time.Duration // user + system of the process and its waited-for children
	Tail     []byte        // last TailBytes of stdout+stderr, interleaved as written
	Started  time.Time
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

// Run starts the process and waits for it. Cancelling ctx kills the whole
// process group. An error means the process could not start at all.
func Run(ctx context.Context, s Spec) (*Result, error) {
	if len(s.Argv) == 0 {
		return nil, errors.New("empty command")
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
	cmd := exec.Command(s.Argv[0], s.Argv[1:]...)
	cmd.Dir = s.Dir
	cmd.Env = s.Env
	cmd.Stdout = sw
	cmd.Stderr = sw
	// Own process group, so a kill reaches the program's children; and
	// death with simswarm, so a killed runner leaves no orphans running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Wait also waits for the output pipe to close, which a grandchild that
	// outlived the process would hold open for as long as it lives: stop
	// waiting for it after orphanGrace, so the group can be killed below.
	cmd.WaitDelay = orphanGrace
	res := &Result{Started: time.Now()}
	// Pdeathsig follows the thread that started the child, not the process:
	// keep this goroutine on that thread until the child is reaped.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	var timedOut bool
	var mu sync.Mutex
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
		case <-timer:
			mu.Lock()
			timedOut = true
			mu.Unlock()
		}
		killGroup(cmd.Process.Pid)
	}()
	err := cmd.Wait()
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
		return nil, err
	}
	mu.Lock()
	res.TimedOut = timedOut
	mu.Unlock()
	// A child that inherited the output and outlived its parent must not
	// keep running unsupervised.
	killGroup(cmd.Process.Pid)
	return res, nil
}

// orphanGrace is how long Run keeps reading the output of children left
// behind by a process that has exited, before it kills them.
const orphanGrace = time.Second

// killGroup ends a process group: TERM first so simulations can flush, then
// KILL for those that do not listen.
func killGroup(pid int) {
	if syscall.Kill(-pid, syscall.SIGTERM) != nil {
		return
	}
	go func() {
		time.Sleep(2 * time.Second)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}()
}

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
