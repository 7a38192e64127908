package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/campaign"
	"github.com/simswarm/simswarm/internal/embedded"
	"github.com/spf13/cobra"
)

func runCommand() *cobra.Command {
	var (
		dir, results, state, timeout string
		slots, batch                 int
		dryRun, asJSON, rebuild      bool
		quiet, verbose               bool
	)
	cmd := &cobra.Command{
		Use:   "run [flags] [--] <simulation command and args...>",
		Short: "Run a campaign: every run of a simulation, results into results/",
		Long: `Run snapshots the simulation's project, builds it, asks the program for its
run list (-s -q runnumbers, or simswarm.toml), runs every run that is not done
yet in parallel, and leaves the result files in the results directory, as
opp_runall would. Exit status: 0 all runs succeeded, 1 some run failed,
2 usage, configuration, build or run-list error (nothing ran), 130 interrupted.`,
		Example: `  simswarm run -- ./aloha -c PureAlohaExperiment
  simswarm run -j 4 --timeout 10m -- ./aloha -c PureAlohaExperiment -r '$numHosts==10'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if batch < 0 {
				return usageErr("-b must be 0 (adaptive) or more, not %d", batch)
			}
			if slots < 1 {
				return usageErr("-j must be at least 1, not %d", slots)
			}
			var to time.Duration
			if timeout != "" {
				d, err := time.ParseDuration(timeout)
				if err != nil || d <= 0 {
					return usageErr("invalid --timeout %q: give a positive duration such as 90s, 10m or 2h", timeout)
				}
				to = d
			}
			if dir == "" {
				dir = "."
			}
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				return usageErr("-C %s: no such directory", dir)
			}
			if state == "" {
				state = defaultState()
			}
			if state == "" {
				return usageErr("no state directory: set --state or SIMSWARM_STATE")
			}
			return runCampaign(cmd, runArgs{dir: dir, results: results, state: state, slots: slots, batch: batch, timeout: to,
				dryRun: dryRun, json: asJSON, rebuild: rebuild, quiet: quiet, verbose: verbose, argv: args})
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.StringVarP(&dir, "directory", "C", "", "change to `DIR` (the simulation's directory) first")
	f.IntVarP(&slots, "jobs", "j", runtime.NumCPU(), "parallel run slots (embedded mode)")
	f.IntVarP(&batch, "batch", "b", 0, "runs per simulation process, as opp_runall -b (0: decided from measured start-up time)")
	f.StringVar(&results, "results", "results", "where result files land, relative to the simulation's directory")
	f.BoolVar(&dryRun, "dry-run", false, "print the runs that would execute and those already done; run nothing")
	f.StringVar(&state, "state", "", "engine state directory (default $SIMSWARM_STATE or the user cache dir)")
	f.StringVar(&timeout, "timeout", "", "per-run wall-clock limit (e.g. 10m); a run over it is killed")
	f.BoolVar(&asJSON, "json", false, "print a JSON summary on stdout at the end")
	f.BoolVar(&rebuild, "rebuild", false, "build even if the artifact is cached")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	f.BoolVarP(&verbose, "verbose", "v", false, "log what the workers do")
	return cmd
}

func defaultState() string {
	if s := os.Getenv("SIMSWARM_STATE"); s != "" {
		return s
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "simswarm")
	}
	return ""
}

type runArgs struct {
	dir, results, state   string
	slots, batch          int
	timeout               time.Duration
	dryRun, json, rebuild bool
	quiet, verbose        bool
	argv                  []string
}

func runCampaign(cmd *cobra.Command, a runArgs) error {
	level := slog.LevelError
	if a.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	host, _ := os.Hostname()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	inst, err := embedded.Start(ctx, embedded.Options{StateDir: a.state, Slots: a.slots, Host: host, Log: log})
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer inst.Stop()

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
	if a.json {
		human = os.Stderr
	}
	c := &campaign.Client{Eng: inst.Eng, Opt: campaign.Options{
		Dir: a.dir, Argv: a.argv, Results: a.results, DryRun: a.dryRun, Timeout: a.timeout, Batch: a.batch,
		Rebuild: a.rebuild, StateDir: a.state, Host: host, Local: true,
		Progress: os.Stderr, Quiet: a.quiet || a.dryRun, Stdout: human, Interrupt: interrupt,
	}}
	sum, err := c.Run(ctx)
	var setup *campaign.SetupError
	var berr *campaign.BuildError
	switch {
	case errors.As(err, &berr):
		if berr.Tail != "" {
			fmt.Fprintln(os.Stderr, indent(berr.Tail, "    "))
		}
		return &exitError{code: 2, err: err}
	case errors.As(err, &setup):
		return &exitError{code: 2, err: err}
	case errors.Is(err, campaign.ErrInterrupted):
		if sum != nil {
			printSummary(human, sum)
		}
		return &exitError{code: 130, err: errors.New("interrupted: the campaign's waiting runs were cancelled; run the same command again to resume")}
	case err != nil:
		return &exitError{code: 2, err: err}
	}
	if a.dryRun {
		if a.json {
			return writeJSON(stdout, sum)
		}
		return nil
	}
	printSummary(human, sum)
	if a.json {
		if err := writeJSON(stdout, sum); err != nil {
			return err
		}
	}
	if sum.Failed > 0 || sum.Cancelled > 0 {
		return &exitError{code: 1}
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printSummary(w io.Writer, s *campaign.Summary) {
	fmt.Fprintf(w, "campaign %s: %d runs: %d succeeded (%d executed, %d already done), %d failed",
		s.Campaign, s.Runs, s.Succeeded, s.Succeeded-s.Cached, s.Cached, s.Failed)
	if s.Cancelled > 0 {
		fmt.Fprintf(w, ", %d cancelled", s.Cancelled)
	}
	fmt.Fprintf(w, " in %.1fs\n", s.Wall)
	for _, f := range s.Failures {
		vars := ""
		if f.Vars != "" {
			vars = " (" + f.Vars + ")"
		}
		fmt.Fprintf(w, "FAILED run %d%s: %s\n", f.Run, vars, f.Describe())
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
