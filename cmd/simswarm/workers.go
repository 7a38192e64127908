package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spf13/pflag"

	"github.com/simswarm/simswarm/internal/build"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/runner"
	"github.com/simswarm/simswarm/internal/slurm"
	"github.com/simswarm/simswarm/internal/units"
	"github.com/spf13/cobra"
)

func defaultWorkDir(sub string) string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "simswarm", sub)
	}
	return filepath.Join(os.TempDir(), "simswarm-"+sub)
}

func hostname() string {
	h, _ := os.Hostname()
	if h == "" {
		h = "host"
	}
	return h
}

// accelFlags configure ccache and distcc for a builder.
type accelFlags struct {
	hosts, dns, ccache, size string
	perHost                  int
}

func (a *accelFlags) add(f *pflag.FlagSet, ccacheDefault string) {
	f.StringVar(&a.hosts, "distcc-hosts", "", "distcc compile servers, host[:port][/limit][,lzo] ... (default $DISTCC_HOSTS)")
	f.StringVar(&a.dns, "distcc-dns", "", "a DNS name resolving to every compile server (e.g. tasks.distcc in Docker Swarm)")
	f.IntVar(&a.perHost, "distcc-per-host", 4, "job limit of a compile server that gives none, 1 to 4096")
	f.StringVar(&a.ccache, "ccache-dir", ccacheDefault, "compiler cache directory, used when ccache is installed (\"off\": no ccache; run: default STATE/ccache)")
	f.StringVar(&a.size, "ccache-size", "5G", "bound of the compiler cache")
}

func (a *accelFlags) accel() (build.Accel, error) {
	hosts := a.hosts
	if hosts == "" {
		hosts = os.Getenv("DISTCC_HOSTS")
	}
	if a.perHost == 0 {
		a.perHost = 4 // commands without the flag
	}
	if a.size == "" {
		a.size = "5G" // commands without the flag (attach)
	}
	if _, err := build.ParseHosts(hosts, a.perHost); err != nil {
		return build.Accel{}, usageErr("invalid --distcc-hosts: %v", err)
	}
	if err := units.Check("--distcc-per-host", a.perHost, 1, units.MaxSlots); err != nil {
		return build.Accel{}, usageErr("%v", err)
	}
	if _, err := units.ParseSize(a.size); err != nil {
		return build.Accel{}, usageErr("invalid --ccache-size %q: %v", a.size, err)
	}
	return build.Accel{DistccHosts: hosts, DistccDNS: a.dns, PerHost: a.perHost, CcacheDir: a.ccache, CcacheSize: a.size}, nil
}

func builderCommand() *cobra.Command {
	var (
		conn      connFlags
		accel     accelFlags
		dir, name string
		jobs      int
		verbose   bool
		exits     exitFlags
		slurmJob  string
	)
	cmd := &cobra.Command{
		Use:   "builder",
		Short: "Take build jobs from a cluster engine",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := conn.required(); err != nil {
				return err
			}
			if err := units.Check("--jobs", jobs, 1, units.MaxSlots); err != nil {
				return usageErr("%v", err)
			}
			acc, err := accel.accel()
			if err != nil {
				return err
			}
			if acc.CcacheDir == "off" {
				acc.CcacheDir = ""
			}
			if err := exits.check(); err != nil {
				return err
			}
			log, ctx, stop := beginWorker(verbose)
			defer stop()
			if p, ok := slurm.Here(ctx); ok {
				// A build job: shown as its job on its node.
				slurmJob = p.Job
				if !cmd.Flags().Changed("name") && p.Node != "" {
					name = p.Node
				}
			}
			eng, err := exits.connect(ctx, &conn, "simswarm-builder "+name, log)
			if err != nil {
				return err
			}
			defer eng.Close()
			fmt.Fprintf(cmd.ErrOrStderr(), "simswarm builder %s: connected to %s, workspaces in %s\n", name, conn.server, dir)
			b := &build.Builder{Eng: eng, Dir: dir, Jobs: jobs, Host: name, Log: log, Accel: acc, IdleExit: exits.idle, LostExit: exits.lost, Slurm: slurmJob}
			return b.Serve(ctx)
		},
	}
	f := cmd.Flags()
	conn.add(f)
	f.StringVar(&dir, "dir", defaultWorkDir("workspaces"), "directory of the persistent build workspaces")
	accel.add(f, defaultWorkDir("ccache"))
	f.IntVar(&jobs, "jobs", runtime.NumCPU(), "build parallelism, 1 to 4096 ({jobs} in the build command)")
	f.StringVar(&name, "name", hostname(), "worker name shown in status")
	f.BoolVarP(&verbose, "verbose", "v", false, "log every job")
	exits.add(f)
	return cmd
}

func runnerCommand() *cobra.Command {
	var (
		conn            connFlags
		dir, name, size string
		slots, reserve  int
		verbose         bool
		pilot           pilotFlags
	)
	cmd := &cobra.Command{
		Use:   "runner",
		Short: "Run simulations for a cluster engine, one slot per core",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := conn.required(); err != nil {
				return err
			}
			if reserve < 0 {
				return usageErr("--reserve must not be negative, not %d", reserve)
			}
			if !cmd.Flags().Changed("slots") {
				if slots = runtime.NumCPU() - reserve; slots < 1 {
					return usageErr("--reserve %d leaves no slot of %d cores", reserve, runtime.NumCPU())
				}
			}
			if err := units.Check("--slots", slots, 1, units.MaxSlots); err != nil {
				return usageErr("%v", err)
			}
			limit, err := units.ParseSize(size)
			if err != nil {
				return usageErr("invalid --cache-size %q: %v", size, err)
			}
			log, ctx, stop := beginWorker(verbose)
			defer stop()
			r := &runner.Runner{Dir: dir, Slots: slots, Host: name, Log: log, CacheBytes: limit,
				ID: engine.WorkerID(name, "")}
			ctx, stopPilot, err := pilot.apply(ctx, cmd, r)
			if err != nil {
				return err
			}
			defer stopPilot()
			eng, err := pilot.connect(ctx, &conn, "simswarm-runner "+r.Host, log)
			if err != nil {
				return err
			}
			defer eng.Close()
			r.Eng = eng
			fmt.Fprintf(cmd.ErrOrStderr(), "simswarm runner %s: %s, connected to %s, cache in %s\n", r.Host, units.Count(slots, "slot"), conn.server, dir)
			return r.Serve(ctx)
		},
	}
	f := cmd.Flags()
	conn.add(f)
	f.StringVar(&dir, "cache", defaultWorkDir("runner"), "per-host cache of snapshots and artifacts (shared by runners on this host)")
	f.StringVar(&size, "cache-size", "20GiB", "bound of the cache; least recently used trees go first (0: no bound)")
	f.IntVar(&slots, "slots", runtime.NumCPU(), "parallel runs, 1 to 4096 (default: one per core, less --reserve)")
	f.IntVar(&reserve, "reserve", 0, "cores to leave free (e.g. on a manager)")
	f.StringVar(&name, "name", hostname(), "host name shown in status and run records")
	f.BoolVarP(&verbose, "verbose", "v", false, "log every job")
	pilot.add(f)
	return cmd
}
