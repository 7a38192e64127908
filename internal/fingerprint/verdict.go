package fingerprint

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// DefaultCPUTimeLimit guards a suite against a test that runs away: INET's
// tooling gives every test the same budget.
const DefaultCPUTimeLimit = 60 * time.Second

// Args is the command line after the program for one test, in the order
// INET's launcher passes it. cpuLimit 0 means DefaultCPUTimeLimit.
func (t *Test) CommandArgs(cpuLimit time.Duration) ([]string, error) {
	argv, err := t.Argv()
	if err != nil {
		return nil, fmt.Errorf("%s: arguments: %w", t.Where(), err)
	}
	if cpuLimit <= 0 {
		cpuLimit = DefaultCPUTimeLimit
	}
	out := []string{"-u", "Cmdenv"}
	out = append(out, argv...)
	if t.SimTimeLimit != "" {
		out = append(out, "--sim-time-limit="+strings.ReplaceAll(t.SimTimeLimit, " ", ""))
	}
	// OMNeT++ takes several fingerprints separated by commas; the suites
	// separate them with ';' because their fields are comma-separated.
	out = append(out,
		"--fingerprint="+strings.Join(t.Fingerprints, ","),
		"--cpu-time-limit="+formatSeconds(cpuLimit),
		"--vector-recording=false",
		"--scalar-recording=true")
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
	return v.Calculated
}
