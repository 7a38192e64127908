package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"time"

	"github.com/simswarm/simswarm"

	"github.com/simswarm/simswarm/internal/bisect"
	"github.com/simswarm/simswarm/internal/campaign"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/fingerprint"
	"github.com/simswarm/simswarm/internal/gitrepo"
	"github.com/simswarm/simswarm/internal/regress"
	"github.com/simswarm/simswarm/internal/shellwords"
	"github.com/spf13/cobra"
)

func bisectCommand() *cobra.Command {
	var rf runFlags
	var cf compareFlags
	var baseline, suite, program string
	var slots int
	cmd := &cobra.Command{
		Use:   "bisect [flags] GOOD BAD [-- COMMAND...]",
		Short: "Find the first commit that fails a test, testing many commits at once",
		Long: `Bisect finds the first commit between GOOD and BAD (along the first-parent
line) that fails a test:

  --compare BASELINE -- SIMCOMMAND   the campaign SIMCOMMAND run at the commit is
                                     compared with BASELINE (simswarm compare)
  --fingerprints SUITE.csv           the repository's fingerprint suite passes
  -- COMMAND                         COMMAND exits 0 (good), 125 (cannot be
                                     tested) or otherwise (bad), as with git
                                     bisect run; it runs here, not on the engine

Each round tests up to --slots commits (default: -j, or with --server the
free slots of the cluster's runners) spread over the commits still in
doubt, all at once (the first round also tests GOOD and BAD), so a range of
n commits takes about log base slots+1 of n rounds. Each commit is checked
out into a worktree of its own beside your checkout (never in it) and built
on the engine by its content: a commit built once, in any bisect, is not
built again. A commit that does not build cannot be tested and is skipped.
The command runs in the directory of -C (default: this one) in each commit.
Exit status: 0 the first bad commit found, 1 skipped commits hide which is
first, 2 usage, unknown revisions or baseline, GOOD not an ancestor of BAD,
uncommitted changes, GOOD or BAD that cannot be tested or whose verdict is
not what it says (nothing was bisected), 130 interrupted.`,
		Example: `  simswarm bisect v1.0 HEAD --compare aloha-v1 -- ./aloha -u Cmdenv -c Regress
  simswarm bisect --slots 8 HEAD~64 HEAD --fingerprints tests/fingerprint/simple.csv
  simswarm bisect --dry-run HEAD~64 HEAD --compare aloha-v1 -- ./aloha -c Regress
  simswarm bisect v1.0 HEAD -- make test`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var testArgv []string
			if at := cmd.ArgsLenAtDash(); at >= 0 {
				args, testArgv = args[:at], args[at:]
			}
			if len(args) != 2 {
				return usageErr("bisect needs GOOD and BAD, two revisions (got %d arguments before --)", len(args))
			}
			switch {
			case baseline != "" && suite != "":
				return usageErr("--compare and --fingerprints are two tests: give one")
			case suite != "" && len(testArgv) > 0:
				return usageErr("--fingerprints runs the suite's own commands: give no command after --")
			case suite == "" && len(testArgv) == 0:
				return usageErr("no test: give --compare BASELINE -- SIMCOMMAND, --fingerprints SUITE.csv, or -- COMMAND")
			}
			if err := rf.refuseRunOnly("bisect", true); err != nil {
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
			if !cmd.Flags().Changed("slots") {
				slots = rf.slots
			}
			if slots < 1 || slots > 4096 {
				return usageErr("invalid --slots %d: commits tested at once, 1 to 4096", slots)
			}
			ctx, cancel := untilSignal()
			defer cancel()
			dir, err := filepath.Abs(rf.dir)
			if err != nil {
				return err
			}
			if real, err := filepath.EvalSymlinks(dir); err == nil {
				dir = real
			}
			repo, err := gitrepo.Open(ctx, dir)
			if err != nil {
				return usageErr("%v", err)
			}
			workdir, err := filepath.Rel(repo.Root, dir)
			if err != nil {
				return err
			}
			state := rf.state
			if state == "" {
				state = defaultState()
			}
			bo := bisect.Options{Repo: repo, Good: args[0], Bad: args[1], Slots: slots, Out: cmd.OutOrStdout(),
				Dir: bisect.DirFor(state, repo)}
			rng, err := bisect.Prepare(ctx, bo)
			if err != nil {
				return bisectErr(err)
			}
			var fpt *bisect.Fingerprints
			if suite != "" {
				if fpt, err = fingerprintTest(repo, suite, program); err != nil {
					return err
				}
			}
			if baseline != "" && regress.IsFile(baseline) {
				if _, err := regress.LoadFile(baseline); err != nil {
					return usageErr("%v", err)
				}
			}
			if rf.dryRun {
				bo.Tester = testOf(baseline, fpt, testArgv, workdir)
				bisect.DryRun(ctx, bo, rng)
				return nil
			}
			if baseline == "" && suite == "" {
				bo.Tester = testOf("", nil, testArgv, workdir)
				return finishBisect(bisect.Run(ctx, bo, rng))
			}
			o.ItemBuildFailures = true
			var rep *bisect.Report
			err = withClient(cmd, &rf, &o, func(ctx context.Context, c *campaign.Client) error {
				bo.Builds = func(ctx context.Context) (map[string]time.Time, error) { return builds(ctx, c.Eng) }
				if rf.conn.server != "" && !cmd.Flags().Changed("slots") {
					if free := freeSlots(ctx, c.Eng); free > 0 {
						bo.Slots = free
					}
				}
				if fpt != nil {
					fpt.Client, fpt.Results = c, filepath.Join(bo.Dir, "fingerprints")
					bo.Tester = fpt
				} else {
					base, err := loadBaseline(ctx, func() (*engine.Engine, error) { return c.Eng, nil }, baseline)
					if err != nil {
						return bisectErr(err)
					}
					if cf.filter != "" {
						if base, err = regress.Restrict(base, cf.filter); err != nil {
							return bisectErr(err)
						}
					}
					bo.Tester = &bisect.Compare{Client: c, Baseline: base, Ref: baseline, Argv: testArgv, Workdir: workdir,
						Options: co, Filter: cf.filter, Results: filepath.Join(bo.Dir, "results")}
				}
				var err error
				rep, err = bisect.Run(ctx, bo, rng)
				return bisectErr(err)
			})
			if err != nil {
				return err
			}
			return finishBisect(rep, nil)
		},
	}
	f := cmd.Flags()
	rf.add(f, true)
	f.IntVar(&slots, "slots", 0, "commits tested at once in a round, 1 to 4096 (default: the run slots, -j; with --server the runners' free slots)")
	f.StringVar(&baseline, "compare", "", "test: compare the campaign of the command after -- with `BASELINE` (a stored name or an exported file)")
	f.StringVar(&suite, "fingerprints", "", "test: the repository's fingerprint suite `SUITE` (a CSV file) passes")
	f.StringVar(&program, "program", "", "with --fingerprints: the program that runs a test (default: found in each test's working directory)")
	cf.add(f)
	_ = f.MarkHidden("csv")
	for _, name := range []string{"list", "detach", "json", "results", "changed"} {
		_ = f.MarkHidden(name)
	}
	return cmd
}

// fingerprintTest is the --fingerprints test: the suite and the root its
// working directories are relative to, both inside the repository.
func fingerprintTest(repo *gitrepo.Repo, suite, program string) (*bisect.Fingerprints, error) {
	abs, err := filepath.Abs(suite)
	if err != nil {
		return nil, err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	rel, err := filepath.Rel(repo.Root, abs)
	if err != nil || strings.HasPrefix(rel, "..") {
		return nil, usageErr("--fingerprints %s is not in the repository %s", suite, repo.Root)
	}
	root, err := fingerprint.FindRoot(abs)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	rootRel, err := filepath.Rel(repo.Root, root)
	if err != nil || strings.HasPrefix(rootRel, "..") {
		return nil, usageErr("the suite's working directories are relative to %s, outside the repository %s", root, repo.Root)
	}
	t := &bisect.Fingerprints{Suite: rel, Root: rootRel}
	if program != "" {
		words, err := shellwords.Split(program)
		if err != nil || len(words) == 0 {
			return nil, usageErr("invalid --program %q: give the program and its own arguments", program)
		}
		t.Program = words
	}
	return t, nil
}

// testOf is the test as --dry-run names it: it runs nothing, so it
// needs no engine.
func testOf(baseline string, fpt *bisect.Fingerprints, argv []string, workdir string) bisect.Tester {
	switch {
	case fpt != nil:
		return fpt
	case baseline != "":
		return &bisect.Compare{Ref: baseline, Argv: argv, Workdir: workdir}
	}
	return &bisect.Command{Argv: argv, Workdir: workdir}
}

// freeSlots are the run slots a cluster's runners have free now: a
// bisect's rounds are as wide as the commits the cluster can test at once.
func freeSlots(ctx context.Context, eng *engine.Engine) int {
	ws, err := eng.Workers(ctx)
	if err != nil {
		return 0
	}
	free := 0
	for _, w := range ws {
		if w.Role == simswarm.RoleRunner && !w.Draining && w.Slots > w.Busy {
			free += w.Slots - w.Busy
		}
	}
	return min(free, 4096)
}

// builds lists the builds the engine made, by when each finished: a
// build answered from the cache is none.
func builds(ctx context.Context, eng *engine.Engine) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := eng.Builds(ctx, func(key string, b *simswarm.BuildRecord) {
		if !b.Cached && b.State != simswarm.BuildRunning && !strings.HasPrefix(key, "last.") {
			out[key] = b.Finished
		}
	})
	return out, err
}

// bisectErr gives a bisect's input errors exit status 2, and an
// interrupted one 130.
func bisectErr(err error) error {
	var bi *bisect.InputError
	var ri *regress.InputError
	switch {
	case errors.As(err, &bi) || errors.As(err, &ri):
		return &exitError{code: 2, err: err}
	case errors.Is(err, context.Canceled):
		return &exitError{code: 130, err: errors.New("interrupted")}
	}
	return err
}

func finishBisect(rep *bisect.Report, err error) error {
	if err != nil {
		return bisectErr(err)
	}
	if rep.First == "" {
		return &exitError{code: 1}
	}
	return nil
}
