package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/simswarm/simswarm/internal/build"
	"github.com/simswarm/simswarm/internal/campaign"
	"github.com/simswarm/simswarm/internal/creds"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/project"
	"github.com/simswarm/simswarm/internal/runner"
	"github.com/simswarm/simswarm/internal/slurm"
	"github.com/spf13/pflag"
)

// slurmFlags are run --slurm and the flags that override simswarm.toml's
// [slurm] table.
type slurmFlags struct {
	on   bool
	flag slurm.Settings
	fs   *pflag.FlagSet
	// resolved by resolve: the table with the flags on top.
	s slurm.Settings
	d slurm.Durations
}

func (f *slurmFlags) add(fs *pflag.FlagSet) {
	f.fs = fs
	fs.BoolVar(&f.on, "slurm", false, "run the runs on Slurm pilot jobs submitted from here, and the build as a Slurm job ([slurm] in simswarm.toml; see docs/slurm.md)")
	fs.StringVar(&f.flag.Partition, "partition", "", "with --slurm: the partition of the pilots")
	fs.StringVar(&f.flag.Account, "account", "", "with --slurm: the account the pilots are charged to")
	fs.StringVar(&f.flag.Time, "time", "", "with --slurm: each pilot's time limit, as sbatch --time (e.g. 2:00:00)")
	fs.IntVar(&f.flag.CPUs, "cpus-per-pilot", 0, "with --slurm: cores of each pilot, one run slot per core (default 1)")
	fs.StringVar(&f.flag.Mem, "mem", "", "with --slurm: memory of each pilot, as sbatch --mem (e.g. 4G)")
	fs.IntVar(&f.flag.MaxPilots, "max-pilots", 0, "with --slurm: pilots of one wave at most (default 64)")
	fs.StringArrayVar(&f.flag.Options, "sbatch-option", nil, "with --slurm: one more sbatch `OPTION` for the pilots, e.g. --qos=short (repeatable)")
	fs.StringVar(&f.flag.Build, "slurm-build", "", "with --slurm: where builds run: slurm, a Slurm job of their own (default), or login, in this process on the login node")
	fs.StringVar(&f.flag.Listen, "slurm-listen", "", "with --slurm: the `ADDR` (host:port) the engine listens on for the pilots, reachable from the compute nodes (default: all addresses, a free port, advertised as this host's name)")
}

// resolve reads [slurm] of the simulation's simswarm.toml and lays the
// flags given over it.
func (f *slurmFlags) resolve(dir string) error {
	changed := false
	for _, n := range []string{"partition", "account", "time", "cpus-per-pilot", "mem", "max-pilots", "sbatch-option", "slurm-listen", "slurm-build"} {
		changed = changed || f.fs.Changed(n)
	}
	if !f.on {
		if changed {
			return usageErr("--partition, --account, --time, --cpus-per-pilot, --mem, --max-pilots, --sbatch-option, --slurm-listen and --slurm-build go with --slurm")
		}
		return nil
	}
	if p, err := project.Find(dir); err == nil && p.Config != nil {
		f.s = p.Config.Slurm
	} else if err != nil {
		return &exitError{code: 2, err: err}
	}
	set := func(name string, dst *string, v string) {
		if f.fs.Changed(name) {
			*dst = v
		}
	}
	set("partition", &f.s.Partition, f.flag.Partition)
	set("account", &f.s.Account, f.flag.Account)
	set("time", &f.s.Time, f.flag.Time)
	set("mem", &f.s.Mem, f.flag.Mem)
	set("slurm-listen", &f.s.Listen, f.flag.Listen)
	set("slurm-build", &f.s.Build, f.flag.Build)
	if f.fs.Changed("cpus-per-pilot") {
		if f.flag.CPUs < 1 {
			return usageErr("--cpus-per-pilot must be at least 1, not %d", f.flag.CPUs)
		}
		f.s.CPUs = f.flag.CPUs
	}
	if f.fs.Changed("max-pilots") {
		if f.flag.MaxPilots < 1 {
			return usageErr("--max-pilots must be at least 1, not %d", f.flag.MaxPilots)
		}
		f.s.MaxPilots = f.flag.MaxPilots
	}
	f.s.Options = append(f.s.Options, f.flag.Options...)
	d, err := f.s.Check()
	if err != nil {
		if f.fs.Changed("slurm-build") && f.s.Build == f.flag.Build {
			return usageErr("--slurm-build %q: want slurm (a build job, the default) or login (in this process)", f.flag.Build)
		}
		return usageErr("%v", err)
	}
	f.d = d
	return nil
}

// startPilots prepares a Slurm campaign before its engine starts: Slurm
// must accept the pilots (sbatch --test-only), else nothing is built or
// queued. It returns the pilots, to be given their engine by runPilots.
func (f *slurmFlags) startPilots(ctx context.Context, log *slog.Logger, buildArgs []string) (*slurm.Pilots, error) {
	p := &slurm.Pilots{S: f.s, D: f.d, Log: log, Progress: os.Stderr, Build: f.buildJobs(), BuildArgs: buildArgs}
	if err := p.Check(ctx); err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("slurm: %w", err)}
	}
	l, err := slurm.ReadLimits(ctx)
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("slurm: %w", err)}
	}
	p.Limits = l
	return p, nil
}

// buildJobs says whether builds run as Slurm jobs (not in this process).
func (f *slurmFlags) buildJobs() bool { return f.on && f.s.Build != slurm.BuildLogin }

// announceEngine saves the pilots' credentials in the state directory and
// says where the engine is, so that simswarm status can look at it while
// the state directory is locked by this command.
func announceEngine(state, url string, c creds.Creds) error {
	path := filepath.Join(state, "slurm", creds.FileName)
	if err := creds.Save(path, c); err != nil {
		return fmt.Errorf("save the pilots' credentials: %w", err)
	}
	fmt.Fprintf(os.Stderr, "slurm: engine for the pilots at %s (simswarm status --server %s --creds %s)\n", url, url, path)
	return nil
}

// serveLists answers the campaign's run-list jobs from this host while the
// command runs (on a --server engine, as the embedded one does): pilots
// are submitted once runs wait, so nothing else may be there to list them.
// It runs no simulation. With builder (--slurm-build=login) it also
// builds here.
func serveLists(ctx context.Context, conn *connFlags, dir, host string, builder *build.Builder, log *slog.Logger) (stop func(), err error) {
	eng, err := conn.connect(ctx, "simswarm-lists "+host, false, log)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(ctx)
	r := &runner.Runner{Eng: eng, Dir: filepath.Join(dir, "lists"), Slots: 1, Host: host, Log: log, ListsOnly: true,
		ID: engine.WorkerID(host, "lists")}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := r.Serve(lctx); err != nil && lctx.Err() == nil {
			log.Error("run lists", "err", err)
		}
	}()
	if builder != nil {
		builder.Eng, builder.Host, builder.Log, builder.Dir = eng, host, log, filepath.Join(dir, "workspaces")
		wg.Add(1)
		go func() { defer wg.Done(); _ = builder.Serve(lctx) }()
	}
	return func() { cancel(); wg.Wait(); eng.Close() }, nil
}

// runPilots submits waves until the command ends, then cancels every
// pilot. A wave Slurm refused outright ends the campaign through fail.
func runPilots(ctx context.Context, p *slurm.Pilots, eng *engine.Engine, url string, c creds.Creds, fail func(error)) (stop func()) {
	p.Eng, p.URL, p.Creds = eng, url, c
	return p.Start(ctx, fail)
}

// printSlurmEstimate adds to --dry-run --slurm's estimate what the pilots
// charge.
func printSlurmEstimate(w io.Writer, f *slurmFlags, e *campaign.Estimate) {
	p := (&slurm.Pilots{S: f.s, Limits: slurm.Limits{MaxJobCount: e.Runs}}).Size(e.Runs)
	hours := e.Seconds / 3600
	fmt.Fprintf(w, "on Slurm: %d pilots of %d cores: expected wall time %s once they run (queue wait excluded), %.2f core-hours charged\n",
		p, f.s.CPUs, time.Duration(e.Seconds*float64(time.Second)).Round(100*time.Millisecond), hours*float64(p*f.s.CPUs))
}

// exitFlags end a worker that a Slurm job started (a pilot, a build job)
// once it has nothing to do or its engine is gone, releasing the
// allocation.
type exitFlags struct {
	removeCreds bool
	idle, lost  time.Duration
}

func (f *exitFlags) add(fs *pflag.FlagSet) {
	fs.BoolVar(&f.removeCreds, "creds-remove", false, "remove the credentials file once read (a Slurm job's script writes it on the node)")
	fs.DurationVar(&f.idle, "idle-exit", 0, "end after this long with nothing to do (0: never)")
	fs.DurationVar(&f.lost, "lost-exit", 0, "end after this long without the engine, from start or a disconnection (0: never)")
}

func (f *exitFlags) check() error {
	if f.idle < 0 || f.lost < 0 {
		return usageErr("--idle-exit and --lost-exit must not be negative")
	}
	return nil
}

// pilotFlags make a runner a Slurm pilot (the script internal/slurm
// submits starts it so).
type pilotFlags struct {
	exitFlags
	slurm     bool
	endMargin time.Duration
}

func (f *pilotFlags) add(fs *pflag.FlagSet) {
	f.exitFlags.add(fs)
	fs.BoolVar(&f.slurm, "slurm", false, "run as a Slurm pilot: report the job and node, hand runs back before the job's time ends, end on SIGUSR1")
	fs.DurationVar(&f.endMargin, "end-margin", slurm.DefaultEndSignal, "with --slurm: take no run that cannot finish this long before the job's end")
}

// apply sets a runner up as a pilot; ctx then also ends on SIGUSR1, which
// Slurm sends before the job's time limit (sbatch --signal=B:USR1@N).
func (f *pilotFlags) apply(ctx context.Context, cmd interface{ Flags() *pflag.FlagSet }, r *runner.Runner) (context.Context, func(), error) {
	if err := f.check(); err != nil {
		return ctx, func() {}, err
	}
	if f.endMargin < 0 {
		return ctx, func() {}, usageErr("--end-margin must not be negative")
	}
	r.IdleExit, r.LostExit = f.idle, f.lost
	if !f.slurm {
		return ctx, func() {}, nil
	}
	p, ok := slurm.Here(ctx)
	if !ok {
		return ctx, func() {}, usageErr("--slurm: not in a Slurm job (no SLURM_JOB_ID)")
	}
	r.Slurm, r.End, r.EndMargin = p.Job, p.End, f.endMargin
	r.SignalGrace = 2 * time.Second
	if !cmd.Flags().Changed("name") && p.Node != "" {
		r.Host = p.Node
		r.ID = engine.WorkerID(p.Node, "")
	}
	ctx, cancel := context.WithCancel(ctx)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		select {
		case <-usr1:
			r.Log.Warn("runner: Slurm signalled the job's end is near: the runs go back to the queue", "job", p.Job)
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() { signal.Stop(usr1); cancel() }, nil
}

// connect opens the engine for a worker; one started by Slurm waits for
// it at most --lost-exit, then ends: its client may be gone already.
func (f *exitFlags) connect(ctx context.Context, conn *connFlags, name string, log *slog.Logger) (*engine.Engine, error) {
	cctx := ctx
	if f.lost > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, f.lost)
		defer cancel()
	}
	if f.removeCreds && conn.creds != "" {
		// Read before connecting: the connection keeps them.
		defer os.Remove(conn.creds)
	}
	eng, err := conn.connect(cctx, name, true, log)
	if err != nil && cctx.Err() != nil && ctx.Err() == nil {
		return nil, &exitError{code: 1, err: fmt.Errorf("no engine at %s within --lost-exit %s: ending", conn.server, f.lost)}
	}
	return eng, err
}
