package runner

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/proc"
	"github.com/simswarm/simswarm/internal/safedir"
	"golang.org/x/sys/unix"
)

// consoleSink keeps a process's console output on disk. A write that fails
// (the disk is full) is remembered and the rest discarded: failing the
// write would close the process's pipe and kill it with SIGPIPE, which
// says nothing of the real cause.
type consoleSink struct {
	f   *os.File
	err error
}

func (s *consoleSink) Write(p []byte) (int, error) {
	if s.err == nil {
		_, s.err = s.f.Write(p)
	}
	return len(p), nil
}

// diskFull tells whether a process ended for want of space where it
// writes: its console output could not be kept, or it failed with the file
// system of its result directory (nearly) full or saying so.
func diskFull(console *consoleSink, res *proc.Result, resDir, where string) error {
	if console.err != nil && safedir.IsDiskFull(console.err) {
		return fmt.Errorf("keeping the console output in %s: %w", where, safedir.ErrDiskFull)
	}
	if !res.Failed() {
		return nil
	}
	var st unix.Statfs_t
	if unix.Statfs(resDir, &st) == nil && int64(st.Bavail)*int64(st.Bsize) < 64<<10 {
		return fmt.Errorf("writing results in %s: %w", where, safedir.ErrDiskFull)
	}
	if strings.Contains(string(res.Tail), "No space left on device") {
		return fmt.Errorf("writing results in %s: %w", where, safedir.ErrDiskFull)
	}
	return nil
}

// noSpace ends runs that found no space. Into a client's own results
// directory (embedded) they fail at once with the reason: no other runner
// would write elsewhere, and the same command runs them again once there
// is room. On a runner's own disk it is this host's fault: the jobs go
// back for another runner.
func (r *Runner) noSpace(ctx context.Context, jobs []*job, err error, started time.Time) {
	if !r.local(jobs[0]) {
		r.infraFault(ctx, jobs, err)
		return
	}
	r.Log.Warn("runner: disk full", "campaign", jobs[0].Campaign, "err", err)
	r.finishAll(ctx, jobs, &simswarm.RunRecord{State: simswarm.RunFailed, Reason: err.Error(), Started: started, Finished: time.Now()})
}

// sweepScratch removes the scratch directories of processes of a runner
// that was killed: their half-written results would stay forever.
func (r *Runner) sweepScratch() {
	d, err := safedir.Open(r.Dir)
	if err != nil {
		r.Log.Warn("runner: sweep scratch", "err", err)
		return
	}
	defer d.Close()
	if n, err := d.Sweep(); err != nil || n > 0 {
		r.Log.Info("runner: removed stale scratch directories", "count", n, "err", err)
	}
}

// writesInto is the directory people know that a job's files go through:
// the client's results directory, or this runner's cache.
func (r *Runner) writesInto(j *job) string {
	if r.local(j) {
		return j.Local
	}
	return r.Dir
}
