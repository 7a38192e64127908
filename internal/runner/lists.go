package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/omnetpp"
	"github.com/simswarm/simswarm/internal/proc"
)

// listTimeout bounds a run-list query: a program that hangs on -q must not
// hold the campaign forever.
const listTimeout = 5 * time.Minute

// serveLists answers run-list jobs: the run list is resolved where the built
// program is, so a client needs no simulator installed.
func (r *Runner) serveLists(ctx context.Context) {
	r.Eng.Serve(ctx, engine.Loop{Queue: engine.QueueList, Log: r.Log, Wait: func() time.Duration {
		if d := r.pause(); d > 0 {
			return d
		}
		if r.draining.Load() {
			return time.Second
		}
		return 0
	}}, lister{r})
}

// lister is the runner's answerer of run-list jobs.
type lister struct{ r *Runner }

func (ls lister) Handle(ctx context.Context, l *engine.Lease) {
	r := ls.r
	j, err := engine.Decode[simswarm.ListJob](l, simswarm.RoleRunner)
	if err != nil {
		r.Log.Error("runner: " + err.Error())
		return
	}
	out := simswarm.RunList{Key: j.Body.Key}
	if j.Refused != "" {
		out.Error = j.Refused
	} else if err := r.resolve(ctx, &j.Body, &out); err != nil {
		if ctx.Err() != nil {
			l.GiveBack()
			return
		}
		var infra *infraError
		if errors.As(err, &infra) && l.Retry(500*time.Millisecond) {
			// This host cannot prepare the tree; another runner may.
			r.Log.Warn("runner: cannot prepare run list", "err", err)
			r.fault()
			return
		}
		out.Error = err.Error()
	}
	out.At = time.Now()
	if err := l.Settle(ctx, engine.ListAnswer(&out)); err != nil {
		r.Log.Error("runner: " + err.Error())
	}
}

func (r *Runner) resolve(ctx context.Context, j *simswarm.ListJob, out *simswarm.RunList) error {
	dir, release, err := r.trees.get(ctx, j.Snapshot, j.Artifact, j.Layout)
	if err != nil {
		return &infraError{err}
	}
	defer release()
	r.healthy()
	wd := filepath.Join(dir, filepath.FromSlash(j.Workdir))
	argv := append([]string(nil), j.Command.Argv...)
	if !omnetpp.HasOption(argv, "-s") {
		argv = append(argv, "-s")
	}
	if j.Command.Filter != "" {
		argv = append(argv, "-r", j.Command.Filter)
	}
	prog := argv[0]
	env := commandEnv(dir, j.Command, argv)
	if err := checkProgram(wd, argv[0]); err != nil {
		return err
	}
	query := func(what string) ([]byte, error) {
		res, err := proc.Run(ctx, proc.Spec{Argv: append(append([]string(nil), argv...), "-q", what), Dir: wd, Env: env, Timeout: listTimeout, TailBytes: configBytes})
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", prog, err)
		}
		if res.Failed() {
			if why := omnetpp.LibraryProblem(res.Tail); why != "" {
				return nil, fmt.Errorf("%s cannot start on runner %s: %s", prog, r.Host, why)
			}
			if errs := omnetpp.ErrorLines(res.Tail, 1); len(errs) > 0 {
				return nil, fmt.Errorf("%s -q %s: %s", prog, what, errs[0])
			}
			return nil, fmt.Errorf("%s -q %s: %s: %s", prog, what, res.Describe(), lastLine(res.Tail))
		}
		return res.Tail, nil
	}
	// One process tells runs, variables and configurations where the
	// program answers -q runconfig (OMNeT++ 6); others get -q runnumbers
	// and -q runs, and their runs are known by number.
	if r.identify(ctx, j, out, query) {
		return nil
	}
	stdout, err := query("runnumbers")
	if err != nil {
		return err
	}
	if out.Runs, err = omnetpp.ParseRunNumbers(stdout); err != nil {
		return fmt.Errorf("%s -q runnumbers printed something else than run numbers: %w", prog, err)
	}
	// Iteration variables are a courtesy for --dry-run and the dashboard;
	// a program without -q runs still works.
	if b, err := query("runs"); err == nil {
		if infos, err := omnetpp.ParseRuns(b); err == nil {
			vars := map[int]string{}
			for _, in := range infos {
				vars[in.Number] = in.Vars
			}
			out.Vars = make([]string, len(out.Runs))
			for i, n := range out.Runs {
				out.Vars[i] = vars[n]
			}
		}
	}
	return nil
}

// configBytes bounds what a run-list query may print: -q runconfig of a
// big INET campaign is a few lines per entry per run.
const configBytes = 64 << 20

// identify reads the run list from -q runconfig: every run's number,
// variables and what decides its result, so that runs are known by what
// they compute. false where the program cannot tell (no such query, an
// error, a run without entries, too much output): the caller asks for run
// numbers instead, whose errors say what is wrong.
func (r *Runner) identify(ctx context.Context, j *simswarm.ListJob, out *simswarm.RunList, query func(string) ([]byte, error)) bool {
	b, err := query("runconfig")
	if err != nil || len(b) >= configBytes {
		return false
	}
	cfgs, err := omnetpp.ParseRunConfig(b)
	if err != nil || len(cfgs) == 0 {
		return false
	}
	runs, vars, idents := make([]int, len(cfgs)), make([]string, len(cfgs)), make([]string, len(cfgs))
	for i, c := range cfgs {
		if len(c.Entries) == 0 {
			return false
		}
		runs[i], vars[i], idents[i] = c.Number, c.Vars, c.Identity()
	}
	name := engine.RunConfigObject(j.Key)
	if err := r.Eng.PutBytes(ctx, name, b); err != nil {
		// Without it --dry-run cannot say why a run reruns; the runs
		// are still known by what they compute.
		r.Log.Warn("runner: store run configurations", "err", err)
	} else {
		out.Config = name
	}
	out.Runs, out.Vars, out.Idents = runs, vars, idents
	return true
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	if s == "" {
		return "no output"
	}
	return s
}

// checkProgram names a missing or unusable program plainly, before exec's
// error does it less clearly.
func checkProgram(wd, prog string) error {
	if !strings.Contains(prog, "/") {
		if _, err := exec.LookPath(prog); err != nil {
			return fmt.Errorf("program %s not found in PATH on runner", prog)
		}
		return nil
	}
	p := prog
	if !filepath.IsAbs(p) {
		p = filepath.Join(wd, p)
	}
	if err := proc.Executable(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("program %s not found in the project after its build", prog)
		}
		return fmt.Errorf("program %s %v", prog, err)
	}
	return nil
}

// infraError is a failure of this host, not of the job.
type infraError struct{ err error }

func (e *infraError) Error() string { return e.err.Error() }
func (e *infraError) Unwrap() error { return e.err }
