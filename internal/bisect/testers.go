package bisect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/simswarm/simswarm/internal/campaign"
	"github.com/simswarm/simswarm/internal/fingerprint"
	"github.com/simswarm/simswarm/internal/regress"
	"github.com/simswarm/simswarm/internal/sweep"
)

// Command tests a commit by a command's exit status in its worktree, as
// git bisect run does: 0 good, 125 cannot be tested (skip), anything else
// bad. It runs on this machine, every commit of a round at once.
type Command struct {
	Argv    []string
	Workdir string // relative to the repository's top
}

// Describe names the test.
func (c *Command) Describe() string { return "exit status of " + commandLine(c.Argv) }

// Test runs the command in every tree at once.
func (c *Command) Test(ctx context.Context, trees []Tree) ([]Result, error) {
	out := make([]Result, len(trees))
	var wg sync.WaitGroup
	for i, t := range trees {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
			cmd.Dir = filepath.Join(t.Root, c.Workdir)
			var b bytes.Buffer
			cmd.Stdout, cmd.Stderr = &b, &b
			err := cmd.Run()
			var ee *exec.ExitError
			switch {
			case err == nil:
				out[i] = Result{State: Good, Detail: "exit 0"}
			case errors.As(err, &ee) && ee.ExitCode() == 125:
				out[i] = Result{State: Skip, Detail: "exit 125 (cannot be tested)" + lastLine(b.String())}
			case errors.As(err, &ee) && ee.ExitCode() > 0:
				out[i] = Result{State: Bad, Detail: fmt.Sprintf("exit %d", ee.ExitCode()) + lastLine(b.String())}
			default:
				out[i] = Result{State: Skip, Detail: "did not run: " + err.Error()}
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return out, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return ""
	}
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return ": " + s
}

// Compare tests a commit by running a campaign there on the engine and
// comparing its results with a baseline (regress.Compare): the same is
// good, a change is bad, a commit that does not build cannot be tested.
// Every commit of a round is one item of one campaign of many.
type Compare struct {
	Client   *campaign.Client
	Baseline *regress.Baseline
	Ref      string // the baseline as the user named it
	Argv     []string
	Workdir  string // relative to the repository's top
	Options  regress.Options
	Filter   string
	// Results holds one results directory per commit and command, kept
	// between bisects: a commit tested before runs nothing again.
	Results string
}

// Describe names the test.
func (c *Compare) Describe() string {
	return fmt.Sprintf("%s compared with baseline %s", commandLine(c.Argv), c.Ref)
}

// Test runs the campaign at every tree and compares.
func (c *Compare) Test(ctx context.Context, trees []Tree) ([]Result, error) {
	items := make([]campaign.Item, len(trees))
	sum := sha256.Sum256([]byte(c.Workdir + "\x00" + strings.Join(c.Argv, "\x00")))
	for i, t := range trees {
		items[i] = campaign.Item{Dir: filepath.Join(t.Root, c.Workdir), Argv: c.Argv, Label: short(t.Commit),
			Results: filepath.Join(c.Results, t.Commit+"-"+hex.EncodeToString(sum[:4]))}
	}
	outs, err := c.Client.RunItems(ctx, items)
	if err != nil {
		return nil, err
	}
	res := make([]Result, len(trees))
	for i, o := range outs {
		res[i] = c.judge(ctx, o)
	}
	return res, nil
}

func (c *Compare) judge(ctx context.Context, o campaign.ItemOutcome) Result {
	var be *campaign.BuildError
	switch {
	case errors.As(o.Err, &be):
		return Result{State: Skip, Detail: "does not build: " + be.Msg}
	case o.Err != nil:
		return Result{State: Bad, Detail: firstLine(o.Err.Error())}
	case o.Summary == nil:
		return Result{State: Skip, Detail: "did not run"}
	case o.Summary.Failed > 0:
		return Result{State: Bad, Detail: fmt.Sprintf("%d of %d runs failed", o.Summary.Failed, o.Summary.Runs)}
	}
	cur, err := regress.Read(ctx, o.Summary.Results, c.Filter)
	if err != nil {
		return Result{State: Bad, Detail: firstLine(err.Error())}
	}
	rep := regress.Compare(c.Baseline, cur, c.Options)
	if rep.OK() {
		return Result{State: Good, Detail: rep.Summary()}
	}
	var b strings.Builder
	_ = rep.WriteTable(&b, true)
	return Result{State: Bad, Detail: rep.Summary(), Report: b.String()}
}

// Fingerprints tests a commit by a fingerprint suite of the repository:
// every test meeting its expected result is good, any other bad, a
// commit that does not build cannot be tested. The suites of every commit
// of a round run as one campaign of many.
type Fingerprints struct {
	Client *campaign.Client
	Suite  string // relative to the repository's top
	// Root is the directory the suite's working directories are relative
	// to, relative to the repository's top ("" or "." for the top).
	Root    string
	Options fingerprint.Options // all but Suites
	// Program is the program of --program, or nil to find it per test.
	Program []string
	Results string
}

// Describe names the test.
func (f *Fingerprints) Describe() string { return "fingerprint suite " + f.Suite }

// Test runs every tree's suite as one campaign.
func (f *Fingerprints) Test(ctx context.Context, trees []Tree) ([]Result, error) {
	type part struct {
		items []fingerprint.Item
		first int
		err   error
	}
	parts := make([]part, len(trees))
	var list []campaign.Item
	for i, t := range trees {
		root := filepath.Join(t.Root, f.Root)
		o := f.Options
		o.Suites = []string{filepath.Join(t.Root, f.Suite)}
		o.Program = func(workdir string) ([]string, error) {
			if f.Program != nil {
				return f.Program, nil
			}
			return fingerprint.FindProgram(root, workdir)
		}
		_, items, err := fingerprint.Load(o)
		if err != nil {
			parts[i].err = err
			continue
		}
		fc := &fingerprint.Campaign{Root: root, Results: filepath.Join(f.Results, t.Commit)}
		parts[i] = part{items: items, first: len(list)}
		list = append(list, fc.ListItems(items)...)
	}
	var outs []campaign.ItemOutcome
	if len(list) > 0 {
		var err error
		if outs, err = f.Client.RunItems(ctx, list); err != nil {
			return nil, err
		}
	}
	res := make([]Result, len(trees))
	for i, p := range parts {
		if p.err != nil {
			res[i] = Result{State: Skip, Detail: "suite: " + firstLine(p.err.Error())}
			continue
		}
		res[i] = judgeSuite(p.items, outs[p.first:p.first+len(p.items)])
	}
	return res, nil
}

func judgeSuite(items []fingerprint.Item, outs []campaign.ItemOutcome) Result {
	var failed []string
	pass := 0
	for j, it := range items {
		var be *campaign.BuildError
		if errors.As(outs[j].Err, &be) {
			return Result{State: Skip, Detail: "does not build: " + be.Msg}
		}
		v := fingerprint.Judge(it.Test, fingerprint.Observe(outs[j]))
		if v.Outcome == fingerprint.Pass {
			pass++
			continue
		}
		failed = append(failed, fmt.Sprintf("  %s %s %s: %s", v.Outcome, it.Test.WorkDir, it.Test.Args, v.Reason))
	}
	detail := fmt.Sprintf("%d of %d tests PASS", pass, len(items))
	if len(failed) == 0 {
		return Result{State: Good, Detail: detail}
	}
	return Result{State: Bad, Detail: detail, Report: strings.Join(failed, "\n") + "\n"}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func commandLine(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = sweep.Quote(a)
	}
	return strings.Join(words, " ")
}
