package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/aws"
	"github.com/simswarm/simswarm/internal/build"
	"github.com/simswarm/simswarm/internal/campaign"
	"github.com/simswarm/simswarm/internal/creds"
	"github.com/simswarm/simswarm/internal/embedded"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/omnetpp"
	"github.com/simswarm/simswarm/internal/precision"
	"github.com/simswarm/simswarm/internal/proc"
	"github.com/simswarm/simswarm/internal/slurm"
	"github.com/simswarm/simswarm/internal/units"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// refuseRunOnly refuses the flags of simswarm run that a command built on
// it (fingerprints, regress, bisect) does not take, naming the ones given.
// ownDryRun: the command has a --dry-run of its own.
func (f *runFlags) refuseRunOnly(command string, ownDryRun bool) error {
	var given []string
	if f.detach {
		given = append(given, "--detach")
	}
	if f.dryRun && !ownDryRun {
		given = append(given, "--dry-run")
	}
	if f.list != "" {
		given = append(given, "--list")
	}
	if f.asJSON {
		given = append(given, "--json")
	}
	if len(given) == 0 {
		return nil
	}
	verb := "belongs"
	if len(given) > 1 {
		verb = "belong"
	}
	return usageErr("%s: %s %s to simswarm run; %s follows its tests to their verdicts", command, strings.Join(given, ", "), verb, command)
}

// runFlags are shared by run and attach.
type runFlags struct {
	conn                    connFlags
	accel                   accelFlags
	noBuild                 bool
	dir, results, state     string
	timeout                 string
	slots, batch, retries   int
	maxRuns                 int
	dryRun, asJSON, rebuild bool
	detach, quiet, verbose  bool
	keepResults             bool
	dashboard               string
	list                    string
	estimateNodes           int
	instanceType            string
	until                   []string
	maxReps                 int
	slurm                   slurmFlags
}

func (r *runFlags) add(f *pflag.FlagSet, run bool) {
	r.conn.add(f)
	f.StringVarP(&r.dir, "directory", "C", ".", "change to `DIR` (the simulation's directory) first")
	f.StringVar(&r.results, "results", "results", "where result files land, relative to the simulation's directory")
	addStateFlag(f, &r.state, "embedded engine state directory (default $SIMSWARM_STATE or the user cache dir)")
	f.IntVarP(&r.slots, "jobs", "j", runtime.NumCPU(), "parallel run slots of the embedded engine, 1 to 4096")
	f.BoolVar(&r.asJSON, "json", false, "print a JSON summary on stdout at the end")
	f.BoolVarP(&r.quiet, "quiet", "q", false, "no progress output")
	f.BoolVarP(&r.verbose, "verbose", "v", false, "log what the workers do")
	f.BoolVar(&r.keepResults, "keep-results", false, "keep results in the engine's store after fetching them (default: deleted once in the results directory)")
	if !run {
		// attach follows a campaign bounded when it was submitted.
		r.maxRuns = campaign.DefaultMaxRuns
		return
	}
	f.IntVarP(&r.batch, "batch", "b", 0, "runs per simulation process, 0 to 1000, as opp_runall -b (0: decided from measured start-up time)")
	f.BoolVar(&r.dryRun, "dry-run", false, "print the runs that would execute and those already done; run nothing")
	f.StringVar(&r.timeout, "timeout", "", "per-run wall-clock limit (e.g. 10m, 2h, 1d; at most 3650d); a run over it is killed")
	f.IntVar(&r.maxRuns, "max-runs", campaign.DefaultMaxRuns, "refuse a campaign of more runs than this (1 to 2^40)")
	f.IntVar(&r.retries, "retries", 0, "run a failed run again up to `N` times (0 to 100) before reporting it")
	f.BoolVar(&r.rebuild, "rebuild", false, "build even if the artifact is cached")
	f.BoolVar(&r.noBuild, "no-build", false, "use the project's last artifact instead of building")
	r.accel.add(f, "")
	f.BoolVar(&r.detach, "detach", false, "submit the campaign and return; follow it later with simswarm attach")
	f.StringVar(&r.dashboard, "dashboard", "", "serve the dashboard on `ADDR` (e.g. 127.0.0.1:9181) while the campaign runs")
	f.IntVar(&r.estimateNodes, "estimate-nodes", 0, "with --dry-run: estimate the wall time and AWS cost on `N` nodes of --instance-type")
	f.StringVar(&r.instanceType, "instance-type", "c5.xlarge", "with --estimate-nodes: the EC2 instance `TYPE` of each node")
	f.StringVar(&r.list, "list", "", "run the commands of `FILE`, one per line: a working directory, then the command (results of each in results/<dir>-<hash>)")
	f.StringArrayVar(&r.until, "until", nil, "add repetitions in rounds until `TARGET` holds for every combination of iteration variables: 'MODULE.SCALAR ci95 < 5%' or '... ci95 < 0.01' (repeatable: all must hold)")
	f.IntVar(&r.maxReps, "max-repetitions", precision.DefaultMax, "with --until: repetitions per combination at most (2 to 100000)")
	r.slurm.add(f)
}

func (r *runFlags) options() (campaign.Options, error) {
	o := campaign.Options{Dir: r.dir, Results: r.results, DryRun: r.dryRun, Batch: r.batch, Retries: r.retries,
		Rebuild: r.rebuild, Detach: r.detach, Progress: os.Stderr, Quiet: r.quiet || r.dryRun, KeepResults: r.keepResults}
	if r.batch < 0 {
		return o, usageErr("-b must be 0 (adaptive) or more, not %d", r.batch)
	}
	if err := units.Check("-b", r.batch, 0, units.MaxBatch); err != nil {
		return o, usageErr("%v", err)
	}
	if r.rebuild && r.noBuild {
		return o, usageErr("--rebuild and --no-build contradict each other")
	}
	o.NoBuild = r.noBuild
	if err := units.Check("--retries", r.retries, 0, units.MaxRetries); err != nil {
		return o, usageErr("%v", err)
	}
	if err := units.Check("--max-runs", r.maxRuns, 1, units.MaxRunsLimit); err != nil {
		return o, usageErr("%v", err)
	}
	o.MaxRuns = r.maxRuns
	if r.estimateNodes != 0 {
		if !r.dryRun {
			return o, usageErr("--estimate-nodes estimates a campaign before it runs: use it with --dry-run")
		}
		if err := units.Check("--estimate-nodes", r.estimateNodes, 1, units.MaxNodes); err != nil {
			return o, usageErr("%v", err)
		}
		cpus, ok := aws.VCPUs(r.instanceType)
		if _, priced := aws.HourlyPrice(r.instanceType); !ok || !priced {
			return o, usageErr("--instance-type %q: not an instance type simswarm has prices for (such as c5.xlarge, c6i.4xlarge, m5.large)", r.instanceType)
		}
		o.EstimateSlots = r.estimateNodes * cpus
	}
	if err := units.Check("-j", r.slots, 1, units.MaxSlots); err != nil {
		return o, usageErr("%v", err)
	}
	if r.timeout != "" {
		d, err := units.ParseDuration(r.timeout)
		if err != nil || d <= 0 {
			return o, usageErr("invalid --timeout %q: give a positive duration up to %s such as 90s, 10m, 2h or 1d", r.timeout, units.Describe(units.MaxDuration))
		}
		o.Timeout = d
	}
	if fi, err := os.Stat(r.dir); err != nil || !fi.IsDir() {
		return o, usageErr("-C %s: no such directory", r.dir)
	}
	if r.slurm.fs != nil {
		if err := r.slurm.resolve(r.dir); err != nil {
			return o, err
		}
	}
	if r.slurm.on {
		switch {
		case r.estimateNodes != 0:
			return o, usageErr("--estimate-nodes estimates AWS nodes: with --slurm the estimate is for the pilots (--max-pilots, --cpus-per-pilot)")
		case r.detach:
			return o, usageErr("--detach cannot be combined with --slurm: the pilots are cancelled when this command ends")
		case r.dryRun:
			o.EstimateSlots = r.slurm.s.MaxPilots * r.slurm.s.CPUs
		}
	}
	r.conn.resolve()
	if r.state == "" {
		r.state = defaultState()
	}
	if r.conn.server == "" && r.state == "" {
		return o, usageErr("no state directory: set --state or SIMSWARM_STATE")
	}
	o.StateDir = r.state
	return o, nil
}

func runCommand() *cobra.Command {
	var rf runFlags
	cmd := &cobra.Command{
		Use:   "run [flags] [--] <simulation command and args...>",
		Short: "Run a campaign: every run of a simulation, results into results/",
		Long: `Run snapshots the simulation's project, builds it, asks the program for its
run list (-s -q runconfig, or simswarm.toml), runs every run that is not done
yet in parallel, and leaves the result files in the results directory, as
opp_runall would. Without --server it runs on this machine on an embedded
engine. Exit status: 0 all runs succeeded, 1 some run failed, 2 usage,
configuration, build or run-list error (nothing ran), 130 interrupted.`,
		Example: `  simswarm run -- ./aloha -c PureAlohaExperiment
  simswarm run -j 4 --timeout 10m -- ./aloha -c PureAlohaExperiment -r '$numHosts==10'
  simswarm run --server nats://localhost:4222 --creds client.creds -- ./aloha -c PureAlohaExperiment
  simswarm run --list campaigns.txt     # lines such as: examples/aloha ./aloha -c PureAlohaExperiment -r 0..3`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := rf.options()
			if err != nil {
				return err
			}
			o.Argv = args
			if len(rf.until) > 0 || cmd.Flags().Changed("max-repetitions") {
				return runUntil(cmd, &rf, o)
			}
			if rf.list != "" {
				if len(args) > 0 {
					return usageErr("--list names the commands: give no command after it (got %q)", strings.Join(args, " "))
				}
				items, err := readList(rf.list, rf.results)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				return execute(cmd, &rf, o, func(ctx context.Context, c *campaign.Client) (*campaign.Summary, error) {
					return c.RunListed(ctx, items)
				})
			}
			// Refused before an engine starts: a huge template costs
			// milliseconds, not the engine's start-up.
			if err := campaign.Precheck(o); err != nil {
				return &exitError{code: 2, err: err}
			}
			return execute(cmd, &rf, o, func(ctx context.Context, c *campaign.Client) (*campaign.Summary, error) { return c.Run(ctx) })
		},
	}
	cmd.Flags().SetInterspersed(false)
	rf.add(cmd.Flags(), true)
	return cmd
}

func attachCommand() *cobra.Command {
	var rf runFlags
	cmd := &cobra.Command{
		Use:   "attach <campaign>",
		Short: "Follow a submitted campaign: results into results/, summary at the end",
		Args:  campaignArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := rf.options()
			if err != nil {
				return err
			}
			id := args[0]
			if !campaignID.MatchString(id) {
				return usageErr("invalid campaign %q: a campaign id is 16 hex digits, as simswarm run --detach and simswarm status show it", id)
			}
			return execute(cmd, &rf, o, func(ctx context.Context, c *campaign.Client) (*campaign.Summary, error) { return c.Attach(ctx, id) })
		},
	}
	rf.add(cmd.Flags(), false)
	return cmd
}

// runUntil is simswarm run --until: the campaign grown in rounds by the
// precision package.
func runUntil(cmd *cobra.Command, rf *runFlags, o campaign.Options) error {
	spec := precision.Spec{Max: rf.maxReps}
	for _, u := range rf.until {
		t, err := precision.ParseTarget(u)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		spec.Targets = append(spec.Targets, t)
	}
	switch {
	case rf.list != "" && len(spec.Targets) > 0:
		return usageErr("--until grows one campaign: it cannot be combined with --list")
	case rf.detach && len(spec.Targets) > 0:
		return usageErr("--until reads each round's results before the next: it cannot be combined with --detach")
	}
	if err := precision.Check(o.Dir, o.Argv, spec); err != nil {
		return &exitError{code: 2, err: err}
	}
	var rep *precision.Report
	var human io.Writer
	err := withClient(cmd, rf, &o, func(ctx context.Context, c *campaign.Client) error {
		human = c.Opt.Stdout
		var err error
		rep, err = precision.Run(ctx, c, spec)
		return err
	})
	if err != nil || rep == nil { // an error, or --dry-run (the first round's)
		return err
	}
	if rep.Failed != nil {
		printSummary(human, rep.Failed)
		return &exitError{code: 1}
	}
	if err := precision.Print(human, rep); err != nil {
		return err
	}
	if rf.asJSON {
		return writeJSON(cmd.OutOrStdout(), rep)
	}
	return nil
}

// campaignID is the form of simswarm.CampaignID's ids.
var campaignID = regexp.MustCompile(`^[0-9a-f]{16}$`)

func defaultState() string {
	if s := os.Getenv("SIMSWARM_STATE"); s != "" {
		return s
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "simswarm")
	}
	return ""
}

// execute connects to an engine (embedded or cluster), runs fn with a
// campaign client, and turns its outcome into output and an exit status.
func execute(cmd *cobra.Command, rf *runFlags, o campaign.Options, fn func(context.Context, *campaign.Client) (*campaign.Summary, error)) error {
	var sum *campaign.Summary
	var human io.Writer
	err := withClient(cmd, rf, &o, func(ctx context.Context, c *campaign.Client) error {
		var err error
		human = c.Opt.Stdout
		sum, err = fn(ctx, c)
		return err
	})
	if e, ok := err.(*exitError); ok && e.code == 130 && sum != nil && !o.DryRun {
		printSummary(human, sum)
	}
	if err != nil {
		return err
	}
	stdout := cmd.OutOrStdout()
	if o.DryRun || sum.Detached {
		if sum.Detached {
			fmt.Fprintf(human, "campaign %s submitted: %s, %d already done; follow it with: simswarm attach %s\n",
				sum.Campaign, units.Count(sum.Runs, "run"), sum.Cached, sum.Campaign)
		}
		if o.DryRun && rf.slurm.on && sum.Estimate != nil {
			printSlurmEstimate(human, &rf.slurm, sum.Estimate)
		}
		if o.DryRun && rf.estimateNodes > 0 && sum.Estimate != nil {
			price, _ := aws.HourlyPrice(rf.instanceType)
			hours := sum.Estimate.Seconds / 3600
			fmt.Fprintf(human, "expected AWS cost: $%.2f for %d x %s at $%.4f/h each (on-demand, us-east-1; runs only, not cluster start-up or storage)\n",
				hours*price*float64(rf.estimateNodes), rf.estimateNodes, rf.instanceType, price)
		}
		if rf.asJSON {
			return writeJSON(stdout, sum)
		}
		return nil
	}
	printSummary(human, sum)
	if rf.asJSON {
		if err := writeJSON(stdout, sum); err != nil {
			return err
		}
	}
	if sum.Failed > 0 || sum.Cancelled > 0 || (sum.Fingerprints != nil && len(sum.Fingerprints.Mismatched) > 0) {
		return &exitError{code: 1}
	}
	return nil
}

// withClient connects to an engine (embedded or cluster), runs fn with a
// campaign client whose output goes to the terminal (to stderr with
// --json), and turns setup errors, build errors and interrupts into exit
// statuses.
func withClient(cmd *cobra.Command, rf *runFlags, op *campaign.Options, fn func(context.Context, *campaign.Client) error) error {
	o := *op
	log := logger(rf.verbose)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	host := hostname()
	var eng *engine.Engine
	var pilots *slurm.Pilots
	if rf.slurm.on && !o.DryRun {
		var err error
		// A build job builds with this command's compiler cache and
		// compile servers when they were given.
		var buildArgs []string
		for _, n := range []string{"ccache-dir", "ccache-size", "distcc-hosts", "distcc-dns", "distcc-per-host"} {
			if f := cmd.Flags().Lookup(n); f != nil && f.Changed {
				buildArgs = append(buildArgs, "--"+n+"="+f.Value.String())
			}
		}
		if pilots, err = rf.slurm.startPilots(ctx, log, buildArgs); err != nil {
			return err
		}
	}
	// A wave Slurm refused outright ends the campaign: failed says why.
	var failedMu sync.Mutex
	var failed error
	fail := func(err error) {
		failedMu.Lock()
		failed = err
		failedMu.Unlock()
		cancel()
	}
	var pilotCreds creds.Creds
	if rf.conn.server == "" {
		acc, err := rf.accel.accel()
		if err != nil {
			return err
		}
		switch acc.CcacheDir {
		case "":
			acc.CcacheDir = filepath.Join(rf.state, "ccache")
		case "off":
			acc.CcacheDir = ""
		}
		proc.Setup(log) // ends what a killed predecessor left running
		eo := embedded.Options{StateDir: rf.state, Slots: rf.slots, Host: host, Log: log, Accel: acc}
		if pilots != nil {
			// Pilots dial in; runs never execute here.
			pilotCreds = creds.Generate()
			eo.Listen, eo.Creds, eo.ListsOnly, eo.NoBuilder = rf.slurm.s.ListenAddr(), pilotCreds, true, rf.slurm.buildJobs()
		}
		inst, err := embedded.Start(ctx, eo)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		defer inst.Stop()
		eng = inst.Eng
		o.Local, o.Host = pilots == nil, host
		if pilots != nil {
			url := rf.slurm.s.EngineURL(inst.Port(), host)
			if err := announceEngine(rf.state, url, pilotCreds); err != nil {
				return &exitError{code: 2, err: err}
			}
			defer runPilots(ctx, pilots, eng, url, pilotCreds, fail)()
		}
	} else {
		e, err := rf.conn.connect(ctx, "simswarm-client", false, log)
		if err != nil {
			return err
		}
		defer e.Close()
		eng = e
		if pilots != nil {
			if rf.conn.creds == "" {
				return usageErr("--slurm with --server needs --creds: the pilots present them")
			}
			c, err := creds.Load(rf.conn.creds)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			var b *build.Builder
			if !rf.slurm.buildJobs() {
				acc, err := rf.accel.accel()
				if err != nil {
					return err
				}
				if acc.CcacheDir == "off" {
					acc.CcacheDir = ""
				}
				b = &build.Builder{Accel: acc}
			}
			stopLists, err := serveLists(ctx, &rf.conn, filepath.Join(rf.state, "slurm"), host, b, log)
			if err != nil {
				return err
			}
			defer stopLists()
			defer runPilots(ctx, pilots, eng, rf.conn.server, c, fail)()
		}
	}
	if rf.dashboard != "" {
		stop, err := startDashboard(ctx, eng, rf.dashboard, rf.conn.server == "", log)
		if err != nil {
			return err
		}
		defer stop()
	}

	interrupt := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		<-sigs
		close(interrupt)
		<-sigs
		fmt.Fprintln(os.Stderr, "simswarm: interrupted twice, exiting at once")
		os.Exit(130)
	}()
	stdout := cmd.OutOrStdout()
	human := stdout
	if rf.asJSON {
		human = os.Stderr
	}
	o.Stdout, o.Interrupt = human, interrupt
	o.BuildJobs = pilots != nil && rf.slurm.buildJobs()
	o.Server, o.Creds = rf.conn.server, rf.conn.creds
	err := fn(ctx, &campaign.Client{Eng: eng, Opt: o})
	failedMu.Lock()
	refused := failed
	failedMu.Unlock()
	if refused != nil {
		return &exitError{code: 2, err: fmt.Errorf("slurm: %w; the runs stay queued: the same command resumes them", refused)}
	}
	var setup *campaign.SetupError
	var berr *campaign.BuildError
	var notCancelled *campaign.NotCancelledError
	var ran *campaign.RanError
	switch {
	case errors.As(err, &ran):
		return &exitError{code: 1, err: err}
	case errors.As(err, &berr):
		if berr.Tail != "" {
			fmt.Fprintln(os.Stderr, indent(berr.Tail, "    "))
		}
		return &exitError{code: 2, err: err}
	case errors.As(err, &setup):
		return &exitError{code: 2, err: err}
	case errors.As(err, &notCancelled):
		it := "it"
		if strings.Contains(notCancelled.Campaign, " ") {
			it = "them"
		}
		return &exitError{code: 130, err: fmt.Errorf("%v; cancel %s with: %s", err, it, cancelHint(rf.conn, notCancelled.Campaign))}
	case errors.Is(err, campaign.ErrInterrupted) && o.DryRun:
		return &exitError{code: 130, err: errors.New("interrupted")}
	case errors.Is(err, campaign.ErrInterrupted):
		return &exitError{code: 130, err: errors.New("interrupted: the campaign's waiting runs were cancelled; run the same command again to resume")}
	case err != nil:
		var ee *exitError
		if errors.As(err, &ee) {
			return err
		}
		return &exitError{code: 2, err: err}
	}
	return nil
}

// readList reads a --list file; its results directory is relative to the
// list's own directory.
func readList(name, results string) ([]campaign.Item, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("--list: %w", err)
	}
	defer f.Close()
	return campaign.ParseList(name, f, results)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printSummary(w io.Writer, s *campaign.Summary) {
	fmt.Fprintf(w, "campaign %s: %s: %d succeeded, %d failed", s.Campaign, units.Count(s.Runs, "run"), s.Succeeded, s.Failed)
	if s.Cancelled > 0 {
		fmt.Fprintf(w, ", %d cancelled", s.Cancelled)
	}
	fmt.Fprintf(w, "; %d executed, %d already done; %.1fs\n", s.Executed, s.Cached, s.Wall)
	for _, f := range s.Failures {
		vars := ""
		if f.Vars != "" {
			vars = " (" + f.Vars + ")"
		}
		switch {
		case f.Item != "" && f.Run < 0:
			fmt.Fprintf(w, "FAILED %s: %s\n", f.Item, f.Reason)
			continue
		case f.Item != "":
			fmt.Fprintf(w, "FAILED %s run %d%s: %s\n", f.Item, f.Run, vars, f.Describe())
		default:
			fmt.Fprintf(w, "FAILED run %d%s: %s\n", f.Run, vars, f.Describe())
		}
		if f.Reason != "" && f.Exit != 0 {
			fmt.Fprintf(w, "    %s\n", f.Reason)
		}
		for _, e := range f.Errors {
			fmt.Fprintf(w, "    %s\n", e)
		}
		if f.Output != "" {
			fmt.Fprintf(w, "    output: %s\n", f.Output)
		}
	}
	if f := s.Fingerprints; f != nil {
		fmt.Fprintf(w, "fingerprints: %d verified, %d mismatched", f.Verified, len(f.Mismatched))
		if len(f.Mismatched) > 0 {
			runs := slices.Clone(f.Mismatched)
			slices.Sort(runs)
			fmt.Fprintf(w, " (runs %s; see their .out files)", omnetpp.RunNumberArg(runs))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "results in %s\n", s.Results)
}

func indent(s, pre string) string {
	return pre + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pre)
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "simswarm", simswarm.Version)
		},
	}
}
