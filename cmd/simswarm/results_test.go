package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func parseCSV(t *testing.T, s string) (map[string]int, [][]string) {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(s)).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("not CSV (%v):\n%s", err, s)
	}
	cols := map[string]int{}
	for i, h := range recs[0] {
		cols[h] = i
	}
	return cols, recs[1:]
}

// TestResultsAfterCampaign: a real campaign of the bundled aloha example,
// then simswarm results as a user would run it: a table with the
// iteration variables as columns, each run's provenance joined, a summary
// over repetitions, and the same table read from the engine by campaign id.
func TestResultsAfterCampaign(t *testing.T) {
	dir := example(t, "aloha")
	state := t.TempDir()
	r := runSimswarm(t, dir, state, "run", "-q", "--json", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "0..5")
	if r.code != 0 {
		t.Fatalf("campaign: exit %d\n%s", r.code, r.stderr)
	}
	camp := jsonSummary(t, r).Campaign

	// Provenance: one record per run, as the client extracted them.
	b, err := os.ReadFile(filepath.Join(dir, "results", "provenance.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d provenance records for 6 runs:\n%s", len(lines), b)
	}
	var p struct {
		Campaign, Command, Host, Artifact, Snapshot, State string
		Run                                                int
		Wall                                               float64 `json:"wall_seconds"`
		Version                                            string  `json:"simswarm_version"`
		Files                                              []string
	}
	if err := json.Unmarshal([]byte(lines[0]), &p); err != nil {
		t.Fatal(err)
	}
	if p.Campaign != camp || p.State != "succeeded" || p.Host == "" || len(p.Artifact) != 64 || len(p.Snapshot) != 64 ||
		!strings.Contains(p.Command, "./aloha -c PureAlohaExperiment -s -r "+strconv.Itoa(p.Run)) || p.Wall <= 0 || p.Version == "" || len(p.Files) < 2 {
		t.Errorf("provenance record: %+v", p)
	}

	r = runSimswarm(t, dir, state, "results", "--provenance", "--filter", "type =~ scalar")
	if r.code != 0 {
		t.Fatalf("results: exit %d\n%s", r.code, r.stderr)
	}
	cols, rows := parseCSV(t, r.stdout)
	for _, c := range []string{"run", "type", "module", "name", "value", "numHosts", "iaMean", "repetition", "host", "command", "wall_seconds", "runnumber"} {
		if _, ok := cols[c]; !ok {
			t.Fatalf("no %s column in %v", c, cols)
		}
	}
	runs := map[string]bool{}
	for _, row := range rows {
		if row[cols["type"]] != "scalar" || row[cols["host"]] == "" || row[cols["numHosts"]] != "10" {
			t.Fatalf("row %v", row)
		}
		n := row[cols["runnumber"]]
		if !strings.Contains(row[cols["command"]], "-r "+n+" ") || !strings.Contains(row[cols["run"]], "-"+n+"-") {
			t.Fatalf("row joined to another run's provenance: %v", row)
		}
		runs[n] = true
	}
	if len(runs) != 6 || len(rows) < 6 {
		t.Fatalf("%d rows from %d runs", len(rows), len(runs))
	}

	// The same campaign read from the engine, by its id, from another
	// directory. (Embedded runs wrote their files straight into results/,
	// so the engine's records point there.)
	r2 := runSimswarm(t, t.TempDir(), state, "results", "--filter", "type =~ scalar", camp)
	if r2.code != 0 {
		t.Fatalf("results %s: exit %d\n%s", camp, r2.code, r2.stderr)
	}
	r1 := runSimswarm(t, dir, state, "results", "--filter", "type =~ scalar", "results")
	if r1.stdout != r2.stdout || r1.code != 0 {
		t.Errorf("the campaign's table from the engine differs from its results directory's (exit %d)", r1.code)
	}

	// Summary: iaMean 1..3 × repetitions 0,1 → 3 groups of 2 per scalar.
	r = runSimswarm(t, dir, state, "results", "--summary", "--filter", "name =~ channelUtilization*", "results")
	if r.code != 0 {
		t.Fatalf("summary: exit %d\n%s", r.code, r.stderr)
	}
	cols, rows = parseCSV(t, r.stdout)
	if len(rows) != 3 {
		t.Fatalf("summary has %d rows, want 3:\n%s", len(rows), r.stdout)
	}
	for _, row := range rows {
		if row[cols["n"]] != "2" || row[cols["ci95"]] == "" || row[cols["numHosts"]] != "10" {
			t.Errorf("summary row %v", row)
		}
	}

	// -o writes a file; Parquet too.
	out := filepath.Join(t.TempDir(), "aloha.parquet")
	if r := runSimswarm(t, dir, state, "results", "--format", "parquet", "-o", out, "results"); r.code != 0 {
		t.Fatalf("parquet: exit %d\n%s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(out); !bytes.HasPrefix(b, []byte("PAR1")) || !bytes.HasSuffix(b, []byte("PAR1")) {
		t.Errorf("%s is not a Parquet file", out)
	}
}

// TestResultsTemplate: a template simulator writes CSV and JSON files of
// its own; simswarm results concatenates them with each run's variables.
func TestResultsTemplate(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "simswarm.toml"), []byte(`[build]
command = ""
[run]
command = "./sim.sh {resultdir} {run} {rate} {repetition}"
repeat = 3
[run.vars]
rate = [1, 2]
[results]
files = ["*.csv", "stats-*.json"]
`), 0o644)
	os.WriteFile(filepath.Join(dir, "sim.sh"), []byte(`#!/bin/sh
# throughput grows with the rate; the repetition adds noise
printf 'flow,throughput\na,%s\nb,%s\n' "$(($3 * 10 + $4))" "$(($3 * 20))" > "$1/flows-$2.csv"
printf '{"delay": %s, "label": "r%s"}\n' "$(($4 + 1))" "$3" > "$1/stats-$2.json"
`), 0o755)
	state := t.TempDir()
	if r := runSimswarm(t, dir, state, "run", "-q"); r.code != 0 {
		t.Fatalf("campaign: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := runSimswarm(t, dir, state, "results")
	if r.code != 0 {
		t.Fatalf("results: exit %d\n%s", r.code, r.stderr)
	}
	cols, rows := parseCSV(t, r.stdout)
	if len(rows) != 6*2+6 {
		t.Fatalf("%d rows, want 12 flow rows and 6 stats rows:\n%s", len(rows), r.stdout)
	}
	for _, c := range []string{"run", "rate", "repetition", "file", "flow", "throughput", "delay", "label"} {
		if _, ok := cols[c]; !ok {
			t.Fatalf("no %s column: %v", c, cols)
		}
	}
	for _, row := range rows {
		rate, _ := strconv.Atoi(row[cols["rate"]])
		rep, _ := strconv.Atoi(row[cols["repetition"]])
		run, _ := strconv.Atoi(row[cols["run"]])
		if run != (rate-1)*3+rep {
			t.Fatalf("row %v: run %d is not rate %d repetition %d", row, run, rate, rep)
		}
		if row[cols["flow"]] == "a" && row[cols["throughput"]] != strconv.Itoa(rate*10+rep) {
			t.Fatalf("row %v has another run's data", row)
		}
		if row[cols["label"]] != "" && row[cols["label"]] != "r"+strconv.Itoa(rate) {
			t.Fatalf("row %v", row)
		}
	}
	r = runSimswarm(t, dir, state, "results", "--summary")
	cols, rows = parseCSV(t, r.stdout)
	found := false
	for _, row := range rows {
		if row[cols["name"]] == "delay" && row[cols["rate"]] == "2" {
			found = true
			if row[cols["n"]] != "3" || row[cols["mean"]] != "2" || row[cols["stddev"]] != "1" {
				t.Errorf("delay summary %v", row)
			}
		}
	}
	if !found || r.code != 0 {
		t.Errorf("no delay summary for rate 2 (exit %d):\n%s", r.code, r.stdout)
	}
}

// TestResultsBadInputs: each bad input is a one-line error naming the
// file (and line), exit 2; an existing output file is never replaced by a
// failed export; --keep-going exports the good files.
func TestResultsBadInputs(t *testing.T) {
	sca, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "omnetpp-output", "PureAlohaExperiment-numHosts=10,iaMean=1-#0.sca"))
	if err != nil {
		t.Skipf("real OMNeT++ output is not here (../shared/omnetpp-output): %v", err)
	}
	dir := t.TempDir()
	res := filepath.Join(dir, "results")
	os.MkdirAll(res, 0o755)
	os.WriteFile(filepath.Join(res, "good.sca"), sca, 0o644)
	cut := bytes.Index(sca, []byte("scalar Aloha.server duration")) + 10
	line := bytes.Count(sca[:cut], []byte("\n")) + 1
	os.WriteFile(filepath.Join(res, "truncated.sca"), sca[:cut], 0o644)
	vecOnly := filepath.Join(dir, "vec")
	os.MkdirAll(vecOnly, 0o755)
	os.WriteFile(filepath.Join(vecOnly, "a.vec"), []byte("version 3\nrun r\n"), 0o644)
	v4 := filepath.Join(dir, "v4")
	os.MkdirAll(v4, 0o755)
	os.WriteFile(filepath.Join(v4, "x.sca"), []byte("version 4\n"), 0o644)
	empty := filepath.Join(dir, "empty")
	os.MkdirAll(empty, 0o755)
	state := t.TempDir()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"truncated", []string{"results"}, "truncated.sca:" + strconv.Itoa(line) + ": file is truncated"},
		{"vec without vci", []string{"results", "--vectors", vecOnly}, "a.vec: no index a.vci beside it"},
		{"unknown version", []string{"results", v4}, `x.sca:1: unknown result file version "4"`},
		{"filter syntax", []string{"results", "--filter", "name =~ (x"}, `filter "name =~ (x": expected a pattern after '=~', found '(' at character 9`},
		{"no result files", []string{"results", empty}, "no result files (.sca) in it"},
		{"format", []string{"results", "--format", "xlsx"}, `unknown format "xlsx": use csv, json or parquet`},
		{"no such directory", []string{"results", filepath.Join(dir, "nope")}, "no such file or directory"},
	} {
		r := runSimswarm(t, dir, state, c.args...)
		msg := strings.TrimSpace(r.stderr)
		if r.code != 2 || !strings.Contains(msg, c.want) || strings.Count(msg, "\n") > 0 || r.stdout != "" {
			t.Errorf("%s: exit %d, stderr %q, stdout %d bytes; want exit 2 and one line containing %q", c.name, r.code, msg, len(r.stdout), c.want)
		}
	}

	// A failed export leaves an existing output file alone.
	out := filepath.Join(dir, "table.csv")
	os.WriteFile(out, []byte("precious\n"), 0o644)
	if r := runSimswarm(t, dir, state, "results", "-o", out); r.code != 2 {
		t.Errorf("exit %d", r.code)
	}
	if b, _ := os.ReadFile(out); string(b) != "precious\n" {
		t.Errorf("a failed export replaced %s", out)
	}
	// --keep-going: the good file's 127 items, the bad one named, exit 2.
	r := runSimswarm(t, dir, state, "results", "--keep-going", "-o", out)
	if r.code != 2 || !strings.Contains(r.stderr, "truncated.sca:"+strconv.Itoa(line)) || !strings.Contains(r.stderr, "1 result files could not be read; 1 files exported") {
		t.Errorf("keep-going: exit %d stderr %q", r.code, r.stderr)
	}
	b, _ := os.ReadFile(out)
	if _, rows := parseCSV(t, string(b)); len(rows) != 127 {
		t.Errorf("keep-going exported %d rows, want the good file's 127", len(rows))
	}
}
