package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/simswarm/simswarm/internal/atomicfile"
	"github.com/simswarm/simswarm/internal/campaign"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/gitrepo"
	"github.com/simswarm/simswarm/internal/regress"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// storeFlags reach the engine whose store holds the baselines.
type storeFlags struct {
	conn  connFlags
	state string
	dir   string
}

func (s *storeFlags) add(f *pflag.FlagSet) {
	s.conn.add(f)
	addStateFlag(f, &s.state, "embedded engine state directory (default $SIMSWARM_STATE or the user cache dir)")
	f.StringVarP(&s.dir, "directory", "C", ".", "the simulation's `DIR`: its results directory is the default")
}

func (s *storeFlags) open(ctx context.Context) (*engine.Engine, func(), error) {
	return openEngine(ctx, &s.conn, s.state, "simswarm-baseline")
}

// with calls fn with the engine open, until a signal.
func (s *storeFlags) with(fn func(context.Context, *engine.Engine) error) error {
	ctx, cancel := untilSignal()
	defer cancel()
	e, done, err := s.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	return regressErr(fn(ctx, e))
}

// regressErr maps the regress package's errors to exit statuses: the
// user's input is 2, as is everything else before a verdict.
func regressErr(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return &exitError{code: 130, err: errors.New("interrupted")}
	}
	return &exitError{code: 2, err: err}
}

// readResults reads a results directory (default: results of -C DIR) or a
// campaign's results from the engine as a baseline.
func readResults(ctx context.Context, eng func() (*engine.Engine, error), dir string, args []string, filter string) (*regress.Baseline, error) {
	src := filepath.Join(dir, "results")
	if len(args) > 0 {
		src = args[0]
	}
	if _, err := os.Stat(src); err != nil && len(args) > 0 && campaignID.MatchString(src) {
		e, err := eng()
		if err != nil {
			return nil, err
		}
		tmp, err := os.MkdirTemp("", "simswarm-compare-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		if _, err := campaign.Fetch(ctx, e, src, tmp); err != nil {
			return nil, &exitError{code: 2, err: errors.New(strings.ReplaceAll(err.Error(), tmp, "campaign "+src))}
		}
		b, err := regress.Read(ctx, tmp, filter)
		if err != nil {
			return nil, errors.New(strings.ReplaceAll(err.Error(), tmp, "campaign "+src))
		}
		b.Provenance.Source = "campaign " + src
		return b, nil
	}
	b, err := regress.Read(ctx, src, filter)
	if err != nil {
		return nil, err
	}
	if abs, err := filepath.Abs(src); err == nil {
		b.Provenance.Source = abs
	}
	b.Provenance.Commit = gitrepo.Head(ctx, dir)
	return b, nil
}

// lazyEngine opens the engine on first use only: compare with a baseline
// file and a results directory needs none.
type lazyEngine struct {
	s     *storeFlags
	ctx   context.Context
	eng   *engine.Engine
	close func()
}

func (l *lazyEngine) get() (*engine.Engine, error) {
	if l.eng == nil {
		e, c, err := l.s.open(l.ctx)
		if err != nil {
			return nil, err
		}
		l.eng, l.close = e, c
	}
	return l.eng, nil
}

func (l *lazyEngine) done() {
	if l.close != nil {
		l.close()
	}
}

func baselineCommand() *cobra.Command {
	var s storeFlags
	var filter string
	cmd := &cobra.Command{
		Use:   "baseline save|list|export|import|rm",
		Short: "Keep a campaign's scalars as a named baseline to compare later results with",
		Long: `Baseline keeps what a campaign's results were: every scalar (and the count,
mean, stddev, min and max of every statistic) per combination of iteration
variables, one value per repetition, with where they came from. Baselines
live in the engine's store (gc never removes them); export writes one to a
file a repository can commit, import stores such a file again.
simswarm compare NAME compares new results with it.
Exit status: 0 done, 2 bad usage, an unknown baseline or unreadable results.`,
		Example: `  simswarm baseline save aloha-v1                # the scalars of ./results
  simswarm baseline save aloha-v1 3f2a9c81d0b4e6a7 --filter 'name =~ channelUtilization*'
  simswarm baseline export aloha-v1 tests/baselines/aloha-v1.json
  simswarm baseline import tests/baselines/aloha-v1.json
  simswarm baseline list`,
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().AddFlagSet(func() *pflag.FlagSet {
		f := pflag.NewFlagSet("store", pflag.ContinueOnError)
		s.add(f)
		return f
	}())
	save := &cobra.Command{
		Use:   "save NAME [RESULTS | CAMPAIGN]",
		Short: "Store the scalars of a results directory (default: results) or a campaign as baseline NAME, replacing one of that name",
		Args:  cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("baseline save needs a NAME for the baseline")
			}
			if err := regress.CheckName(args[0]); err != nil {
				return usageErr("%v", err)
			}
			ctx, cancel := untilSignal()
			defer cancel()
			eng := &lazyEngine{s: &s, ctx: ctx}
			defer eng.done()
			b, err := readResults(ctx, eng.get, s.dir, args[1:], filter)
			if err != nil {
				return regressErr(err)
			}
			b.Name, b.Created = args[0], time.Now().UTC().Truncate(time.Second)
			e, err := eng.get()
			if err != nil {
				return err
			}
			if err := regress.Save(ctx, e, b); err != nil {
				return regressErr(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "baseline %s: %d series of %d runs from %s\n", b.Name, len(b.Series), b.Provenance.Runs, b.Provenance.Source)
			return nil
		},
	}
	save.Flags().StringVar(&filter, "filter", "", "keep only what this opp_scavetool filter expression matches")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the stored baselines",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.with(func(ctx context.Context, e *engine.Engine) error {
				all, err := regress.List(ctx, e)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tSAVED\tBYTES")
				for _, b := range all {
					fmt.Fprintf(tw, "%s\t%s\t%d\n", b.Name, b.Modified.Local().Format("2006-01-02 15:04"), b.Size)
				}
				return tw.Flush()
			})
		},
	}
	export := &cobra.Command{
		Use:   "export NAME FILE",
		Short: "Write baseline NAME to FILE (JSON, one series a line), for a repository to commit",
		Args:  cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageErr("baseline export needs the baseline's NAME and the FILE to write")
			}
			return s.with(func(ctx context.Context, e *engine.Engine) error {
				b, err := regress.Load(ctx, e, args[0])
				if err != nil {
					return err
				}
				data, err := b.Encode()
				if err != nil {
					return err
				}
				if err := atomicfile.WriteFile(args[1], data, 0o644); err != nil {
					return fmt.Errorf("export baseline %s: %w", b.Name, err)
				}
				return nil
			})
		},
	}
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Store a baseline file written by export (under the name it holds, replacing one of that name)",
		Args:  cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErr("baseline import needs the FILE to read")
			}
			b, err := regress.LoadFile(args[0])
			if err != nil {
				return regressErr(err)
			}
			return s.with(func(ctx context.Context, e *engine.Engine) error {
				if err := regress.Save(ctx, e, b); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "baseline %s: %d series imported\n", b.Name, len(b.Series))
				return nil
			})
		},
	}
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a stored baseline",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.with(func(ctx context.Context, e *engine.Engine) error { return regress.Remove(ctx, e, args[0]) })
		},
	}
	cmd.AddCommand(save, list, export, imp, rm)
	return cmd
}

// compareFlags say how strict a comparison is.
type compareFlags struct {
	alpha, tolerance string
	filter, csv      string
	changed          bool
}

func (c *compareFlags) add(f *pflag.FlagSet) {
	f.StringVar(&c.alpha, "alpha", "0.01", "family-wise error rate over all the scalars tested (Holm's correction), between 0 and 1")
	f.StringVar(&c.tolerance, "tolerance", "0", "relative difference of means that counts as the same (0.01 or 1%); for single runs, of the values (0: exact)")
	f.StringVar(&c.filter, "filter", "", "compare only what this opp_scavetool filter expression matches")
	f.StringVar(&c.csv, "csv", "", "also write every verdict to `FILE` as CSV")
	f.BoolVar(&c.changed, "changed", false, "list only the changed series in the table")
}

func (c *compareFlags) options() (regress.Options, error) {
	o := regress.Default
	a, err := strconv.ParseFloat(c.alpha, 64)
	if err != nil || !(a > 0 && a < 1) {
		return o, usageErr("invalid --alpha %q: give a probability between 0 and 1 such as 0.01", c.alpha)
	}
	o.Alpha = a
	t, err := parseRelative(c.tolerance)
	if err != nil {
		return o, usageErr("invalid --tolerance %q: give a relative difference such as 0.01 or 1%%, at least 0", c.tolerance)
	}
	o.Tolerance = t
	return o, nil
}

// parseRelative reads 0.01 or 1%.
func parseRelative(s string) (float64, error) {
	scale := 1.0
	if strings.HasSuffix(s, "%") {
		s, scale = strings.TrimSuffix(s, "%"), 0.01
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1e6 {
		return 0, errors.New("bad relative value")
	}
	return f * scale, nil
}

// loadBaseline reads a baseline by name from the store, or from a file
// export wrote when the argument names one.
func loadBaseline(ctx context.Context, eng func() (*engine.Engine, error), ref string) (*regress.Baseline, error) {
	if regress.IsFile(ref) {
		return regress.LoadFile(ref)
	}
	if err := regress.CheckName(ref); err != nil {
		return nil, &regress.InputError{Err: err}
	}
	e, err := eng()
	if err != nil {
		return nil, err
	}
	return regress.Load(ctx, e, ref)
}

func compareCommand() *cobra.Command {
	var s storeFlags
	var cf compareFlags
	cmd := &cobra.Command{
		Use:   "compare BASELINE [RESULTS | CAMPAIGN]",
		Short: "Compare results with a baseline: exact for single runs, Welch's t-test over repetitions",
		Long: `Compare compares the scalars of a results directory (default: results of -C
DIR) or of a campaign with a stored baseline (or a baseline file written by
simswarm baseline export), per combination of iteration variables, module
and name. Where both sides hold one run (a deterministic simulation), the
values must be equal (or within --tolerance); otherwise Welch's two-sample
t-test compares the means over the repetitions, with Holm's correction over
all the scalars tested, and a scalar is changed when its corrected p-value
is below --alpha and its means differ by more than --tolerance. A scalar
missing on either side is changed too.
Exit status: 0 nothing changed, 1 something changed, 2 bad usage, an unknown
baseline or unreadable results.`,
		Example: `  simswarm compare aloha-v1
  simswarm compare aloha-v1 results --filter 'name =~ channelUtilization*' --csv verdicts.csv
  simswarm compare tests/baselines/aloha-v1.json 3f2a9c81d0b4e6a7 --tolerance 1%`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("compare needs the BASELINE to compare with (simswarm baseline list shows them)")
			}
			o, err := cf.options()
			if err != nil {
				return err
			}
			ctx, cancel := untilSignal()
			defer cancel()
			eng := &lazyEngine{s: &s, ctx: ctx}
			defer eng.done()
			base, err := loadBaseline(ctx, eng.get, args[0])
			if err != nil {
				return regressErr(err)
			}
			cur, err := readResults(ctx, eng.get, s.dir, args[1:], cf.filter)
			if err != nil {
				return regressErr(err)
			}
			if cf.filter != "" {
				if base, err = regress.Restrict(base, cf.filter); err != nil {
					return regressErr(err)
				}
			}
			return reportComparison(cmd, regress.Compare(base, cur, o), &cf)
		},
	}
	s.add(cmd.Flags())
	cf.add(cmd.Flags())
	return cmd
}

// reportComparison prints the verdict table, writes the CSV and turns a
// change into exit status 1.
func reportComparison(cmd *cobra.Command, rep *regress.Report, cf *compareFlags) error {
	if err := rep.WriteTable(cmd.OutOrStdout(), cf.changed); err != nil {
		return err
	}
	if cf.csv != "" {
		var buf bytes.Buffer
		if err := rep.WriteCSV(&buf); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(cf.csv, buf.Bytes(), 0o644); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--csv: %w", err)}
		}
	}
	if !rep.OK() {
		return &exitError{code: 1}
	}
	return nil
}

func regressCommand() *cobra.Command {
	var rf runFlags
	var cf compareFlags
	var update bool
	cmd := &cobra.Command{
		Use:   "regress [flags] SUITE...",
		Short: "Run statistical regression suites: campaigns compared with their baselines",
		Long: `Regress reads statistical suites, one campaign per line: its baseline (a name
in the engine's store, or a file written by simswarm baseline export,
relative to the suite), then its working directory and command as simswarm
run --list takes them:

    aloha-regress  .  ./aloha -u Cmdenv -c Regress
    baselines/queuenet.json  ../queuenet  ./queuenet -c CQN --repeat=10

It runs every campaign as one campaign of many (embedded, or on a cluster
with --server), compares each one's results with its baseline as simswarm
compare does, and prints a verdict table. --update accepts the results as
the new baselines (and makes those that do not exist yet).
Exit status: 0 every campaign is the same as its baseline, 1 some changed or
failed, 2 usage, a suite error or an unknown baseline (nothing ran), 130
interrupted.`,
		Example: `  simswarm regress tests/statistical.txt
  simswarm regress --update tests/statistical.txt
  simswarm regress --alpha 0.001 --tolerance 1% -j 8 tests/statistical.txt`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("no suite given: name one or more statistical suite files")
			}
			if err := rf.refuseRunOnly("regress", false); err != nil {
				return err
			}
			co, err := cf.options()
			if err != nil {
				return err
			}
			o, err := rf.options()
			if err != nil {
				return err
			}
			var tests []regress.Test
			for _, suite := range args {
				t, err := regress.LoadSuite(suite, rf.results)
				if err != nil {
					return regressErr(err)
				}
				tests = append(tests, t...)
				results := rf.results
				if !filepath.IsAbs(results) {
					results = filepath.Join(filepath.Dir(suite), results)
				}
				if abs, err := filepath.Abs(results); err == nil {
					o.Outputs = append(o.Outputs, abs)
				}
			}
			// Baseline files --update writes never change what the next
			// run snapshots.
			for _, t := range tests {
				if regress.IsFile(t.Baseline) {
					if abs, err := filepath.Abs(t.Baseline); err == nil {
						o.Outputs = append(o.Outputs, abs)
					}
				}
			}
			var rep *regress.SuiteReport
			err = withClient(cmd, &rf, &o, func(ctx context.Context, c *campaign.Client) error {
				var err error
				rep, err = regress.RunSuite(ctx, c, tests, regress.SuiteOptions{Compare: co, Filter: cf.filter, Update: update, Out: cmd.OutOrStdout()})
				var ie *regress.InputError
				if errors.As(err, &ie) {
					return &exitError{code: 2, err: err}
				}
				return err
			})
			if err != nil {
				return err
			}
			if !rep.OK() {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	rf.add(f, true)
	f.Lookup("results").DefValue = "results/regress"
	_ = f.Set("results", "results/regress")
	f.Lookup("results").Usage = "where each campaign's result files land (one directory per line), relative to the suite's directory"
	f.StringVar(&cf.alpha, "alpha", "0.01", "family-wise error rate of each campaign's comparison (Holm's correction), between 0 and 1")
	f.StringVar(&cf.tolerance, "tolerance", "0", "relative difference of means that counts as the same (0.01 or 1%); for single runs, of the values (0: exact)")
	f.StringVar(&cf.filter, "filter", "", "compare only what this opp_scavetool filter expression matches")
	f.BoolVar(&update, "update", false, "accept the results as the new baselines (stored, or written to their files)")
	for _, name := range []string{"list", "detach", "dry-run", "json"} {
		_ = f.MarkHidden(name)
	}
	return cmd
}
