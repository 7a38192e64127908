package main

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// growIni makes real aloha's experiment small and, with seedSet, ties each
// run's seeds to its repetition instead of its run number.
func growIni(seedSet bool) string {
	s := "include omnetpp.ini\n\n[Grow]\nextends = PureAloha1\nsim-time-limit = 5min\n" +
		"Aloha.numHosts = ${numHosts=10,20}\nAloha.host[*].iaTime = exponential(${iaMean=1,3}s)\n"
	if seedSet {
		s += "seed-set = ${repetition}\n"
	}
	return s
}

// resultValues is what a .sca or .vec file says about the simulation, not
// about the campaign it ran in: its run numbering (runnumber, repeat) and
// when and where it ran are left out.
func resultValues(t testing.TB, path string) string {
	t.Helper()
	var keep []string
	for _, l := range strings.Split(readFile(t, path), "\n") {
		if strings.HasPrefix(l, "run ") || strings.HasPrefix(l, "attr ") || strings.HasPrefix(l, "config ") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

func sameValues(t *testing.T, want, got string) {
	t.Helper()
	w, g := files(t, want, "*.sca"), files(t, got, "*.sca")
	w = append(w, files(t, want, "*.vec")...)
	g = append(g, files(t, got, "*.vec")...)
	base := func(l []string) []string {
		out := make([]string, len(l))
		for i, p := range l {
			out[i] = filepath.Base(p)
		}
		sort.Strings(out)
		return out
	}
	if strings.Join(base(w), " ") != strings.Join(base(g), " ") {
		t.Fatalf("result files differ:\nfrom scratch: %v\ngrown:        %v", base(w), base(g))
	}
	for _, p := range w {
		n := filepath.Base(p)
		if resultValues(t, p) != resultValues(t, filepath.Join(got, n)) {
			t.Errorf("%s: the grown campaign's results differ from a campaign run from scratch", n)
		}
	}
}

// TestOMNeTPPGrow: a real aloha campaign grown from 2 to 4 repetitions
// executes only the new runs (its runs are renumbered: OMNeT++ numbers
// repetitions innermost) and ends with the results of a from-scratch
// 4-repetition campaign; with OMNeT++'s default seed set, which follows the
// run number, --dry-run says which runs must run again and why.
func TestOMNeTPPGrow(t *testing.T) {
	o := realOMNeT(t)
	dir := o.CopySample(t, "aloha", t.TempDir())
	os.WriteFile(filepath.Join(dir, "grow.ini"), []byte(growIni(true)), 0o644)
	os.WriteFile(filepath.Join(dir, "default.ini"), []byte(strings.Replace(growIni(false), "[Grow]", "[Default]", 1)), 0o644)
	state := t.TempDir()
	run := func(args ...string) result {
		t.Helper()
		return runSimswarm(t, dir, state, append([]string{"run", "-j", "2", "--ccache-dir", sharedCcache()}, args...)...)
	}
	grow := func(repeat string, more ...string) []string {
		return append(append([]string{"--json"}, more...), "--", "./aloha", "-u", "Cmdenv", "-f", "grow.ini", "-c", "Grow", "--repeat="+repeat)
	}
	r := run(grow("2")...)
	if s := jsonSummary(t, r); r.code != 0 || s.Runs != 8 || s.Executed != 8 {
		t.Fatalf("--repeat=2: exit %d %+v\n%s", r.code, s, r.stderr)
	}
	r = run("--dry-run", "--", "./aloha", "-u", "Cmdenv", "-f", "grow.ini", "-c", "Grow", "--repeat=4")
	if r.code != 0 || !strings.Contains(r.stdout, "8 would run, 8 already done") {
		t.Fatalf("--dry-run --repeat=4: exit %d, want 8 done of 16:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !regexp.MustCompile(`(?m)^run 2\twould run \(new\)\t\$numHosts=10, \$iaMean=1, \$repetition=2$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^run 4\tdone\t\$numHosts=10, \$iaMean=3, \$repetition=0$`).MatchString(r.stdout) {
		t.Errorf("--dry-run does not say which runs are new and which done:\n%s", r.stdout)
	}
	r = run(grow("4")...)
	if s := jsonSummary(t, r); r.code != 0 || s.Runs != 16 || s.Executed != 8 || s.Cached != 8 {
		t.Fatalf("--repeat=4 after --repeat=2: exit %d %+v, want the 8 new runs executed\n%s", r.code, s, r.stderr)
	}
	scratch := filepath.Join(dir, "scratch")
	r = runSimswarm(t, dir, t.TempDir(), append([]string{"run", "-j", "2", "--ccache-dir", sharedCcache(), "--results", "scratch"}, grow("4")...)...)
	if s := jsonSummary(t, r); r.code != 0 || s.Executed != 16 {
		t.Fatalf("from scratch: exit %d %+v\n%s", r.code, s, r.stderr)
	}
	sameValues(t, scratch, filepath.Join(dir, "results"))

	// The default seed set is the run number: growing renumbers the runs,
	// and with their numbers their seeds.
	def := []string{"--", "./aloha", "-u", "Cmdenv", "-f", "default.ini", "-c", "Default"}
	r = run(append([]string{"--json", "--results", "default"}, append(def, "--repeat=2")...)...)
	if s := jsonSummary(t, r); r.code != 0 || s.Executed != 8 {
		t.Fatalf("default seed set, --repeat=2: exit %d %+v\n%s", r.code, s, r.stderr)
	}
	r = run(append([]string{"--dry-run", "--results", "default"}, append(def, "--repeat=4")...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "run 0\tdone\t") || !strings.Contains(r.stdout, "run 1\tdone\t") ||
		!strings.Contains(r.stdout, "run 4\twould run again: seed-set changed from 2 (the default, ${runnumber}) to 4 (the default, ${runnumber})\t$numHosts=10, $iaMean=3, $repetition=0") {
		t.Errorf("--dry-run with the default seed set does not say why renumbered runs rerun:\n%s%s", r.stdout, r.stderr)
	}
}
