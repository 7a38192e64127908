package fingerprint

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// DefaultCPUTimeLimit guards a suite against a test that runs away: INET's
// tooling gives every test the same budget.
const DefaultCPUTimeLimit = 60 * time.Second

// Profile is what a suite's own tool adds to its tests: INET's
// fingerprinttest runs every test with INET's fingerprint calculator
// (which knows the ingredients ~, U, N, I and D), adds options where a test
// checks certain ingredient sets, and can leave ingredient sets out.
type Profile struct {
	// Calculator is the --fingerprintcalculator-class; "" for OMNeT++'s.
	Calculator string
	// PerIngredients adds options to a test that checks a fingerprint of
	// exactly these ingredients.
	PerIngredients map[string][]string
	// Include and Exclude select the fingerprints checked by their
	// ingredients (INET's -f and -F); a test left with none is not run.
	Include, Exclude []string
}

// INET is what INET's tests/fingerprint/fingerprinttest (INET 4.5) adds:
// its calculator, CRC and FCS computed for ~tND (packet data is compared),
// and a fake GUI's display refreshes for tyf.
func INET() Profile {
	return Profile{
		Calculator: "inet::FingerprintCalculator",
		PerIngredients: map[string][]string{
			"~tND": {`--**.crcMode="computed"`, `--**.fcsMode="computed"`},
			"tyf": {"--cmdenv-fake-gui=true",
				"--cmdenv-fake-gui-before-event-probability=0.1",
				"--cmdenv-fake-gui-after-event-probability=0.1",
				"--cmdenv-fake-gui-on-hold-probability=0.1",
				"--cmdenv-fake-gui-on-hold-numsteps=3",
				"--cmdenv-fake-gui-on-simtime-probability=0.1",
				"--cmdenv-fake-gui-on-simtime-numsteps=3",
				`--**.fadeOutMode="animationTime"`,
				`--**.signalAnimationSpeedChangeTimeMode="animationTime"`},
		},
	}
}

var (
	ingredientsRE = regexp.MustCompile(`^[a-zA-Z0~]+$`)
	classRE       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*$`)
)

// Check refuses what cannot be a calculator class or an ingredient set.
func (p Profile) Check() error {
	if p.Calculator != "" && !classRE.MatchString(p.Calculator) {
		return fmt.Errorf("--calculator %q is not a C++ class name such as inet::FingerprintCalculator", p.Calculator)
	}
	for _, f := range []struct {
		flag string
		sets []string
	}{{"--fpfilter", p.Include}, {"--excludefpfilter", p.Exclude}} {
		for _, s := range f.sets {
			if !ingredientsRE.MatchString(s) {
				return fmt.Errorf("%s %q is not an ingredient set such as tplx or ~tNl", f.flag, s)
			}
		}
	}
	return nil
}

// Checked is the fingerprints of t that p checks, in the suite's order.
func (p Profile) Checked(t *Test) []string {
	var out []string
	for _, fp := range t.Fingerprints {
		ing := Ingredients(fp)
		if (len(p.Include) == 0 || slices.Contains(p.Include, ing)) && !slices.Contains(p.Exclude, ing) {
			out = append(out, fp)
		}
	}
	return out
}

// CommandArgs is the command line after the program for one test, in the
// order INET's tool passes it. cpuLimit 0 means DefaultCPUTimeLimit; nil
// when p checks none of its fingerprints.
func (t *Test) CommandArgs(cpuLimit time.Duration, p Profile) ([]string, error) {
	argv, err := t.Argv()
	if err != nil {
		return nil, fmt.Errorf("%s: arguments: %w", t.Where(), err)
	}
	fps := p.Checked(t)
	if len(fps) == 0 {
		return nil, nil
	}
	if cpuLimit <= 0 {
		cpuLimit = DefaultCPUTimeLimit
	}
	out := []string{"-u", "Cmdenv"}
	out = append(out, argv...)
	var extra []string
	for _, fp := range fps {
		for _, o := range p.PerIngredients[Ingredients(fp)] {
			if !slices.Contains(extra, o) {
				extra = append(extra, o)
			}
		}
	}
	slices.Sort(extra) // a set: the same test gives the same command line
	out = append(out, extra...)
	if t.SimTimeLimit != "" {
		out = append(out, "--sim-time-limit="+strings.ReplaceAll(t.SimTimeLimit, " ", ""))
	}
	// OMNeT++ takes several fingerprints separated by commas; the suites
	// separate them with ';' because their fields are comma-separated.
	out = append(out,
		"--fingerprint="+strings.Join(fps, ","),
		"--cpu-time-limit="+formatSeconds(cpuLimit),
		"--vector-recording=false",
		"--scalar-recording=true")
	if p.Calculator != "" {
		out = append(out, "--fingerprintcalculator-class="+p.Calculator)
	}
	return out, nil
}

func formatSeconds(d time.Duration) string {
	s := fmt.Sprintf("%g", d.Seconds())
	return s + "s"
}

// Observed is what a test's run left behind, as simswarm records it.
type Observed struct {
	// Missing is set when the run has no record (it never ran or its
	// result was lost); Reason then says why when known.
	Missing  bool
	Reason   string
	Exit     int
	Signal   string
	TimedOut bool
	Errors   []string // "<!> Error" lines
	// Fingerprint is "verified", "mismatch" or "" (no fingerprint line).
	Fingerprint string
	Calculated  string // as OMNeT++ prints it: "1634-c795/tplx, a171-b721/tpx"
	Limit       string // "sim-time", "cpu-time", ... (see omnetpp.Outcome)
	SimTime     string
	Wall        time.Duration
	// Executed is set when the simulation ran for this suite run.
	Executed bool
}

// Verdict is a test's outcome.
type Verdict struct {
	Test *Test
	// Got is what the test did; Outcome compares it with what was
	// expected: PASS when they agree, ERROR when the test errored without
	// being expected to, FAIL otherwise.
	Got        Result
	Outcome    Result
	Reason     string   // why Got is ERROR, or what differed
	Calculated []string // the fingerprints the run computed, in the suite's order
	Wall       time.Duration
	Reused     bool // the verdict of an earlier identical run
}

var calcSplit = regexp.MustCompile(`\s*,\s*`)

// Judge gives a test's verdict from what its run left.
func Judge(t *Test, o Observed) Verdict {
	// A run that left a record without executing now is an identical
	// run's (same build, same test) from before.
	v := Verdict{Test: t, Wall: o.Wall, Reused: !o.Missing && !o.Executed}
	if o.Calculated != "" {
		v.Calculated = orderLike(t.Fingerprints, calcSplit.Split(strings.TrimSpace(o.Calculated), -1))
	}
	switch {
	case o.Missing:
		v.Got, v.Reason = Error, "no result"
		if o.Reason != "" {
			v.Reason = o.Reason
		}
	case o.TimedOut:
		v.Got, v.Reason = Error, "timed out"
	case o.Signal != "":
		v.Got, v.Reason = Error, "killed by "+o.Signal
	case len(o.Errors) > 0:
		v.Got, v.Reason = Error, o.Errors[0]
	case o.Exit != 0:
		v.Got, v.Reason = Error, fmt.Sprintf("exit status %d", o.Exit)
	case o.Limit == "cpu-time":
		// The run stopped before its simulation time limit: its
		// fingerprint covers only part of the simulation.
		v.Got, v.Reason = Error, "CPU time limit reached at t="+o.SimTime
	case o.Fingerprint == "verified":
		v.Got = Pass
	case o.Fingerprint == "mismatch":
		v.Got = Fail
		v.Reason = "calculated " + strings.Join(v.Calculated, ";")
	default:
		v.Got, v.Reason = Error, "no fingerprint verdict in the output"
	}
	switch {
	case v.Got == t.Expected:
		v.Outcome = Pass
	case v.Got == Error:
		v.Outcome = Error
	default:
		v.Outcome = Fail
	}
	return v
}

// orderLike orders calculated fingerprints by the ingredient sets of the
// expected ones, so that an updated suite keeps its columns.
func orderLike(expected, calculated []string) []string {
	if len(expected) != len(calculated) {
		return calculated
	}
	byIng := map[string]string{}
	for _, c := range calculated {
		byIng[Ingredients(c)] = c
	}
	out := make([]string, 0, len(expected))
	for _, e := range expected {
		c, ok := byIng[Ingredients(e)]
		if !ok {
			return calculated
		}
		out = append(out, c)
	}
	return out
}

// Updated is the fingerprint field a test gets in the updated suite: the
// calculated fingerprints where the run computed them, nil (keep) else.
func (v Verdict) Updated() []string {
	if v.Got == Error || len(v.Calculated) == 0 {
		return nil
	}
	// The fingerprints the run did not check (an ingredient filter) stay
	// as they were.
	byIng := map[string]string{}
	for _, c := range v.Calculated {
		byIng[Ingredients(c)] = c
	}
	out := make([]string, len(v.Test.Fingerprints))
	used := 0
	for i, e := range v.Test.Fingerprints {
		out[i] = e
		if c, ok := byIng[Ingredients(e)]; ok {
			out[i] = c
			used++
		}
	}
	if used != len(v.Calculated) {
		return v.Calculated
	}
	return out
}
