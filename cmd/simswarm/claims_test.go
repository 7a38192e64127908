package main

// Runs never silently overwrite each other's files (issue 23, item 4).

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// checkOneClaim: a campaign of three runs that all write out.csv ends
// with exit 1, each refused run naming itself, the run whose file stays
// and the file; out.csv is that run's.
func checkOneClaim(t *testing.T, dir string, r result) {
	t.Helper()
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	s := jsonSummary(t, r)
	if s.Succeeded != 1 || s.Failed != 2 {
		t.Fatalf("%d succeeded, %d failed; want 1 and 2: %+v", s.Succeeded, s.Failed, s)
	}
	both := regexp.MustCompile(`runs (\d+) and (\d+) of campaign [0-9a-f]{16} both write out\.csv`)
	stays := -1
	for _, f := range s.Failures {
		m := both.FindStringSubmatch(f.Reason)
		if m == nil {
			t.Fatalf("run %d failed saying %q, want it to name both runs and out.csv", f.Run, f.Reason)
		}
		by, _ := strconv.Atoi(m[1])
		if refused, _ := strconv.Atoi(m[2]); refused != f.Run || by == f.Run {
			t.Errorf("run %d: %q", f.Run, f.Reason)
		}
		if stays >= 0 && by != stays {
			t.Errorf("the runs disagree on whose file stays: %d and %d", stays, by)
		}
		stays = by
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join(dir, "results", "out.csv"))); got != strconv.Itoa(stays) {
		t.Fatalf("results/out.csv holds %q, want run %d's", got, stays)
	}
}

const sameFileProject = `[build]
command = ""
[run]
command = "echo {run} > {resultdir}/out.csv"
repeat = 3
`

// TestRunsClaimingOneFile: embedded, where runners write into results/
// themselves; the same command again changes nothing (the done run keeps
// its file, the others are refused again).
func TestRunsClaimingOneFile(t *testing.T) {
	dir := templateProject(t, sameFileProject, map[string]string{})
	state := t.TempDir()
	for range 2 {
		checkOneClaim(t, dir, runSimswarm(t, dir, state, "run", "-j", "1", "--json"))
	}
}

// TestClusterRunsClaimingOneFile: on a server, where the client writes
// the files it fetches.
func TestClusterRunsClaimingOneFile(t *testing.T) {
	srv := startLoopServer(t)
	work := t.TempDir()
	startWorker(t, "builder", "--server", srv.url, "--creds", srv.creds, "--dir", filepath.Join(work, "ws"), "--ccache-dir", "off")
	startWorker(t, "runner", "--server", srv.url, "--creds", srv.creds, "--slots", "2", "--name", "r1", "--cache", filepath.Join(work, "r1"))
	dir := templateProject(t, sameFileProject, map[string]string{})
	checkOneClaim(t, dir, srv.client(t, dir, "run", "--json"))
}

// TestOMNeTPPOutputFileForEveryRun: an OMNeT++ output file option naming
// one file for every run is refused before anything runs (exit 2), naming
// two of the runs and the file; one with ${runnumber} runs.
func TestOMNeTPPOutputFileForEveryRun(t *testing.T) {
	dir := example(t, "aloha")
	state := t.TempDir()
	r := runSimswarm(t, dir, state, "run", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "0..2", "--output-scalar-file=${resultdir}/same.sca")
	last := strings.TrimSpace(r.stderr)
	last = last[strings.LastIndex(last, "\n")+1:]
	if r.code != 2 || !strings.HasPrefix(last, "simswarm: runs 0 and 1 (and every other) would all write same.sca") {
		t.Fatalf("exit %d, last line %q", r.code, last)
	}
	if n := len(files(t, filepath.Join(dir, "results"), "*")); n != 0 {
		t.Fatalf("%d files in results/ after a refused campaign", n)
	}
	r = runSimswarm(t, dir, state, "run", "-q", "--json", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "0..2", "--output-scalar-file=${resultdir}/own-${runnumber}.sca")
	if s := jsonSummary(t, r); r.code != 0 || s.Succeeded != 3 || len(files(t, filepath.Join(dir, "results"), "own-*.sca")) != 3 {
		t.Fatalf("per-run names: exit %d %+v\n%s", r.code, s, r.stderr)
	}
}
