package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// untilReport is simswarm run --until --json's report.
type untilReport struct {
	Rounds []struct {
		Campaign                             string
		Combinations, Runs, Executed, Cached int
	} `json:"rounds"`
	Combinations []struct {
		Vars []struct {
			Name, Value string
		} `json:"vars"`
		Repetitions int `json:"repetitions"`
		Targets     []struct {
			Scalar    string   `json:"scalar"`
			N         int      `json:"n"`
			Mean      *float64 `json:"mean"`
			HalfWidth *float64 `json:"half_width"`
			Precision string   `json:"precision"`
			Met       bool     `json:"met"`
		} `json:"targets"`
	} `json:"combinations"`
	Met bool `json:"met"`
}

func untilJSON(t *testing.T, r result) untilReport {
	t.Helper()
	var rep untilReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("--json output is not a report: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	return rep
}

// summaryRows reads simswarm results --summary --format json: one object
// per (iteration variables, module, name).
func summaryRows(t *testing.T, dir, results, filter string) map[string]map[string]any {
	t.Helper()
	r := runSimswarm(t, dir, t.TempDir(), "results", "--summary", "--format", "json", "--filter", filter, results)
	if r.code != 0 {
		t.Fatalf("simswarm results --summary: exit %d\n%s", r.code, r.stderr)
	}
	rows := map[string]map[string]any{}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("summary line %q: %v", l, err)
		}
		rows[m["numHosts"].(string)+"/"+m["iaMean"].(string)] = m
	}
	return rows
}

const untilIni = `include omnetpp.ini

# Four combinations, each run two simulated minutes (a few milliseconds of
# CPU): short enough that channel utilisation varies between repetitions.
[Until]
sim-time-limit = 2min
Aloha.numHosts = ${numHosts=10,20}
Aloha.host[*].iaTime = exponential(${iaMean=2,5}s)
`

// TestOMNeTPPUntil: --until on real aloha's channel utilisation adds
// repetitions in rounds only where the 95 % interval is still wider than
// 5 % of the mean, stops when every combination is there, and reports
// what simswarm results --summary computes from the same files; the same
// command again runs nothing; a tighter target stops at the cap; the
// user's own -r expression still restricts the campaign.
func TestOMNeTPPUntil(t *testing.T) {
	o := realOMNeT(t)
	dir := o.CopySample(t, "aloha", t.TempDir())
	if err := os.WriteFile(filepath.Join(dir, "until.ini"), []byte(untilIni), 0o644); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	const target = "Aloha.server.channelUtilization:last ci95 < 5%"
	aloha := []string{"--", "./aloha", "-u", "Cmdenv", "-f", "until.ini", "-c", "Until"}
	run := func(args ...string) result {
		t.Helper()
		return runSimswarm(t, dir, state, append([]string{"run", "-j", "2", "--json", "--ccache-dir", sharedCcache()}, args...)...)
	}

	r := run(append([]string{"--until", target, "--max-repetitions", "30"}, aloha...)...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	rep := untilJSON(t, r)
	if len(rep.Combinations) != 4 || len(rep.Rounds) < 2 {
		t.Fatalf("%d combinations in %d rounds, want 4 in more than one round\n%s", len(rep.Combinations), len(rep.Rounds), r.stderr)
	}
	if rep.Rounds[0].Runs != 12 {
		t.Errorf("first round: %d runs, want 3 repetitions of 4 combinations", rep.Rounds[0].Runs)
	}
	sum := summaryRows(t, dir, "results", "channelUtilization:last")
	total, executed, least, most := 0, 0, 1000, 0
	for _, rd := range rep.Rounds {
		executed += rd.Executed
	}
	for _, c := range rep.Combinations {
		key := c.Vars[0].Value + "/" + c.Vars[1].Value
		tg := c.Targets[0]
		s, ok := sum[key]
		if !ok {
			t.Fatalf("combination %s not in simswarm results --summary", key)
		}
		n, mean, ci := int(s["n"].(float64)), s["mean"].(float64), s["ci95"].(float64)
		if tg.N != n || c.Repetitions != n || math.Abs(*tg.Mean-mean) > 1e-12*math.Abs(mean) || math.Abs(*tg.HalfWidth-ci) > 1e-12*ci {
			t.Errorf("%s: reported n=%d reps=%d mean=%v ci95=%v; simswarm results --summary says n=%d mean=%v ci95=%v",
				key, tg.N, c.Repetitions, *tg.Mean, *tg.HalfWidth, n, mean, ci)
		}
		if want := strconv.FormatFloat(100*ci/mean, 'g', 3, 64) + "%"; tg.Precision != want {
			t.Errorf("%s: precision %q, the summary's is %s", key, tg.Precision, want)
		}
		if !tg.Met || ci >= 0.05*mean {
			t.Errorf("%s: met=%v with a half-width of %.2f%% of the mean", key, tg.Met, 100*ci/mean)
		}
		total += n
		least, most = min(least, n), max(most, n)
	}
	if !rep.Met {
		t.Error("report says not every combination met the target")
	}
	// Repetitions went only where they were needed: the combinations
	// differ, and every run executed is one of the results.
	if least == most {
		t.Errorf("every combination got %d repetitions: the rounds did not tell them apart", least)
	}
	if executed != total {
		t.Errorf("%d runs executed for %d repetitions in the results", executed, total)
	}
	if n := len(files(t, filepath.Join(dir, "results"), "Until-*.sca")); n != total {
		t.Errorf("%d result files, want %d", n, total)
	}
	if !strings.Contains(r.stderr, "round 2:") {
		t.Errorf("no round lines on the terminal:\n%s", r.stderr)
	}

	// The same command again: the same rounds, every run already done.
	r = run(append([]string{"--until", target, "--max-repetitions", "30"}, aloha...)...)
	again := untilJSON(t, r)
	if r.code != 0 || len(again.Rounds) != len(rep.Rounds) {
		t.Fatalf("again: exit %d, %d rounds (first time %d)\n%s", r.code, len(again.Rounds), len(rep.Rounds), r.stderr)
	}
	for _, rd := range again.Rounds {
		if rd.Executed != 0 {
			t.Errorf("again: round executed %d runs", rd.Executed)
		}
	}

	// Out of reach within four repetitions: all four run, none is met,
	// exit status 0 (the cap is an answer, not a failure).
	r = run(append([]string{"--until", "Aloha.server.channelUtilization:last ci95 < 0.1%", "--max-repetitions", "4", "--results", "capped"}, aloha...)...)
	capped := untilJSON(t, r)
	if r.code != 0 || capped.Met || len(capped.Combinations) != 4 {
		t.Fatalf("capped: exit %d, %+v\n%s", r.code, capped, r.stderr)
	}
	for _, c := range capped.Combinations {
		if c.Repetitions != 4 || c.Targets[0].Met || c.Targets[0].N != 4 {
			t.Errorf("capped: %+v", c)
		}
	}
	if !strings.Contains(r.stderr, "0 of 4 combinations reached the target; the others stopped at --max-repetitions 4") {
		t.Errorf("capped: the table does not say the cap was hit:\n%s", r.stderr)
	}

	// The user's -r expression is kept: only numHosts=10.
	r = run(append([]string{"--until", target, "--max-repetitions", "30", "--results", "filtered"}, append(aloha, "-r", "$numHosts==10")...)...)
	filtered := untilJSON(t, r)
	if r.code != 0 || len(filtered.Combinations) != 2 {
		t.Fatalf("filtered: exit %d, %d combinations, want the 2 of numHosts=10\n%s", r.code, len(filtered.Combinations), r.stderr)
	}
	for _, c := range filtered.Combinations {
		if c.Vars[0].Value != "10" {
			t.Errorf("filtered: combination %+v", c.Vars)
		}
	}

	// A scalar no run records: after the first round, exit 1 (its runs
	// were executed: 2 would say nothing was), one line naming the
	// scalars that exist.
	r = run(append([]string{"--until", "Aloha.server.noSuchScalar ci95 < 5%", "--results", "nosuch"}, aloha...)...)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if r.code != 1 || !strings.Contains(last, "no run records Aloha.server.noSuchScalar; the runs record ") || !strings.Contains(last, "Aloha.server.channelUtilization:last") {
		t.Errorf("unknown scalar: exit %d, last line %q", r.code, last)
	}
}

// untilTemplate makes a simswarm.toml project whose runs write CSV files:
// each run prints one value, its variable x plus noise seeded by the
// repetition (awk's rand, deterministic per seed).
func untilTemplate(t *testing.T) string {
	dir := t.TempDir()
	toml := `[build]
command = ""
[run]
command = "awk -v r={repetition} -v x={x} 'BEGIN { srand(r + 1); print \"v\"; print x + 2 * (rand() - 0.5) }' > {resultdir}/out-{run}.csv"
[run.vars]
x = [10, 40]
[results]
files = ["out-*.csv"]
`
	os.WriteFile(filepath.Join(dir, "simswarm.toml"), []byte(toml), 0o644)
	return dir
}

// checkUntilTemplate checks what --until 'v ci95 < 5%' --max-repetitions
// 40 did on untilTemplate's project.
func checkUntilTemplate(t *testing.T, dir string, r result) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	rep := untilJSON(t, r)
	if len(rep.Combinations) != 2 || !rep.Met || len(rep.Rounds) < 2 {
		t.Fatalf("%+v\n%s", rep, r.stderr)
	}
	reps := map[string]int{}
	for _, c := range rep.Combinations {
		reps[c.Vars[0].Value] = c.Repetitions
	}
	// The noise is the same, the mean 4x larger: x=40 is precise sooner.
	if reps["40"] >= reps["10"] || reps["40"] < 3 {
		t.Errorf("repetitions per x: %v, want fewer for x=40 than for x=10", reps)
	}
	n := len(files(t, filepath.Join(dir, "results"), "out-*.csv"))
	if n != reps["10"]+reps["40"] {
		t.Errorf("%d result files for %v repetitions", n, reps)
	}
	// Run numbers are those of 40 repetitions: x=40's start at 40.
	if len(files(t, filepath.Join(dir, "results"), "out-40.csv")) != 1 {
		t.Errorf("no out-40.csv: the first repetition of x=40 is not run 40")
	}
}

// TestUntilTemplate: --until on a simswarm.toml template grows its
// {repetition} in rounds as an OMNeT++ repetition grows, per value of its
// variable, on the embedded engine.
func TestUntilTemplate(t *testing.T) {
	dir := untilTemplate(t)
	r := runSimswarm(t, dir, t.TempDir(), "run", "-j", "2", "--json", "--until", "v ci95 < 5%", "--max-repetitions", "40")
	checkUntilTemplate(t, dir, r)
}

// TestClusterUntil: the same on a cluster (server, builder, two runners
// in network namespaces): the rounds only drive campaigns, so they work
// wherever a campaign does.
func TestClusterUntil(t *testing.T) {
	c := newCluster(t, 2)
	dir := untilTemplate(t)
	r := c.client(t, dir, "run", "--json", "--until", "v ci95 < 5%", "--max-repetitions", "40")
	checkUntilTemplate(t, dir, r)
}

// TestUntilBadInputs: each mistake is one line and exit 2, before an
// engine starts.
func TestUntilBadInputs(t *testing.T) {
	dir := example(t, "aloha")
	noRep := t.TempDir()
	os.WriteFile(filepath.Join(noRep, "simswarm.toml"), []byte("[build]\ncommand = \"\"\n[run]\ncommand = \"echo 1 > {resultdir}/x.csv\"\nrepeat = 3\n"), 0o644)
	list := filepath.Join(t.TempDir(), "list")
	os.WriteFile(list, []byte(dir+" ./aloha\n"), 0o644)
	const good = "Aloha.server.channelUtilization:last ci95 < 5%"
	for _, c := range []struct {
		name string
		dir  string
		args []string
		want string
	}{
		{"zero target", dir, []string{"--until", "Aloha.server.x ci95 < 0%", "--", "./aloha"}, "the target must be positive"},
		{"negative target", dir, []string{"--until", "Aloha.server.x ci95 < -2%", "--", "./aloha"}, "the target must be positive"},
		{"malformed", dir, []string{"--until", "Aloha.server.x below 5%", "--", "./aloha"}, `expected 'MODULE.SCALAR ci95 < 5%'`},
		{"wrong way", dir, []string{"--until", "Aloha.server.x ci95 > 5%", "--", "./aloha"}, "bounds the half-width from above"},
		{"max 0", dir, []string{"--until", good, "--max-repetitions", "0", "--", "./aloha"}, "--max-repetitions must be at least 2"},
		{"max without until", dir, []string{"--max-repetitions", "10", "--", "./aloha"}, "--max-repetitions needs --until"},
		{"template without repetitions", noRep, []string{"--until", "v ci95 < 5%"}, "uses neither {repetition} nor {run}"},
		{"run numbers", dir, []string{"--until", good, "--", "./aloha", "-r", "0..9"}, "not run numbers"},
		{"repeat given", dir, []string{"--until", good, "--", "./aloha", "--repeat=4"}, "remove --repeat"},
		{"detach", dir, []string{"--until", good, "--detach", "--", "./aloha"}, "cannot be combined with --detach"},
		{"list", dir, []string{"--until", good, "--list", list}, "cannot be combined with --list"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runSimswarm(t, c.dir, t.TempDir(), append([]string{"run"}, c.args...)...)
			msg := strings.TrimSpace(r.stderr)
			if r.code != 2 || strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "simswarm: ") || !strings.Contains(msg, c.want) {
				t.Errorf("exit %d, stderr %q: want exit 2 and one line saying %q", r.code, msg, c.want)
			}
		})
	}
}
