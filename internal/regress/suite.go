package regress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/simswarm/simswarm/internal/atomicfile"
	"github.com/simswarm/simswarm/internal/campaign"
	"github.com/simswarm/simswarm/internal/engine"
)

// Test is one line of a statistical suite: a campaign and the baseline
// its results are compared with.
type Test struct {
	Item     campaign.Item
	Baseline string // a stored baseline's name, or a file (see IsFile)
}

// IsFile reports whether a baseline reference names a file (it holds a
// slash or ends in .json) rather than a baseline in the engine's store.
func IsFile(ref string) bool {
	return strings.ContainsRune(ref, '/') || strings.ContainsRune(ref, filepath.Separator) || strings.HasSuffix(ref, ".json")
}

// LoadSuite reads a statistical suite: one campaign per line, its
// baseline first (a stored name, or a file relative to the suite), then
// its working directory and command as simswarm run --list takes them.
// Each test's results go to a directory of its own under results.
func LoadSuite(name, results string) ([]Test, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, &InputError{fmt.Errorf("read suite: %w", err)}
	}
	defer f.Close()
	items, leads, err := campaign.ParseLines(name, f, results, []string{"a baseline"})
	if err != nil {
		return nil, &InputError{err}
	}
	tests := make([]Test, len(items))
	for i, it := range items {
		ref := leads[i][0]
		if IsFile(ref) {
			if !filepath.IsAbs(ref) {
				ref = filepath.Join(filepath.Dir(name), ref)
			}
		} else if err := CheckName(ref); err != nil {
			return nil, &InputError{fmt.Errorf("%s: %v", it.Label, err)}
		}
		tests[i] = Test{Item: it, Baseline: ref}
	}
	return tests, nil
}

// Open reads a baseline by reference: a file, or a name in the store.
func Open(ctx context.Context, eng *engine.Engine, ref string) (*Baseline, error) {
	if IsFile(ref) {
		return LoadFile(ref)
	}
	return Load(ctx, eng, ref)
}

// Accept makes b the baseline ref names: it writes the file or stores it
// under the name.
func Accept(ctx context.Context, eng *engine.Engine, ref string, b *Baseline) error {
	if !IsFile(ref) {
		b.Name = ref
		return Save(ctx, eng, b)
	}
	if b.Name == "" || CheckName(b.Name) != nil {
		b.Name = strings.TrimSuffix(filepath.Base(ref), ".json")
		if CheckName(b.Name) != nil {
			b.Name = "baseline"
		}
	}
	data, err := b.Encode()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(ref), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(ref, data, 0o644)
}

// SuiteOptions say how a suite runs.
type SuiteOptions struct {
	Compare Options
	Filter  string // opp_scavetool's syntax, on both sides
	// Update accepts every test's results as its new baseline (a test
	// whose baseline does not exist yet gets one).
	Update bool
	Out    io.Writer
}

// Suite verdicts.
const (
	Pass  = "PASS"
	Fail  = "FAIL"
	Error = "ERROR"
)

// Outcome is one test's verdict.
type Outcome struct {
	Test    Test
	Verdict string
	Report  *Report // nil for Error
	Detail  string
	Updated bool
}

// SuiteReport is a suite run's outcome.
type SuiteReport struct {
	Outcomes          []Outcome
	Pass, Fail, Error int
}

// OK reports whether every test's results are the same as its baseline.
func (r *SuiteReport) OK() bool { return r.Fail == 0 && r.Error == 0 }

// RunSuite runs the tests' campaigns as one campaign of many on the
// client's engine, compares each test's results with its baseline and
// prints a verdict table. A baseline that does not exist is an input
// error found before anything runs (unless Update makes it).
func RunSuite(ctx context.Context, c *campaign.Client, tests []Test, o SuiteOptions) (*SuiteReport, error) {
	bases := make([]*Baseline, len(tests))
	for i, t := range tests {
		b, err := Open(ctx, c.Eng, t.Baseline)
		if err != nil {
			var ie *InputError
			if o.Update && (errors.Is(err, ErrUnknown) || errors.As(err, &ie) && errors.Is(err, os.ErrNotExist)) {
				continue
			}
			return nil, fmt.Errorf("%s: %w", t.Item.Label, err)
		}
		if o.Filter != "" {
			if b, err = Restrict(b, o.Filter); err != nil {
				return nil, err
			}
		}
		bases[i] = b
	}
	items := make([]campaign.Item, len(tests))
	for i, t := range tests {
		items[i] = t.Item
	}
	outs, err := c.RunItems(ctx, items)
	if err != nil {
		return nil, err
	}
	rep := &SuiteReport{}
	for i, t := range tests {
		oc := judge(ctx, t, bases[i], outs[i], o)
		if o.Update && oc.Verdict != Error && oc.cur != nil {
			oc.cur.Created = time.Now().UTC().Truncate(time.Second)
			if err := Accept(ctx, c.Eng, t.Baseline, oc.cur); err != nil {
				return rep, fmt.Errorf("%s: update baseline %s: %w", t.Item.Label, t.Baseline, err)
			}
			oc.Updated = true
		}
		switch oc.Verdict {
		case Pass:
			rep.Pass++
		case Fail:
			rep.Fail++
		default:
			rep.Error++
		}
		rep.Outcomes = append(rep.Outcomes, oc.Outcome)
	}
	if o.Out != nil {
		rep.print(o.Out)
	}
	return rep, nil
}

type judged struct {
	Outcome
	cur *Baseline
}

// judge compares what one test's campaign left with its baseline.
func judge(ctx context.Context, t Test, base *Baseline, out campaign.ItemOutcome, o SuiteOptions) judged {
	j := judged{Outcome: Outcome{Test: t, Verdict: Error}}
	switch {
	case out.Err != nil:
		j.Detail = firstLine(out.Err.Error())
		return j
	case out.Summary == nil:
		j.Detail = "did not run"
		return j
	case out.Summary.Failed > 0 || out.Summary.Cancelled > 0:
		j.Detail = fmt.Sprintf("%d of %d runs failed", out.Summary.Failed+out.Summary.Cancelled, out.Summary.Runs)
		return j
	}
	cur, err := Read(ctx, out.Summary.Results, o.Filter)
	if err != nil {
		j.Detail = firstLine(err.Error())
		return j
	}
	j.cur = cur
	if base == nil {
		j.Verdict, j.Detail = Pass, "no baseline yet"
		return j
	}
	j.Report = Compare(base, cur, o.Compare)
	j.Verdict = Pass
	if !j.Report.OK() {
		j.Verdict = Fail
	}
	j.Detail = j.Report.Summary()
	return j
}

// Summary says in a line how many series changed, naming the first few.
func (r *Report) Summary() string {
	var names []string
	for _, v := range r.Verdicts {
		if v.Outcome != Same {
			if len(names) == 3 {
				names = append(names, "...")
				break
			}
			names = append(names, v.Outcome+" "+v.Series.Module+"."+v.Series.Label())
		}
	}
	s := fmt.Sprintf("%d of %d series changed", r.Changed, len(r.Verdicts))
	if len(names) > 0 {
		s += ": " + strings.Join(names, ", ")
	}
	return s
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func (r *SuiteReport) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TEST\tBASELINE\tVERDICT\tDETAIL")
	for _, o := range r.Outcomes {
		detail := o.Detail
		if o.Updated {
			detail += " (baseline updated)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", o.Test.Item.Label, o.Test.Baseline, o.Verdict, detail)
	}
	tw.Flush()
	tests := "tests"
	if len(r.Outcomes) == 1 {
		tests = "test"
	}
	fmt.Fprintf(w, "suite: %d %s, %d PASS, %d FAIL, %d ERROR\n", len(r.Outcomes), tests, r.Pass, r.Fail, r.Error)
}
