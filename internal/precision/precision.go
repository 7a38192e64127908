package precision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/campaign"
	"github.com/simswarm/simswarm/internal/omnetpp"
	"github.com/simswarm/simswarm/internal/project"
	"github.com/simswarm/simswarm/internal/results"
	"github.com/simswarm/simswarm/internal/sweep"
	"github.com/simswarm/simswarm/internal/units"
)

// Spec is what simswarm run --until asks.
type Spec struct {
	Targets []Target // all must be met (several --until flags)
	Max     int      // repetitions per combination at most (--max-repetitions)
}

// DefaultMax is --max-repetitions when not given.
const DefaultMax = 100

func usage(format string, a ...any) error {
	return &campaign.SetupError{Err: fmt.Errorf(format, a...)}
}

// runNumbers is the form of an OMNeT++ run filter made of run numbers and
// ranges ("0..9", "3,5"), as opposed to an expression.
var runNumbers = regexp.MustCompile(`^[0-9\s,.]+$`)

// Check refuses, before an engine starts, what cannot grow in rounds:
// argv is the simulation command, dir the simulation's directory.
func Check(dir string, argv []string, spec Spec) error {
	if len(spec.Targets) == 0 {
		return usage("--max-repetitions needs --until: it bounds the rounds of a precision target")
	}
	if spec.Max < 2 {
		return usage("--max-repetitions must be at least 2 (a confidence interval needs two repetitions), not %d", spec.Max)
	}
	if spec.Max > units.MaxRepetitions {
		return usage("--max-repetitions must be at most %d, not %d", units.MaxRepetitions, spec.Max)
	}
	proj, err := project.Find(dir)
	if err != nil {
		return &campaign.SetupError{Err: err}
	}
	if proj.HasRunTemplate() {
		cmd := proj.Config.Run.Command
		if !strings.Contains(cmd, "{repetition}") && !strings.Contains(cmd, "{run}") {
			return usage("--until needs repetitions that differ, but simswarm.toml's run.command uses neither {repetition} nor {run}: every repetition would compute the same thing; seed the simulation with {repetition}")
		}
		return nil
	}
	if len(argv) == 0 {
		return nil // campaign says what is missing
	}
	if _, ok := omnetpp.OptionValue(argv, "--repeat"); ok {
		return usage("--until decides the repetitions: remove --repeat from the simulation command (--max-repetitions bounds them)")
	}
	if f, _, found := omnetpp.RunFilter(argv); found && runNumbers.MatchString(f) {
		return usage("--until selects runs by repetition: give -r as an expression over iteration variables (-r '$numHosts==10'), not run numbers (%q), which change with the number of repetitions", f)
	}
	return nil
}

// Report is what the rounds came to.
type Report struct {
	Rounds       []Round       `json:"rounds"`
	Combinations []Combination `json:"combinations"`
	Targets      []string      `json:"targets"`
	Max          int           `json:"max_repetitions"`
	Met          bool          `json:"met"` // every combination reached every target
	Results      string        `json:"results"`
	// Failed is the summary of a round in which runs failed: the rounds
	// stopped there.
	Failed *campaign.Summary `json:"failed,omitempty"`
}

// Round is one campaign of the rounds.
type Round struct {
	Campaign     string  `json:"campaign"`
	Combinations int     `json:"combinations"` // combinations given repetitions
	Runs         int     `json:"runs"`
	Executed     int     `json:"executed"`
	Cached       int     `json:"cached"`
	Wall         float64 `json:"wall_seconds"`
}

// Combination is one combination of iteration variables at the end.
type Combination struct {
	Vars        []results.Attr `json:"vars"`
	Repetitions int            `json:"repetitions"`
	Targets     []Reached      `json:"targets"`
}

// Reached is where one combination got for one target.
type Reached struct {
	Target    string `json:"target"`
	Scalar    string `json:"scalar"`
	N         int    `json:"n"` // values of the scalar (normally one per repetition)
	Mean      number `json:"mean"`
	HalfWidth number `json:"half_width"`
	Precision string `json:"precision"` // as the target is written: "3.1%" or the half-width
	Met       bool   `json:"met"`
}

// number is a float that is null in JSON when it is not finite (a mean of
// no values, the interval of one).
type number float64

func (n number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}

// combo is what the rounds know of one combination of iteration variables.
type combo struct {
	key   string
	vars  []results.Attr
	reps  int // repetitions asked for so far: 0 .. reps-1
	accs  []results.Acc
	first int // lowest run number seen: combinations are shown in run order
}

// rounds carries the state between rounds.
type rounds struct {
	c      *campaign.Client
	spec   Spec
	out    io.Writer
	tmpl   *simswarm.Command // template command (numbering only), nil for OMNeT++
	globs  []string          // a template's [results] files
	argv   []string          // OMNeT++: the command without -r
	filter string            // the user's own -r expression
	keys   map[string]bool   // run keys of the rounds' succeeded runs
	combos []*combo
	byKey  map[string]*combo
	dir    string
	seen   map[string]bool // scalars recorded, for the message when a target names none
}

// Run grows the campaign of c (its Options: the command, directory,
// results) in rounds until every combination reaches every target or has
// spec.Max repetitions. A round's runs are the repetitions it adds, picked
// from a campaign of spec.Max repetitions so that a run's number, and so
// its seeds and its key, are the same in every round: nothing done reruns.
func Run(ctx context.Context, c *campaign.Client, spec Spec) (*Report, error) {
	r := &rounds{c: c, spec: spec, out: c.Opt.Stdout, keys: map[string]bool{}, byKey: map[string]*combo{}}
	if r.out == nil {
		r.out = io.Discard
	}
	proj, err := project.Find(c.Opt.Dir)
	if err != nil {
		return nil, &campaign.SetupError{Err: err}
	}
	if proj.HasRunTemplate() {
		r.tmpl = &simswarm.Command{Kind: simswarm.KindTemplate, Vars: proj.Config.Run.Vars, Repeat: spec.Max}
		r.globs = proj.Config.Results.Files
	} else {
		r.filter, r.argv, _ = omnetpp.RunFilter(c.Opt.Argv)
	}
	rep := &Report{Max: spec.Max}
	for _, t := range spec.Targets {
		rep.Targets = append(rep.Targets, t.Text)
	}
	first := min(FirstRound, spec.Max)
	grow := map[string][2]int{} // combination key -> repetitions [lo, hi) to add
	executed := 0
	// Once runs executed, no error may claim that nothing was run.
	ran := func(err error) error {
		if err == nil || executed == 0 || errors.Is(err, campaign.ErrInterrupted) {
			return err
		}
		return &campaign.RanError{Err: err, Executed: executed}
	}
	for round := 1; ; round++ {
		opt := c.Opt
		want := 0
		if round == 1 {
			r.selectFirst(&opt, first)
		} else {
			want = r.selectGrowth(&opt, grow)
		}
		sum, err := (&campaign.Client{Eng: c.Eng, Opt: opt}).Run(ctx)
		if err == nil && opt.DryRun {
			fmt.Fprintf(r.out, "--until: this is the first round (%d repetitions of every combination); the next rounds depend on its results\n", first)
			if others := otherCampaigns(sum.Results, sum.Campaign); others != "" {
				fmt.Fprintf(r.out, "--until: the next rounds run other run numbers in %s and may replace files there of %s\n", sum.Results, others)
			}
		}
		if sum != nil {
			executed += sum.Executed
		}
		if err != nil || opt.DryRun {
			return nil, ran(err)
		}
		if err := r.collect(ctx, sum.Campaign); err != nil {
			return nil, ran(err)
		}
		rep.Results, r.dir = sum.Results, sum.Results
		rep.Rounds = append(rep.Rounds, Round{Campaign: sum.Campaign, Combinations: len(grow),
			Runs: sum.Runs, Executed: sum.Executed, Cached: sum.Cached, Wall: sum.Wall})
		if sum.Failed > 0 || sum.Cancelled > 0 {
			rep.Failed = sum
			return rep, nil
		}
		if want > 0 && sum.Runs != want {
			return rep, ran(usage("round %d: the run filter selected %d runs where %d repetitions were asked for: the iteration variables' values did not match as OMNeT++ compares them (-r %q)",
				round, sum.Runs, want, roundFilter(opt.Argv)))
		}
		if err := r.read(ctx, round == 1); err != nil {
			return rep, ran(err)
		}
		if round == 1 {
			for _, cb := range r.combos {
				cb.reps = max(cb.reps, first)
			}
		} else {
			for k, g := range grow {
				r.byKey[k].reps = g[1]
			}
		}
		if round == 1 {
			rep.Rounds[0].Combinations = len(r.combos)
		}
		grow = r.plan()
		fmt.Fprintf(r.out, "round %d: %s (%d executed, %d already done) in %.1fs; %d of %d combinations at target\n",
			round, units.Count(sum.Runs, "run"), sum.Executed, sum.Cached, sum.Wall, r.metCount(), len(r.combos))
		if len(grow) == 0 {
			break
		}
	}
	rep.Combinations, rep.Met = r.final()
	return rep, nil
}

// otherCampaigns names the campaigns other than id that own files in the
// results directory dir, with how many, as a dry run says it ("" : none).
func otherCampaigns(dir, id string) string {
	idx, err := results.LoadProvenance(dir)
	if err != nil {
		return ""
	}
	count := map[string]int{}
	for _, pr := range idx.Records {
		if pr.Campaign == id {
			continue
		}
		for _, f := range pr.Files {
			if idx.Owner(f) == pr {
				count[pr.Campaign]++
			}
		}
	}
	var parts []string
	for c, n := range count {
		parts = append(parts, fmt.Sprintf("campaign %s (%d files)", c, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// roundFilter is the -r of a round's OMNeT++ command, for messages.
func roundFilter(argv []string) string {
	f, _, _ := omnetpp.RunFilter(argv)
	return f
}

// selectFirst gives every combination repetitions 0 .. n-1.
func (r *rounds) selectFirst(opt *campaign.Options, n int) {
	if r.tmpl != nil {
		opt.Repeat = r.spec.Max
		opt.Runs = r.templateRuns(func(string, int) bool { return true }, n)
		return
	}
	r.setFilter(opt, "$repetition<"+strconv.Itoa(n))
}

// selectGrowth selects the repetitions grow adds and returns how many runs
// that is.
func (r *rounds) selectGrowth(opt *campaign.Options, grow map[string][2]int) int {
	want := 0
	for _, g := range grow {
		want += g[1] - g[0]
	}
	if r.tmpl != nil {
		opt.Repeat = r.spec.Max
		opt.Runs = r.templateRuns(func(key string, rep int) bool {
			g, ok := grow[key]
			return ok && rep >= g[0] && rep < g[1]
		}, r.spec.Max)
		return want
	}
	// One term per combination, in the order the combinations came: an
	// OMNeT++ run filter substitutes $name by the value as -q runs prints
	// it (strings with their quotes), so the values compare as written.
	var terms []string
	for _, cb := range r.combos {
		g, ok := grow[cb.key]
		if !ok {
			continue
		}
		var parts []string
		for _, a := range cb.vars {
			parts = append(parts, "$"+a.Name+"=="+a.Value)
		}
		parts = append(parts, "$repetition>="+strconv.Itoa(g[0]), "$repetition<"+strconv.Itoa(g[1]))
		terms = append(terms, "("+strings.Join(parts, " && ")+")")
	}
	r.setFilter(opt, strings.Join(terms, " || "))
	return want
}

// setFilter makes the round's OMNeT++ command: the user's command with
// --repeat fixed at the maximum and -r the round's selection, within the
// user's own -r expression.
func (r *rounds) setFilter(opt *campaign.Options, sel string) {
	if r.filter != "" {
		sel = "(" + r.filter + ") && (" + sel + ")"
	}
	argv := append([]string{r.argv[0], "--repeat=" + strconv.Itoa(r.spec.Max)}, r.argv[1:]...)
	opt.Argv = append(argv, "-r", sel)
}

// templateRuns lists the template runs whose combination and repetition
// pass keep, repetitions below limit only.
func (r *rounds) templateRuns(keep func(key string, rep int) bool, limit int) []int {
	runs := []int{}
	n := sweep.Count(*r.tmpl)
	for i := 0; i < n; i++ {
		vals := sweep.Values(*r.tmpl, i)
		rep, _ := strconv.Atoi(vals[len(vals)-1][1])
		if rep >= limit {
			continue
		}
		var vars []results.Attr
		for _, kv := range vals[:len(vals)-1] {
			vars = append(vars, results.Attr{Name: kv[0], Value: kv[1]})
		}
		if keep(comboKey(vars), rep) {
			runs = append(runs, i)
		}
	}
	return runs
}

// withoutRepetition is a run's combination: its variables but repetition.
func withoutRepetition(vars []results.Attr) []results.Attr {
	var out []results.Attr
	for _, a := range vars {
		if a.Name != "repetition" {
			out = append(out, a)
		}
	}
	return out
}

func comboKey(vars []results.Attr) string {
	var b strings.Builder
	for _, a := range vars {
		b.WriteString(a.Name)
		b.WriteByte(0)
		b.WriteString(a.Value)
		b.WriteByte(0)
	}
	return b.String()
}

// collect notes the keys of a round's succeeded runs, as the engine
// keeps them in the campaign's status: every run of the round is there,
// executed or already done, whichever campaign first ran it.
func (r *rounds) collect(ctx context.Context, campaign string) error {
	w, err := r.c.Eng.WatchStatus(ctx, campaign)
	if err != nil {
		return err
	}
	defer w.Stop()
	for rec := range w.Updates() {
		if rec == nil {
			return nil
		}
		if rec.State == simswarm.RunSucceeded {
			r.keys[rec.Key] = true
		}
	}
	return ctx.Err()
}

// read gathers, from the results directory, the values of every target's
// scalar in the runs of these rounds. A result file belongs to a round's
// run when the provenance line that last named it has that run's key, so
// a results directory shared with other campaigns (other configs, other
// settings, other builds) adds nothing that these rounds did not ask for.
func (r *rounds) read(ctx context.Context, first bool) error {
	idx, err := results.LoadProvenance(r.dir)
	if err != nil {
		return err
	}
	mine := map[string]*results.Provenance{}
	for _, p := range idx.Records {
		if r.keys[p.Key] {
			mine[p.Key] = p
		}
	}
	for _, cb := range r.combos {
		cb.accs = make([]results.Acc, len(r.spec.Targets))
	}
	for _, p := range idx.Records {
		if mine[p.Key] == nil {
			continue
		}
		vars := withoutRepetition(p.Vars)
		k := comboKey(vars)
		cb := r.byKey[k]
		if cb == nil {
			cb = &combo{key: k, vars: vars, accs: make([]results.Acc, len(r.spec.Targets)), first: p.Run}
			r.byKey[k] = cb
			r.combos = append(r.combos, cb)
		}
		cb.first = min(cb.first, p.Run)
	}
	sort.SliceStable(r.combos, func(i, j int) bool { return r.combos[i].first < r.combos[j].first })
	r.seen = map[string]bool{}
	var files []string
	if len(r.globs) > 0 {
		files, err = results.FindTemplateFiles(r.dir, r.globs)
	} else {
		files, err = results.Find(r.dir, false)
	}
	if err != nil && !errors.Is(err, results.ErrNoFiles) {
		return err
	}
	for _, f := range files {
		p := idx.Lookup(f)
		if p == nil || mine[p.Key] == nil {
			continue
		}
		cb := r.byKey[comboKey(withoutRepetition(mine[p.Key].Vars))]
		add := func(name string, v float64) {
			if len(r.seen) < 100000 {
				r.seen[name] = true
			}
			for i, t := range r.spec.Targets {
				if t.Scalar == name {
					cb.accs[i].Add(v)
				}
			}
		}
		if len(r.globs) > 0 {
			err = results.TemplateRecords(f, func(keys []string, m map[string]string) error {
				for _, k := range keys {
					if v, err := strconv.ParseFloat(m[k], 64); err == nil {
						add(k, v)
					}
				}
				return ctx.Err()
			})
		} else {
			err = results.Scalars(ctx, []string{f}, results.Options{}, func(it *results.Item) error {
				name := it.Name
				if it.Module != "" {
					name = it.Module + "." + it.Name
				}
				add(name, it.Value)
				return nil
			})
		}
		if err != nil {
			return err
		}
	}
	if first {
		return r.recorded()
	}
	return nil
}

// recorded refuses a target whose scalar no run of the first round
// recorded, naming those that were.
func (r *rounds) recorded() error {
	for i, t := range r.spec.Targets {
		n := 0
		for _, cb := range r.combos {
			n += cb.accs[i].N
		}
		if n > 0 {
			continue
		}
		names := make([]string, 0, len(r.seen))
		for s := range r.seen {
			names = append(names, s)
		}
		sort.Strings(names)
		if len(names) == 0 {
			return usage("--until %q: the runs of the first round recorded no scalars at all", t.Text)
		}
		more := ""
		if len(names) > 12 {
			more = fmt.Sprintf(" and %d more", len(names)-12)
			names = names[:12]
		}
		return usage("--until %q: no run records %s; the runs record %s%s", t.Text, t.Scalar, strings.Join(names, ", "), more)
	}
	return nil
}

// met reports whether a combination reached every target.
func (r *rounds) met(cb *combo) bool {
	for i, t := range r.spec.Targets {
		a := &cb.accs[i]
		if !t.Met(a.Mean(), a.HalfWidth(t.Level)) {
			return false
		}
	}
	return true
}

func (r *rounds) metCount() int {
	n := 0
	for _, cb := range r.combos {
		if r.met(cb) {
			n++
		}
	}
	return n
}

// plan decides the next round: for each combination short of a target
// and below the maximum, the repetitions to add.
func (r *rounds) plan() map[string][2]int {
	grow := map[string][2]int{}
	for _, cb := range r.combos {
		if cb.reps >= r.spec.Max || r.met(cb) {
			continue
		}
		next := cb.reps
		for i, t := range r.spec.Targets {
			a := &cb.accs[i]
			if !t.Met(a.Mean(), a.HalfWidth(t.Level)) {
				next = max(next, Next(cb.reps, a, t, r.spec.Max))
			}
		}
		if next > cb.reps {
			grow[cb.key] = [2]int{cb.reps, next}
		}
	}
	return grow
}

// final is the per-combination outcome.
func (r *rounds) final() ([]Combination, bool) {
	all := true
	out := make([]Combination, 0, len(r.combos))
	for _, cb := range r.combos {
		c := Combination{Vars: cb.vars, Repetitions: cb.reps}
		for i, t := range r.spec.Targets {
			a := &cb.accs[i]
			h := a.HalfWidth(t.Level)
			met := t.Met(a.Mean(), h)
			all = all && met
			c.Targets = append(c.Targets, Reached{Target: t.Text, Scalar: t.Scalar, N: a.N, Mean: number(a.Mean()), HalfWidth: number(h),
				Precision: t.Precision(a.Mean(), h), Met: met})
		}
		out = append(out, c)
	}
	return out, all
}

// Print writes the per-combination table: the variables, then per target
// the repetitions used, mean, half-width, precision reached and whether
// it met the target.
func Print(w io.Writer, rep *Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var names []string
	if len(rep.Combinations) > 0 {
		for _, a := range rep.Combinations[0].Vars {
			names = append(names, a.Name)
		}
	}
	head := append(append([]string{}, names...), "scalar", "reps", "mean", "half-width", "precision", "target", "met")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, c := range rep.Combinations {
		for i, t := range c.Targets {
			var cells []string
			for _, n := range names {
				v := ""
				for _, a := range c.Vars {
					if a.Name == n {
						v = a.Value
					}
				}
				cells = append(cells, v)
			}
			met := "no"
			if t.Met {
				met = "yes"
			}
			goal := rep.Targets[i]
			if tt, err := ParseTarget(goal); err == nil {
				goal = fmt.Sprintf("ci%g %s", tt.Level*100, tt.Goal())
			}
			cells = append(cells, t.Scalar, strconv.Itoa(c.Repetitions), fmtNum(float64(t.Mean)), fmtNum(float64(t.HalfWidth)), t.Precision, goal, met)
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	n := 0
	for _, c := range rep.Combinations {
		ok := true
		for _, t := range c.Targets {
			ok = ok && t.Met
		}
		if ok {
			n++
		}
	}
	last := "every combination reached its target"
	if !rep.Met {
		last = fmt.Sprintf("%d of %d combinations reached the target; the others stopped at --max-repetitions %d", n, len(rep.Combinations), rep.Max)
	}
	_, err := fmt.Fprintf(w, "%s; %s; results in %s\n", units.Count(len(rep.Rounds), "round"), last, rep.Results)
	return err
}

func fmtNum(f float64) string {
	if math.IsNaN(f) {
		return "-"
	}
	return strconv.FormatFloat(f, 'g', 6, 64)
}
