package omnetpp

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestRunFilter(t *testing.T) {
	cases := []struct {
		args   string
		filter string
		rest   string
		found  bool
	}{
		{"-u Cmdenv -c Exp", "", "-u Cmdenv -c Exp", false},
		{"-u Cmdenv -c Exp -r 3", "3", "-u Cmdenv -c Exp", true},
		{"-r 0..3,40-41 -s", "0..3,40-41", "-s", true},
		{"-r0,1 -s", "0,1", "-s", true},
		{"-s -r $numHosts==10&&$iaMean==1 -q runnumbers", "$numHosts==10&&$iaMean==1", "-s -q runnumbers", true},
		{"-r 1 -c X -r 2", "2", "-c X", true}, // the last -r wins, all go
		{"-r", "", "", true},
		// Values are taken whatever they look like, as OMNeT++ does.
		{"-c -r 5", "", "-c -r 5", false},
		{"-f -r.ini -r 5", "5", "-f -r.ini", true},
		{"--debug-on-errors -r 5", "", "--debug-on-errors -r 5", false},
		{"--debug-on-errors=true -r 5", "5", "--debug-on-errors=true", true},
		// -s takes no value, so what follows is an option again.
		{"-s -r 5", "5", "-s", true},
		// After "--" everything is positional.
		{"-c X -- -r 5", "", "-c X -- -r 5", false},
		// Positional ini files do not end the options.
		{"omnetpp.ini -r 5 other.ini", "5", "omnetpp.ini other.ini", true},
		// The ini-file form of -r is removed and used when there is no -r.
		{"--cmdenv-runs-to-execute=7 -s", "7", "-s", true},
		{"--cmdenv-runs-to-execute 7 -s", "7", "-s", true},
		{"--cmdenv-runs-to-execute=7 -r 8", "8", "", true},
		// Not OMNeT++ options.
		{"--run=3 --r=4", "", "--run=3 --r=4", false},
	}
	for _, c := range cases {
		t.Run(c.args, func(t *testing.T) {
			filter, rest, found := RunFilter(strings.Fields(c.args))
			if filter != c.filter || found != c.found || !slices.Equal(rest, strings.Fields(c.rest)) {
				t.Fatalf("got %q, %q, %v; want %q, %q, %v", filter, rest, found, c.filter, strings.Fields(c.rest), c.found)
			}
		})
	}

	args := []string{"-u", "Cmdenv", "-r", "1"}
	_, rest, _ := RunFilter(args)
	_ = append(rest, "-r", "9")
	if !slices.Equal(args, []string{"-u", "Cmdenv", "-r", "1"}) {
		t.Fatalf("RunFilter's result aliases its input: %q", args)
	}
	if filter, _, _ := RunFilter([]string{"-r", "$a==\"x y\" && $b==1"}); filter != `$a=="x y" && $b==1` {
		t.Fatalf("expression with spaces: %q", filter)
	}
}

func TestConfigName(t *testing.T) {
	cases := []struct{ args, want string }{
		{"", "General"},
		{"-u Cmdenv -s", "General"},
		{"-c PureAlohaExperiment", "PureAlohaExperiment"},
		{"-cPureAlohaExperiment -r 0", "PureAlohaExperiment"},
		{"-c A -c B", "B"},
		{"--cmdenv-config-name=C -s", "C"},
		{"--cmdenv-config-name C -s", "C"},
		{"-c A --cmdenv-config-name=C", "A"},
		{"-r -c", "General"},
		{"-- -c A", "General"},
	}
	for _, c := range cases {
		if got := ConfigName(strings.Fields(c.args)); got != c.want {
			t.Errorf("ConfigName(%q) = %q, want %q", c.args, got, c.want)
		}
	}
	if got := ConfigName([]string{"-c", ""}); got != "General" {
		t.Errorf("empty -c: %q", got)
	}
}

func TestHasOption(t *testing.T) {
	args := strings.Fields("-s -u Cmdenv -q runnumbers --result-dir=/tmp/r --cmdenv-redirect-output true ini.ini")
	for _, name := range []string{"-s", "-u", "-q", "--result-dir", "result-dir", "s", "--cmdenv-redirect-output"} {
		if !HasOption(args, name) {
			t.Errorf("HasOption(%q) = false", name)
		}
	}
	for _, name := range []string{"-r", "-c", "--result", "--sim-time-limit", "ini.ini", "true", "--true"} {
		if HasOption(args, name) {
			t.Errorf("HasOption(%q) = true", name)
		}
	}
	// "-s" as the value of -r or after "--" is not the flag.
	if HasOption([]string{"-r", "-s"}, "-s") || HasOption([]string{"--", "-s"}, "-s") {
		t.Error("-s found where OMNeT++ would not see it")
	}

	if v, ok := OptionValue(args, "--result-dir"); !ok || v != "/tmp/r" {
		t.Errorf("OptionValue result-dir = %q, %v", v, ok)
	}
	if v, ok := OptionValue(args, "--cmdenv-redirect-output"); !ok || v != "true" {
		t.Errorf("OptionValue redirect = %q, %v", v, ok)
	}
	if v, ok := OptionValue(args, "-q"); !ok || v != "runnumbers" {
		t.Errorf("OptionValue -q = %q, %v", v, ok)
	}
	if v, ok := OptionValue([]string{"--result-dir=a", "--result-dir", "b"}, "result-dir"); !ok || v != "b" {
		t.Errorf("last --result-dir = %q, %v", v, ok)
	}
}

func TestRunNumberArg(t *testing.T) {
	cases := []struct {
		runs []int
		want string
	}{
		{nil, ""},
		{[]int{3}, "3"},
		{[]int{3, 4, 5}, "3,4,5"},
		{[]int{10, 2}, "10,2"},
	}
	for _, c := range cases {
		if got := RunNumberArg(c.runs); got != c.want {
			t.Errorf("RunNumberArg(%v) = %q, want %q", c.runs, got, c.want)
		}
	}
}

// TestMissingValue: an option that takes a value but comes last without
// one is named (OMNeT++ would ignore a trailing -r and run every run).
func TestMissingValue(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"./aloha", "-c", "X", "-r"}, "-r"},
		{[]string{"./aloha", "-c"}, "-c"},
		{[]string{"./aloha", "-r", "0..3"}, ""},
		{[]string{"./aloha", "-r0"}, ""},
		{[]string{"./aloha", "-s"}, ""},
		{[]string{"./aloha", "-h"}, ""}, // -h takes a value optionally
		{[]string{"./aloha", "--", "-r"}, ""},
		{[]string{"./aloha", "--repeat"}, ""}, // a long option last is a flag
	}
	for _, c := range cases {
		if got := MissingValue(c.args); got != c.want {
			t.Errorf("MissingValue(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}

func TestPlainRunNumbers(t *testing.T) {
	for in, want := range map[string]string{"3": "[3]", "7, 0,5,0": "[0 5 7]"} {
		if runs, ok := PlainRunNumbers(in); !ok || fmt.Sprint(runs) != want {
			t.Errorf("PlainRunNumbers(%q) = %v, %v; want %s", in, runs, ok, want)
		}
	}
	for _, in := range []string{"0..3", "$x==1", "+3", "-1", "", "1,"} {
		if _, ok := PlainRunNumbers(in); ok {
			t.Errorf("PlainRunNumbers(%q): taken as run numbers", in)
		}
	}
}
