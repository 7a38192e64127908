package fingerprint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/simswarm/simswarm/internal/atomicfile"
	"github.com/simswarm/simswarm/internal/units"
)

// Item is one selected test as a run of a campaign: where it runs, relative
// to the project root, and its whole command line.
type Item struct {
	Test    *Test
	Workdir string
	Argv    []string
}

// Campaigner runs the items as one campaign and says what each left behind,
// in the items' order. Runs it already has results for are reused, not run
// again.
type Campaigner interface {
	RunItems(ctx context.Context, items []Item) ([]Observed, error)
}

// Options of a suite run.
type Options struct {
	Suites    []string // CSV files
	Selection Selection
	// Program returns the program (and any arguments of its own, e.g.
	// opp_run's -l and -n) that runs a test in workdir.
	Program      func(workdir string) ([]string, error)
	CPUTimeLimit time.Duration
	Profile      Profile   // what the suite's own tool adds (INET's calculator)
	Update       bool      // rewrite the suites in place with the computed fingerprints
	Out          io.Writer // the verdict table and summary
}

// Report is a suite run's outcome.
type Report struct {
	Verdicts []Verdict
	Pass     int
	Fail     int
	Error    int
	Written  []string // files written beside the suites
	Executed int      // tests whose simulation ran this time
}

// OK reports whether every test met its expected result.
func (r *Report) OK() bool { return r.Fail == 0 && r.Error == 0 }

// Load reads the suites, refusing one named twice, and returns the selected
// tests as items. Nothing runs; every error names its file and line.
func Load(opts Options) ([]*Suite, []Item, error) {
	if len(opts.Suites) == 0 {
		return nil, nil, errors.New("no suite given: name one or more fingerprint CSV files")
	}
	seen := map[string]string{}
	var suites []*Suite
	var items []Item
	for _, name := range opts.Suites {
		abs, err := filepath.Abs(name)
		if err != nil {
			return nil, nil, err
		}
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			abs = real
		}
		if prev, ok := seen[abs]; ok {
			return nil, nil, fmt.Errorf("%s: the same suite is given twice (also as %s)", name, prev)
		}
		seen[abs] = name
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, nil, fmt.Errorf("read suite: %w", err)
		}
		s, err := Parse(name, bytes.NewReader(data))
		if err != nil {
			return nil, nil, err
		}
		suites = append(suites, s)
		for _, t := range s.Tests {
			if !opts.Selection.Has(t) {
				continue
			}
			args, err := t.CommandArgs(opts.CPUTimeLimit, opts.Profile)
			if err != nil {
				return nil, nil, err
			}
			if args == nil {
				continue // none of its fingerprints is checked
			}
			prog, err := opts.Program(t.WorkDir)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", t.Where(), err)
			}
			items = append(items, Item{Test: t, Workdir: t.WorkDir, Argv: append(append([]string{}, prog...), args...)})
		}
	}
	if len(items) == 0 {
		return nil, nil, errors.New("no test is selected: check --match, --tags and the ingredient filters")
	}
	return suites, items, nil
}

// Run runs the selected tests of the suites as one campaign, prints the
// verdict table and writes the UPDATED, FAILED and ERROR files beside each
// suite (and, with Update, the suite itself).
func Run(ctx context.Context, c Campaigner, opts Options) (*Report, error) {
	suites, items, err := Load(opts)
	if err != nil {
		return nil, err
	}
	obs, err := c.RunItems(ctx, items)
	if err != nil {
		return nil, err
	}
	if len(obs) != len(items) {
		return nil, fmt.Errorf("campaign answered %d of %d tests", len(obs), len(items))
	}
	rep := &Report{}
	byTest := map[*Test]Verdict{}
	for i, it := range items {
		v := Judge(it.Test, obs[i])
		if obs[i].Executed {
			rep.Executed++
		}
		rep.Verdicts = append(rep.Verdicts, v)
		byTest[it.Test] = v
		switch v.Outcome {
		case Pass:
			rep.Pass++
		case Fail:
			rep.Fail++
		default:
			rep.Error++
		}
	}
	if opts.Out != nil {
		printTable(opts.Out, rep)
	}
	update := func(t *Test) []string {
		if v, ok := byTest[t]; ok {
			return v.Updated()
		}
		return nil
	}
	for _, s := range suites {
		files, err := writeOutputs(s, byTest, update, opts.Update)
		rep.Written = append(rep.Written, files...)
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// sibling is INET's name for a file beside a suite: x.csv ->
// x.csv.UPDATED, which INET's .gitignore ignores (*.UPDATED, *.FAILED).
func sibling(suite, kind string) string { return suite + "." + kind }

// Outputs are the files Run may write beside the suites.
func Outputs(suites []string) []string {
	var out []string
	for _, s := range suites {
		if abs, err := filepath.Abs(s); err == nil {
			s = abs
		}
		for _, kind := range []string{"UPDATED", "FAILED", "ERROR"} {
			out = append(out, sibling(s, kind))
		}
	}
	return out
}

func writeOutputs(s *Suite, byTest map[*Test]Verdict, update func(*Test) []string, inPlace bool) ([]string, error) {
	var failed, errored []*Test
	changed := false
	for _, t := range s.Tests {
		v, ok := byTest[t]
		if !ok {
			continue
		}
		if fps := update(t); fps != nil && !slices.Equal(fps, t.Fingerprints) {
			changed = true
		}
		// As INET's tool lists them: every test whose fingerprints did not
		// match, and every test whose simulation failed, whatever was
		// expected of it.
		switch v.Got {
		case Fail:
			failed = append(failed, t)
		case Error:
			errored = append(errored, t)
		}
	}
	var written []string
	write := func(name string, fill func(io.Writer) error) error {
		var buf bytes.Buffer
		if err := fill(&buf); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		written = append(written, name)
		return nil
	}
	// An UPDATED, FAILED or ERROR file left from an earlier run would tell
	// of changes and failures that are gone: each is written when it has
	// something to say (UPDATED: a fingerprint changed, as INET's tool
	// writes it) and removed when it has not.
	for _, f := range []struct {
		kind string
		say  bool
		fill func(io.Writer) error
	}{
		{"UPDATED", changed, func(w io.Writer) error { return s.WriteTo(w, update) }},
		{"FAILED", len(failed) > 0, func(w io.Writer) error { return s.Subset(w, "# Failures:", failed, nil) }},
		{"ERROR", len(errored) > 0, func(w io.Writer) error { return s.Subset(w, "# Errors:", errored, nil) }},
	} {
		name := sibling(s.Path, f.kind)
		if f.say {
			if err := write(name, f.fill); err != nil {
				return written, err
			}
		} else if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return written, err
		}
	}
	if inPlace {
		if err := write(s.Path, func(w io.Writer) error { return s.WriteTo(w, update) }); err != nil {
			return written, err
		}
	}
	return written, nil
}

func printTable(w io.Writer, rep *Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TEST\tEXPECTED\tGOT\tVERDICT\tTIME\tDETAIL")
	for _, v := range rep.Verdicts {
		t := v.Test
		detail := v.Reason
		if v.Outcome == Pass {
			detail = ""
		}
		took := v.Wall.Round(time.Millisecond).String()
		if v.Reused {
			took += " (reused)"
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\t%s\t%s\n", t.WorkDir, t.Args, t.Expected, v.Got, v.Outcome,
			took, oneLine(detail))
	}
	tw.Flush()
	reused := 0
	for _, v := range rep.Verdicts {
		if v.Reused {
			reused++
		}
	}
	fmt.Fprintf(w, "fingerprints: %s, %d PASS, %d FAIL, %d ERROR; %d run, %s reused\n",
		units.Count(len(rep.Verdicts), "test"), rep.Pass, rep.Fail, rep.Error, rep.Executed, units.Count(reused, "verdict"))
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}
