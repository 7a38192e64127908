package tunnel

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// readyEnv names the file descriptor on which a background child reports
// how its start went: "ok" or "error: <message>", then closes it.
const readyEnv = "SIMSWARM_TUNNEL_READY_FD"

// StartBackground starts exe with args as a detached process (a new
// session, no terminal, stdin from /dev/null, output appended to logPath)
// and waits until it reports readiness through Ready. The child's error,
// if it fails to start, is returned as it worded it.
func StartBackground(exe string, args []string, logPath string, timeout time.Duration) (int, error) {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("opening tunnel log %s: %w", logPath, err)
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("creating a pipe for the tunnel's start: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(exe, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.ExtraFiles = []*os.File{w} // fd 3 in the child
	cmd.Env = append(os.Environ(), readyEnv+"=3")
	// A new session: the tunnel outlives this command and the terminal,
	// and Ctrl-C in the shell does not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return 0, fmt.Errorf("starting the background tunnel: %w", err)
	}
	w.Close()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()

	msg := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(r, 64<<10))
		msg <- strings.TrimSpace(string(b))
	}()
	select {
	case m := <-msg:
		switch {
		case m == "ok":
			return cmd.Process.Pid, nil
		case strings.HasPrefix(m, "error: "):
			<-waitOrTimeout(exited, 2*time.Second)
			return 0, errors.New(strings.TrimPrefix(m, "error: "))
		default:
			<-waitOrTimeout(exited, 2*time.Second)
			return 0, fmt.Errorf("the background tunnel exited without starting; its log %s ends:\n%s", logPath, tail(logPath, 10))
		}
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		return 0, fmt.Errorf("the background tunnel did not come up within %s; its log %s ends:\n%s", timeout, logPath, tail(logPath, 10))
	}
}

func waitOrTimeout(ch <-chan struct{}, d time.Duration) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		select {
		case <-ch:
		case <-time.After(d):
		}
		close(out)
	}()
	return out
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	l := strings.Split(strings.TrimRight(string(bytes.TrimSpace(b)), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// Ready tells the parent that started this process with StartBackground
// how the start went (nil: up). Nothing happens in a process started
// otherwise. Only the first call counts.
func Ready(err error) {
	fdStr := os.Getenv(readyEnv)
	if fdStr == "" {
		return
	}
	os.Unsetenv(readyEnv)
	fd, convErr := strconv.Atoi(fdStr)
	if convErr != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "ready")
	if f == nil {
		return
	}
	defer f.Close()
	if err == nil {
		fmt.Fprintln(f, "ok")
		return
	}
	// One line: the parent prints it as the command's error.
	fmt.Fprintln(f, "error: "+strings.ReplaceAll(err.Error(), "\n", " "))
}
