package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/simswarm/simswarm/internal/campaign"
	"github.com/simswarm/simswarm/internal/fingerprint"
	"github.com/simswarm/simswarm/internal/shellwords"
	"github.com/simswarm/simswarm/internal/units"
	"github.com/spf13/cobra"
)

func fingerprintsCommand() *cobra.Command {
	var rf runFlags
	var program, match, root, cpu, calculator string
	var tags, include, exclude []string
	var update, rerun bool
	cmd := &cobra.Command{
		Use:   "fingerprints [flags] SUITE.csv...",
		Short: "Run fingerprint test suites (INET's tests/fingerprint/*.csv) and give verdicts",
		Long: `Fingerprints reads fingerprint test suites in INET's CSV format (working
directory, arguments, simulation time limit, fingerprints, expected result,
tags), runs every selected test as one campaign (embedded, or on a cluster
with --server), and prints a verdict table. INET's suites run as INET's own
fingerprinttest runs them: with inet::FingerprintCalculator and the options
it adds for ~tND and tyf fingerprints. Beside each suite it writes, as INET's
tool does, NAME.csv.UPDATED (the suite with the fingerprints computed) when
a fingerprint changed, NAME.csv.FAILED and NAME.csv.ERROR. A test whose
build and line are unchanged is not run again: its earlier verdict is
reused (--rerun forces a run).
Exit status: 0 every test met its expected result, 1 some did not, 2 usage or
a suite error (nothing ran), 130 interrupted.`,
		Example: `  cd inet/tests/fingerprint && simswarm fingerprints examples.csv
  simswarm fingerprints --match ethernet --tags basic -j 8 examples.csv showcases.csv
  simswarm fingerprints --program 'opp_run -l ../../src/INET -n ../../src' simple.csv`,
		Args: cobra.MinimumNArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("no suite given: name one or more fingerprint CSV files")
			}
			if err := rf.refuseRunOnly("fingerprints", false); err != nil {
				return err
			}
			o, err := rf.options()
			if err != nil {
				return err
			}
			sel, err := fingerprint.NewSelection(match, tags)
			if err != nil {
				return usageErr("%v", err)
			}
			fo := fingerprint.Options{Suites: args, Selection: sel, Update: update, Out: cmd.OutOrStdout()}
			if cpu != "" {
				d, err := units.ParseDuration(cpu)
				if err != nil || d <= 0 {
					return usageErr("invalid --cpu-time-limit %q: give a positive duration up to %s such as 60s or 5m", cpu, units.Describe(units.MaxDuration))
				}
				fo.CPUTimeLimit = d
			}
			if root == "" {
				if root, err = fingerprint.FindRoot(args[0]); err != nil {
					return &exitError{code: 2, err: err}
				}
			}
			if fo.Program, err = programOf(program, root); err != nil {
				return err
			}
			if fingerprint.IsINET(root) {
				fo.Profile = fingerprint.INET()
			}
			if cmd.Flags().Changed("calculator") {
				fo.Profile.Calculator = calculator
			}
			fo.Profile.Include, fo.Profile.Exclude = include, exclude
			for f, sets := range map[string][]string{"fpfilter": include, "excludefpfilter": exclude, "tags": tags} {
				if cmd.Flags().Changed(f) && len(sets) == 0 {
					what := "ingredient sets such as tplx or ~tNl"
					if f == "tags" {
						what = "tags such as basic,ethernet"
					}
					return usageErr("--%s is empty: give %s", f, what)
				}
			}
			if err := fo.Profile.Check(); err != nil {
				return usageErr("%v", err)
			}
			// Every suite error is found before an engine starts.
			_, items, err := fingerprint.Load(fo)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			results := rf.results
			if !filepath.IsAbs(results) {
				results = filepath.Join(filepath.Dir(args[0]), results)
			}
			if results, err = filepath.Abs(results); err != nil {
				return err
			}
			fc := &fingerprint.Campaign{Root: root, Results: results}
			// What a suite run writes never changes what the next one
			// snapshots, wherever the suites and results lie.
			o.Outputs = append(fingerprint.Outputs(args), results)
			if rerun {
				for _, dir := range fc.ResultDirs(items) {
					if err := os.RemoveAll(dir); err != nil {
						return &exitError{code: 2, err: fmt.Errorf("--rerun: %w", err)}
					}
				}
			}
			o.ReuseFailures = !rerun
			var rep *fingerprint.Report
			err = withClient(cmd, &rf, &o, func(ctx context.Context, c *campaign.Client) error {
				fc.Client = c
				var err error
				rep, err = fingerprint.Run(ctx, fc, fo)
				return err
			})
			if err != nil {
				return err
			}
			for _, f := range rep.Written {
				fmt.Fprintf(os.Stderr, "wrote %s\n", f)
			}
			if !rep.OK() {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	rf.add(f, true)
	f.Lookup("results").DefValue = "results/fingerprints"
	_ = f.Set("results", "results/fingerprints")
	f.Lookup("results").Usage = "where each test's result files land (one directory per test), relative to the first suite's directory"
	f.StringVar(&program, "program", "", "the program that runs a test, with its own arguments (default: bin/inet at the root, a launcher named after the working directory, or the opp_makemake executable there)")
	f.StringVar(&root, "root", "", "the directory the suites' working directories are relative to (default: the nearest directory above the first suite holding its first test's working directory)")
	f.StringVar(&match, "match", "", "run only the tests whose working directory and arguments match `REGEX`")
	f.StringSliceVar(&tags, "tags", nil, "run only the tests with one of these tags (repeatable, comma-separated)")
	f.StringVar(&cpu, "cpu-time-limit", "", "CPU time budget of each test (default 60s)")
	f.StringVar(&calculator, "calculator", "", "the fingerprint calculator `CLASS` (default: inet::FingerprintCalculator for INET's suites, OMNeT++'s own otherwise; '' for OMNeT++'s)")
	f.StringSliceVar(&include, "fpfilter", nil, "check only the fingerprints of these ingredient sets, as INET's -f (e.g. tplx; repeatable, comma-separated)")
	f.StringSliceVarP(&exclude, "excludefpfilter", "F", nil, "leave the fingerprints of these ingredient sets unchecked, as INET's -F (e.g. -F tyf)")
	f.BoolVar(&update, "update", false, "rewrite the suites in place with the computed fingerprints (comments and order kept)")
	f.BoolVar(&rerun, "rerun", false, "run every selected test again, even where its earlier verdict would be reused")
	for _, name := range []string{"list", "detach", "dry-run", "json"} {
		_ = f.MarkHidden(name)
	}
	return cmd
}

// programOf is the program a test runs: --program split into words, or
// the one found in the test's working directory.
func programOf(program, root string) (func(string) ([]string, error), error) {
	if program == "" {
		return func(workdir string) ([]string, error) { return fingerprint.FindProgram(root, workdir) }, nil
	}
	words, err := shellwords.Split(program)
	if err != nil || len(words) == 0 {
		return nil, usageErr("invalid --program %q: give the program and its own arguments", program)
	}
	return func(string) ([]string, error) { return words, nil }, nil
}
