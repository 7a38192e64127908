package campaign

import (
	"fmt"
	"math/big"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/omnetpp"
	"github.com/simswarm/simswarm/internal/project"
	"github.com/simswarm/simswarm/internal/sweep"
)

// DefaultMaxRuns bounds a campaign unless --max-runs says otherwise: a
// typo in a template (a zero too many, a forgotten variable) should cost a
// message, not the machine's memory or the cluster's week.
const DefaultMaxRuns = 1_000_000

func (o *Options) maxRuns() int {
	if o.MaxRuns > 0 {
		return o.MaxRuns
	}
	return DefaultMaxRuns
}

// tooMany is the refusal of a campaign by its size.
func (o *Options) tooMany(size *big.Int, what string) error {
	if size.Cmp(big.NewInt(int64(o.maxRuns()))) <= 0 {
		return nil
	}
	return setupErr("%s has %s runs, more than --max-runs %d: narrow it (-r, fewer values) or raise --max-runs", what, size, o.maxRuns())
}

// Precheck refuses what can be refused before an engine starts: a
// directory that is not one, a command that cannot be built, a run
// template larger than --max-runs. It costs milliseconds and no memory per
// run however large the template; Run checks all of it again.
func Precheck(o Options) error {
	fi, err := os.Stat(o.Dir)
	if err != nil || !fi.IsDir() {
		return nil // prepare says it with the reason
	}
	proj, err := project.Find(o.Dir)
	if err != nil {
		return &SetupError{Err: err}
	}
	cmd, err := command(proj, o.Argv)
	if err != nil {
		return &SetupError{Err: err}
	}
	o.selectTemplate(&cmd)
	if cmd.Kind == simswarm.KindTemplate && !o.DryRun {
		return o.tooMany(sweep.Size(cmd), "the run template ("+sweep.Factors(cmd)+")")
	}
	return nil
}

// runSet is a campaign's runs in order: their numbers and iteration
// variables. A template's runs are 0..n-1 with variables computed when
// asked, so that nothing is held per run; a program's run list is held as
// the program gave it.
type runSet struct {
	tmpl   *simswarm.Command // template campaigns
	n      int
	list   []int    // run list campaigns
	vars   []string // may be shorter than list, or nil
	idents []string // parallel to list, or nil: runs known by number
}

func templateRuns(c simswarm.Command) runSet {
	if runs, ok := templateSelection(c); ok {
		vars := make([]string, len(runs))
		for i, n := range runs {
			vars[i] = sweep.Describe(c, n)
		}
		return listRuns(&simswarm.RunList{Runs: runs, Vars: vars})
	}
	return runSet{tmpl: &c, n: sweep.Count(c)}
}

func listRuns(l *simswarm.RunList) runSet {
	s := runSet{list: l.Runs, vars: l.Vars, n: len(l.Runs)}
	if len(l.Idents) == len(l.Runs) {
		s.idents = l.Idents
	}
	return s
}

// Ident is what decides the result of the run at position i ("" where the
// program did not tell: the run is known by its number).
func (s runSet) Ident(i int) string {
	if i < len(s.idents) {
		return s.idents[i]
	}
	return ""
}

func (s runSet) Len() int { return s.n }

// Run is the run number at position i.
func (s runSet) Run(i int) int {
	if s.tmpl != nil {
		return i
	}
	return s.list[i]
}

// Vars describes the iteration variables of the run at position i ("" when
// the program did not tell them).
func (s runSet) Vars(i int) string {
	if s.tmpl != nil {
		return sweep.Describe(*s.tmpl, i)
	}
	if i < len(s.vars) {
		return s.vars[i]
	}
	return ""
}

func (c *Client) checkRuns(p *prepared) error {
	if p.runs.Len() == 0 {
		return setupErr("the run list is empty: %s selects no runs", describe(p.cmd))
	}
	if err := sharedOutputFile(p); err != nil {
		return err
	}
	if c.Opt.DryRun {
		return nil // printed as it is expanded, in bounded memory
	}
	if p.cmd.Kind == simswarm.KindTemplate {
		return c.Opt.tooMany(sweep.Size(p.cmd), "the run template ("+sweep.Factors(p.cmd)+")")
	}
	return c.Opt.tooMany(big.NewInt(int64(p.runs.Len())), fmt.Sprintf("the run list of %s", describe(p.cmd)))
}

func bigOf(decimal string) *big.Int {
	n, _ := new(big.Int).SetString(decimal, 10)
	if n == nil {
		n = new(big.Int)
	}
	return n
}

// indexer returns the lookup of a run number's position: the number itself
// for a template, a binary search in a sorted run list, a map otherwise.
func (s runSet) indexer() func(run int) (int, bool) {
	if s.tmpl != nil {
		return func(run int) (int, bool) { return run, run >= 0 && run < s.n }
	}
	if sort.IntsAreSorted(s.list) {
		return func(run int) (int, bool) {
			i := sort.SearchInts(s.list, run)
			return i, i < len(s.list) && s.list[i] == run
		}
	}
	pos := make(map[int]int, len(s.list))
	for i, n := range s.list {
		if _, dup := pos[n]; !dup {
			pos[n] = i
		}
	}
	return func(run int) (int, bool) { i, ok := pos[run]; return i, ok }
}

// perRunVariables are the OMNeT++ variables that can tell one run's file
// name from another's.
var perRunVariables = []string{"${runnumber}", "${runid}", "${repetition}", "${iterationvars", "${seedset}", "${datetime}", "${processid}"}

// sharedOutputFile refuses, before anything runs, an OMNeT++ output file
// option that names one file for every run of a campaign of several
// (--output-scalar-file=${resultdir}/same.sca): each run would overwrite
// the last one's, and only one file would be left.
func sharedOutputFile(p *prepared) error {
	if p.cmd.Kind != simswarm.KindOmnetpp || p.runs.Len() < 2 {
		return nil
	}
	for _, opt := range []string{"--output-scalar-file", "--output-vector-file"} {
		v, ok := omnetpp.OptionValue(p.cmd.Argv, opt)
		if !ok || slices.ContainsFunc(perRunVariables, func(x string) bool { return strings.Contains(v, x) }) {
			continue
		}
		return setupErr("runs %d and %d (and every other) would all write %s: %s=%s names no per-run variable; put ${runnumber} in it, or leave the option out for OMNeT++'s per-run names",
			p.runs.Run(0), p.runs.Run(1), strings.TrimPrefix(v, "${resultdir}/"), opt, v)
	}
	return nil
}
