package omnetpp

import (
	"strings"
	"testing"
)

// Captured from real aloha (OMNeT++ 6.1): -s -c Grow -q runconfig, the
// config extending PureAloha1 with seed-set = ${repetition}.
const runConfigOut = `Run 0: $numHosts=10, $repetition=0
	repeat = 2
	extends = PureAloha1
	seed-set = 0
	Aloha.numHosts = 10
	description = "pure Aloha, overloaded"
	network = Aloha
Run 1: $numHosts=10, $repetition=1
	repeat = 2
	extends = PureAloha1
	seed-set = 1
	Aloha.numHosts = 10
	description = "pure Aloha, overloaded"
	network = Aloha
`

func TestRunConfigIdentity(t *testing.T) {
	cfgs, err := ParseRunConfig([]byte(runConfigOut))
	if err != nil || len(cfgs) != 2 || cfgs[1].Number != 1 || cfgs[1].Vars != "$numHosts=10, $repetition=1" || len(cfgs[1].Entries) != 6 {
		t.Fatalf("%+v %v", cfgs, err)
	}
	if cfgs[0].Identity() == cfgs[1].Identity() {
		t.Error("runs with different seed sets have one identity")
	}
	// Renumbered in a campaign of 4 repetitions: the same run.
	grown := cfgs[1]
	grown.Number = 5
	grown.Entries = append([]string{"repeat = 4"}, grown.Entries[1:]...)
	if grown.Identity() != cfgs[1].Identity() {
		t.Error("repeat or the run number changed the identity of a run whose seed set is its repetition")
	}
	// Without a seed-set entry OMNeT++ seeds by the run number.
	plain := RunConfig{Number: 1, Entries: []string{"network = Aloha"}}
	moved := plain
	moved.Number = 3
	if plain.Identity() == moved.Identity() {
		t.Error("a renumbered run with the default seed set kept its identity")
	}
	if d := moved.Changed(plain); d != "seed-set changed from 1 (the default, ${runnumber}) to 3 (the default, ${runnumber})" {
		t.Errorf("Changed = %q", d)
	}
	other := cfgs[1]
	other.Entries = []string{"Aloha.numHosts = 20", "network = Aloha", "seed-set = 1", "sim-time-limit = 1h"}
	d := other.Changed(cfgs[1])
	for _, want := range []string{"Aloha.numHosts changed from 10 to 20", "sim-time-limit = 1h is new", "extends = PureAloha1 is gone"} {
		if !strings.Contains(d, want) {
			t.Errorf("Changed = %q, want %q in it", d, want)
		}
	}
	if _, err := ParseRunConfig([]byte("Run 1: a\nRun 1: b\n")); err == nil {
		t.Error("a run listed twice was taken")
	}
}
