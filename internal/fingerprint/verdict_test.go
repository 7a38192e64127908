package fingerprint

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/omnetpp"
)

func oneTest(t *testing.T, line string) *Test {
	t.Helper()
	s, err := Parse("x.csv", strings.NewReader(line+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	return s.Tests[0]
}

func TestCommandArgs(t *testing.T) {
	tt := oneTest(t, "/a/, -f omnetpp.ini -c 'Two Words' -r 0, 10ms, 1234-5678/tplx;abcd-ef01/tpx, PASS,")
	got, err := tt.CommandArgs(0, Profile{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"-u", "Cmdenv", "-f", "omnetpp.ini", "-c", "Two Words", "-r", "0", "--sim-time-limit=10ms",
		"--fingerprint=1234-5678/tplx,abcd-ef01/tpx", "--cpu-time-limit=60s", "--vector-recording=false", "--scalar-recording=true"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q", got)
	}
	got, _ = oneTest(t, "/a/, -c X, , 1234-5678/tplx, PASS,").CommandArgs(1500*time.Millisecond, Profile{})
	if strings.Contains(strings.Join(got, " "), "sim-time-limit") || !strings.Contains(strings.Join(got, " "), "--cpu-time-limit=1.5s") {
		t.Errorf("got %q", got)
	}
}

func TestJudge(t *testing.T) {
	pass := oneTest(t, "/a/, -c X, 1s, 1634-c795/tplx;a171-b721/tpx, PASS,")
	fail := oneTest(t, "/a/, -c X, 1s, 1634-c795/tplx, FAIL,")
	errs := oneTest(t, "/a/, -c X, 1s, 1634-c795/tplx, ERROR,")
	cases := []struct {
		name    string
		test    *Test
		o       Observed
		got     Result
		outcome Result
		reason  string
	}{
		{"verified", pass, Observed{Fingerprint: "verified", Calculated: "1634-c795/tplx, a171-b721/tpx"}, Pass, Pass, ""},
		{"mismatch", pass, Observed{Fingerprint: "mismatch", Calculated: "a171-b721/tpx, 1111-2222/tplx"}, Fail, Fail, "calculated 1111-2222/tplx;a171-b721/tpx"},
		{"expected fail", fail, Observed{Fingerprint: "mismatch", Calculated: "0000-1111/tplx"}, Fail, Pass, "calculated 0000-1111/tplx"},
		{"expected fail passes", fail, Observed{Fingerprint: "verified", Calculated: "1634-c795/tplx"}, Pass, Fail, ""},
		{"error line", pass, Observed{Exit: 1, Errors: []string{"<!> Error: No such config: X"}}, Error, Error, "<!> Error: No such config: X"},
		{"expected error", errs, Observed{Exit: 1, Errors: []string{"<!> Error: boom"}}, Error, Pass, "<!> Error: boom"},
		{"segfault", pass, Observed{Exit: -1, Signal: "SIGSEGV"}, Error, Error, "killed by SIGSEGV"},
		{"timeout", pass, Observed{TimedOut: true, Signal: "SIGKILL"}, Error, Error, "timed out"},
		{"cpu limit", pass, Observed{Fingerprint: "mismatch", Calculated: "2478-1757/tplx", Limit: "cpu-time", SimTime: "64.3s"}, Error, Error, "CPU time limit reached at t=64.3s"},
		{"no verdict", pass, Observed{}, Error, Error, "no fingerprint verdict in the output"},
		{"missing", pass, Observed{Missing: true, Reason: "cancelled"}, Error, Error, "cancelled"},
		{"exit only", pass, Observed{Exit: 3}, Error, Error, "exit status 3"},
	}
	for _, c := range cases {
		v := Judge(c.test, c.o)
		if v.Got != c.got || v.Outcome != c.outcome || v.Reason != c.reason {
			t.Errorf("%s: got %s outcome %s reason %q", c.name, v.Got, v.Outcome, v.Reason)
		}
	}
	v := Judge(pass, Observed{Fingerprint: "mismatch", Calculated: "a171-b721/tpx, 1111-2222/tplx"})
	if !reflect.DeepEqual(v.Updated(), []string{"1111-2222/tplx", "a171-b721/tpx"}) {
		t.Errorf("updated %q: the suite's order of ingredient sets is kept", v.Updated())
	}
	if Judge(pass, Observed{Exit: 1}).Updated() != nil {
		t.Error("an errored test keeps its fingerprint")
	}
}

// TestJudgeCapturedOutput feeds real OMNeT++/INET output through the same
// parser the runner uses.
func TestJudgeCapturedOutput(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "omnetpp-output")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Skipf("../shared/omnetpp-output is absent: %v", err)
		}
		return b
	}
	for _, c := range []struct {
		name string
		got  Result
	}{{"inet-fingerprint-ok", Pass}, {"inet-fingerprint-bad", Fail}} {
		out := append(read(c.name+".stdout"), read(c.name+".stderr")...)
		o := omnetpp.ParseOutcome(out)
		tt := oneTest(t, "/a/, -c X, 1s, "+strings.SplitN(o.FingerprintExpected, ",", 2)[0]+", PASS,")
		v := Judge(tt, Observed{Fingerprint: o.Fingerprint, Calculated: o.FingerprintCalculated, Limit: o.Limit, Errors: omnetpp.ErrorLines(out, 5)})
		if v.Got != c.got || len(v.Calculated) == 0 {
			t.Errorf("%s: got %s (%+v)", c.name, v.Got, v)
		}
	}
}

// TestINETProfile: an INET row is run as INET's fingerprinttest runs it
// (its calculator, CRC/FCS computed for ~tND, the fake GUI for tyf), an
// ingredient filter leaves fingerprints out of the check, and the updated
// line keeps the ones not checked.
func TestINETProfile(t *testing.T) {
	tt := oneTest(t, "/examples/inet/nclients/, -f omnetpp.ini -c Ethernet -r 0, 100s, 1111-2222/tplx;3333-4444/~tNl;5555-6666/~tND;7777-8888/tyf, PASS,")
	p := INET()
	got, err := tt.CommandArgs(0, p)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(got, " ")
	for _, want := range []string{
		`--**.crcMode="computed"`, `--**.fcsMode="computed"`,
		"--cmdenv-fake-gui=true",
		"--fingerprint=1111-2222/tplx,3333-4444/~tNl,5555-6666/~tND,7777-8888/tyf",
		"--fingerprintcalculator-class=inet::FingerprintCalculator",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("command line lacks %q:\n%s", want, line)
		}
	}
	p.Exclude = []string{"tyf"}
	got, _ = tt.CommandArgs(0, p)
	line = strings.Join(got, " ")
	if strings.Contains(line, "fake-gui") || strings.Contains(line, "tyf") || !strings.Contains(line, "--fingerprint=1111-2222/tplx,3333-4444/~tNl,5555-6666/~tND ") {
		t.Errorf("-F tyf: %s", line)
	}
	p.Exclude, p.Include = nil, []string{"tplx"}
	got, _ = tt.CommandArgs(0, p)
	if line = strings.Join(got, " "); strings.Contains(line, "crcMode") || !strings.Contains(line, "--fingerprint=1111-2222/tplx ") {
		t.Errorf("-f tplx: %s", line)
	}
	p.Include = []string{"tNl"}
	if got, _ := tt.CommandArgs(0, p); got != nil {
		t.Errorf("a filter that keeps no fingerprint must leave the test out, got %q", got)
	}
	v := Judge(tt, Observed{Fingerprint: "mismatch", Calculated: "aaaa-bbbb/tplx, cccc-dddd/~tNl, eeee-ffff/~tND"})
	if got, want := strings.Join(v.Updated(), ";"), "aaaa-bbbb/tplx;cccc-dddd/~tNl;eeee-ffff/~tND;7777-8888/tyf"; got != want {
		t.Errorf("updated %s, want %s (tyf was not checked: kept)", got, want)
	}
}
