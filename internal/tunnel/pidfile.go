package tunnel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PIDPath is where the tunnel of cluster name records its process, in the
// temp dir as the reference tool did: it must not outlive a reboot.
func PIDPath(name string) string {
	return filepath.Join(os.TempDir(), "simswarm-tunnel-"+name+".pid")
}

// LogPath is where a background tunnel writes what it has to say.
func LogPath(name string) string {
	return filepath.Join(os.TempDir(), "simswarm-tunnel-"+name+".log")
}

// RunningError says a live tunnel holds the PID file.
type RunningError struct {
	Path string
	PID  int
}

func (e *RunningError) Error() string {
	return fmt.Sprintf("a tunnel is already running (pid %d, %s): simswarm aws disconnect stops it", e.PID, e.Path)
}

// The PID file holds "pid start-time": the start time (from /proc, where
// there is one) tells a live tunnel from an unrelated process that was
// given the same pid after the tunnel died.
func pidLine(pid int) string {
	return fmt.Sprintf("%d %s\n", pid, startTime(pid))
}

// startTime is the process's start time in clock ticks since boot, or ""
// where /proc cannot say.
func startTime(pid int) string {
	_, start := procStat(pid)
	return start
}

// procStat reads a process's state letter and start time from /proc; both
// are "" where there is no /proc.
func procStat(pid int) (state, start string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", ""
	}
	// The command name (field 2) may hold spaces and parentheses: count
	// fields after its closing parenthesis. State is field 3, start time
	// field 22.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", ""
	}
	return f[0], f[19]
}

func alive(pid int, start string) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	state, st := procStat(pid)
	if state == "Z" || state == "X" {
		return false // exited; its parent has not reaped it yet
	}
	if start != "" && st != "" && st != start {
		return false // the pid was reused
	}
	return true
}

// ReadPID reads a PID file: the pid and whether that process still runs.
// A missing file is fs.ErrNotExist.
func ReadPID(path string) (pid int, running bool, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false, nil
	}
	pid, err = strconv.Atoi(f[0])
	if err != nil {
		return 0, false, nil // garbage: as good as stale
	}
	start := ""
	if len(f) > 1 {
		start = f[1]
	}
	return pid, alive(pid, start), nil
}

// WritePID records this process in path. A file left by a process that is
// gone (stale) is replaced; one whose process runs is a *RunningError.
func WritePID(path string) error {
	for range 3 {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			_, err = f.WriteString(pidLine(os.Getpid()))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(path)
				return fmt.Errorf("writing PID file %s: %w", path, err)
			}
			return nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("creating PID file %s: %w", path, err)
		}
		pid, running, rerr := ReadPID(path)
		if rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return fmt.Errorf("reading PID file %s: %w", path, rerr)
		}
		if running && pid != os.Getpid() {
			return &RunningError{Path: path, PID: pid}
		}
		// Stale (or ours from before): replace it.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing stale PID file %s: %w", path, err)
		}
	}
	return fmt.Errorf("creating PID file %s: another process keeps creating it", path)
}

// RemovePID removes path if it still names this process.
func RemovePID(path string) {
	if pid, _, err := ReadPID(path); err == nil && pid == os.Getpid() {
		os.Remove(path)
	}
}

// Stop ends the tunnel recorded in path: TERM, then KILL if it has not gone
// after timeout. It reports the pid and whether the file was stale (its
// process already gone), and fs.ErrNotExist when there is no PID file.
func Stop(path string, timeout time.Duration) (pid int, stale bool, err error) {
	pid, running, err := ReadPID(path)
	if err != nil {
		return 0, false, err
	}
	if !running {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return pid, true, fmt.Errorf("removing stale PID file %s: %w", path, err)
		}
		return pid, true, nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return pid, false, fmt.Errorf("stopping tunnel (pid %d): %w", pid, err)
	}
	start := startTime(pid)
	deadline := time.Now().Add(timeout)
	for alive(pid, start) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid, start) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	// The tunnel removes its own file on TERM; a killed one cannot.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return pid, false, fmt.Errorf("removing PID file %s: %w", path, err)
	}
	return pid, false, nil
}
