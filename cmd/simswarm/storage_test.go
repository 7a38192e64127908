package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/engine"
)

// sizedProject is a template project whose runs each write `$1` random
// bytes (incompressible: what the store holds is what the runs wrote);
// `$2` names the campaign, so that each name is a campaign of its own.
func sizedProject(t *testing.T, repeat int) string {
	return templateProject(t, fmt.Sprintf(`[build]
command = ""
[run]
command = "set -- {args}; echo campaign $2 run {run}; head -c $1 /dev/urandom > {resultdir}/data-{run}.bin"
repeat = %d
`, repeat), map[string]string{})
}

func usage(t *testing.T, eng *engine.Engine) *engine.Usage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := eng.StoreUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestStoreStaysSmall: ten campaigns with 10 MB of results per run leave
// the server's store no larger than one campaign's worth once their
// results are in results/: each client deletes what it fetched. A
// --keep-results campaign keeps its results; a --detach'ed one keeps them
// until it is attached.
func TestStoreStaysSmall(t *testing.T) {
	const perRun, runs = 10 << 20, 2
	srv := startLoopServer(t)
	startWorker(t, "builder", "--server", srv.url, "--creds", srv.creds, "--dir", filepath.Join(t.TempDir(), "ws"))
	startWorker(t, "runner", "--server", srv.url, "--creds", srv.creds, "--slots", "2", "--cache", t.TempDir())
	eng := srv.engine(t)
	dir := sizedProject(t, runs)
	oneCampaign := int64(perRun * runs)
	var peak int64
	for i := range 10 {
		results := t.TempDir()
		r := srv.client(t, dir, "run", "--results", results, "--json", "--", fmt.Sprint(perRun), fmt.Sprintf("c%d", i))
		if s := jsonSummary(t, r); r.code != 0 || s.Succeeded != runs {
			t.Fatalf("campaign %d: exit %d %+v\n%s", i, r.code, s, r.stderr)
		}
		for n := range runs {
			if fi, err := os.Stat(filepath.Join(results, fmt.Sprintf("data-%d.bin", n))); err != nil || fi.Size() != perRun {
				t.Fatalf("campaign %d run %d: %v", i, n, err)
			}
		}
		u := usage(t, eng)
		peak = max(peak, u.Total)
		if u.Kinds[engine.KindResult].Count != 0 {
			t.Errorf("after campaign %d the store still holds %+v of results", i, u.Kinds[engine.KindResult])
		}
	}
	t.Logf("store after ten campaigns of %d MiB each: at most %d bytes", oneCampaign>>20, peak)
	if peak > oneCampaign {
		t.Errorf("store held up to %d bytes after extraction, more than one campaign's %d", peak, oneCampaign)
	}

	// --keep-results: the results stay.
	r := srv.client(t, dir, "run", "--results", t.TempDir(), "--keep-results", "--json", "--", fmt.Sprint(perRun), "kept")
	if r.code != 0 {
		t.Fatalf("--keep-results: exit %d\n%s", r.code, r.stderr)
	}
	if k := usage(t, eng).Kinds[engine.KindResult]; k.Count != runs || k.Bytes < oneCampaign {
		t.Errorf("--keep-results left %+v in the store", k)
	}

	// --detach: the results wait in the store for attach.
	r = srv.client(t, dir, "run", "--detach", "--json", "--", fmt.Sprint(perRun), "detached")
	s := jsonSummary(t, r)
	if r.code != 0 {
		t.Fatalf("--detach: exit %d\n%s", r.code, r.stderr)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for usage(t, eng).Kinds[engine.KindResult].Count != 2*runs {
		if time.Now().After(deadline) {
			t.Fatalf("the detached campaign's results did not reach the store: %+v", usage(t, eng).Kinds)
		}
		time.Sleep(300 * time.Millisecond)
	}
	results := t.TempDir()
	r = srv.client(t, dir, "attach", "--results", results, "--json", s.Campaign)
	if a := jsonSummary(t, r); r.code != 0 || a.Succeeded != runs {
		t.Fatalf("attach: exit %d %+v\n%s", r.code, a, r.stderr)
	}
	if k := usage(t, eng).Kinds[engine.KindResult]; k.Count != runs {
		t.Errorf("after attach the store holds %d result archives, want the kept campaign's %d", k.Count, runs)
	}
	if f, _ := filepath.Glob(filepath.Join(results, "data-*.bin")); len(f) != runs {
		t.Errorf("attach fetched %v", f)
	}

	// What status shows: bytes by kind.
	st := srv.client(t, t.TempDir(), "status")
	for _, k := range []string{"file/", "snap/", "art/", "res/", "log/", "records"} {
		if !strings.Contains(st.stdout, "\n  "+k) {
			t.Errorf("status shows no %s line:\n%s", k, st.stdout)
		}
	}
}

// TestMaxStore: a server with --max-store refuses results past its bound:
// the run fails saying so, the store stays within the bound, and runs
// whose results fit go on.
func TestMaxStore(t *testing.T) {
	const bound = 8 << 20
	srv := startLoopServer(t, "--max-store", "8MiB")
	startWorker(t, "builder", "--server", srv.url, "--creds", srv.creds, "--dir", filepath.Join(t.TempDir(), "ws"))
	startWorker(t, "runner", "--server", srv.url, "--creds", srv.creds, "--slots", "2", "--cache", t.TempDir())
	eng := srv.engine(t)
	dir := sizedProject(t, 1)
	r := srv.client(t, dir, "run", "--results", t.TempDir(), "--json", "--", fmt.Sprint(10<<20), "big")
	s := jsonSummary(t, r)
	if r.code != 1 || s.Failed != 1 || !strings.Contains(s.Failures[0].Reason, "object store is full") {
		t.Fatalf("10 MB into an 8 MiB store: exit %d %+v\n%s", r.code, s, r.stderr)
	}
	if u := usage(t, eng); u.Total > bound || u.Max != bound {
		t.Errorf("store at %d bytes, bound %d (want %d)", u.Total, u.Max, bound)
	}
	r = srv.client(t, dir, "run", "--results", t.TempDir(), "--json", "--", fmt.Sprint(1<<20), "small")
	if s := jsonSummary(t, r); r.code != 0 || s.Succeeded != 1 {
		t.Fatalf("1 MB into the bounded store: exit %d %+v\n%s", r.code, s, r.stderr)
	}
}

// TestStorageBadInputs: each is refused with one line and exit 2; gc on a
// state directory another process uses most of all.
func TestStorageBadInputs(t *testing.T) {
	state := t.TempDir()
	srv, err := engine.StartEmbedded(filepath.Join(state, "engine"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"gc", "--state", state}, "in use"},
		{[]string{"gc", "--state", state, "--dry-run"}, "in use"},
		{[]string{"gc", "--older-than", "0"}, "invalid --older-than"},
		{[]string{"gc", "--older-than", "soon"}, "invalid --older-than"},
		{[]string{"gc", "extra"}, "unknown command"},
		{[]string{"server", "--state", t.TempDir(), "--max-store", "lots"}, "invalid --max-store"},
		{[]string{"server", "--state", t.TempDir(), "--max-store", "10K"}, "too small"},
		{[]string{"server", "--state", t.TempDir(), "--results-ttl", "-1d"}, "invalid --results-ttl"},
	} {
		r := runSimswarm(t, t.TempDir(), t.TempDir(), c.args...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code != 2 || len(lines) != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("simswarm %v: exit %d, stderr %q; want exit 2 and one line with %q", c.args, r.code, r.stderr, c.want)
		}
	}
}

// TestResultsDiskFull: results/ on a small file system. Runs that found
// no room fail saying the disk is full (not "killed by SIGPIPE" with an
// empty .out), runs that fit are whole, nothing half-written stays; once
// there is room, the same command runs exactly the missing runs.
func TestResultsDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root (CI runs as root)")
	}
	results := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", results).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	defer exec.Command("umount", "-l", results).Run()
	const runs, size = 10, 200000
	dir := sizedProject(t, runs)
	state := t.TempDir()
	args := []string{"run", "-j", "2", "--results", results, "--json", "--", fmt.Sprint(size), "full"}
	r := runSimswarm(t, dir, state, args...)
	s := jsonSummary(t, r)
	if r.code != 1 || s.Failed == 0 || s.Succeeded == 0 {
		t.Fatalf("1 MiB for %d runs of %d bytes: exit %d %+v\n%s", runs, size, r.code, s, r.stderr)
	}
	t.Logf("on a 1 MiB results disk: %d succeeded, %d failed:\n%s", s.Succeeded, s.Failed, r.stderr)
	failed := map[int]bool{}
	for _, f := range s.Failures {
		failed[f.Run] = true
		if !strings.Contains(f.Reason, "disk full") || f.Signal != "" {
			t.Errorf("run %d: reason %q, signal %q; want disk full", f.Run, f.Reason, f.Signal)
		}
	}
	if !strings.Contains(r.stdout+r.stderr, "disk full") || strings.Contains(r.stderr, "SIGPIPE") {
		t.Errorf("the summary does not say disk full:\n%s", r.stderr)
	}
	check := func(when string) {
		t.Helper()
		for n := range runs {
			data, out := filepath.Join(results, fmt.Sprintf("data-%d.bin", n)), filepath.Join(results, fmt.Sprintf("run-#%d.out", n))
			fi, derr := os.Stat(data)
			o, oerr := os.ReadFile(out)
			switch {
			case failed[n] && (derr == nil || oerr == nil):
				t.Errorf("%s: failed run %d left files behind", when, n)
			case !failed[n] && (derr != nil || fi.Size() != size || oerr != nil || !strings.Contains(string(o), fmt.Sprintf("run %d", n))):
				t.Errorf("%s: run %d: data %v (%v), out %q (%v)", when, n, fi, derr, o, oerr)
			}
		}
		if _, err := os.Lstat(filepath.Join(results, ".simswarm-scratch")); err == nil {
			t.Errorf("%s: scratch directory left in results/", when)
		}
	}
	check("on the full disk")
	if out, err := exec.Command("mount", "-o", "remount,size=16m", results).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	r = runSimswarm(t, dir, state, args...)
	again := jsonSummary(t, r)
	if r.code != 0 || again.Succeeded != runs || again.Executed != len(failed) || again.Cached != runs-len(failed) {
		t.Fatalf("rerun with room: exit %d %+v, want the %d failed runs executed\n%s", r.code, again, len(failed), r.stderr)
	}
	failed = map[int]bool{}
	check("after the rerun")
}

// TestStaleScratch: a client killed with SIGKILL while its runs write
// leaves their scratch directories in results/; the next run of the same
// command removes them and completes.
func TestStaleScratch(t *testing.T) {
	dir := templateProject(t, "[build]\ncommand = \"\"\n[run]\ncommand = \"echo x > {resultdir}/x-{run}.txt; exec sleep 4\"\nrepeat = 2\n", map[string]string{})
	state, results := t.TempDir(), t.TempDir()
	cmd := exec.Command(binary, "run", "-j", "2", "--results", results, "-q")
	cmd.Dir, cmd.Env = dir, append(cleanEnv(), "SIMSWARM_STATE="+state)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }()
	scratch := filepath.Join(results, ".simswarm-scratch")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		stages, _ := filepath.Glob(filepath.Join(scratch, "*", "results", "x-*.txt"))
		if len(stages) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the runs never started writing")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	if left, _ := filepath.Glob(filepath.Join(scratch, "*")); len(left) < 2 {
		t.Fatalf("nothing left behind by the killed client (%v): the test proves nothing", left)
	}
	r := runSimswarm(t, dir, state, "run", "-j", "2", "--results", results, "--json")
	if s := jsonSummary(t, r); r.code != 0 || s.Succeeded != 2 {
		t.Fatalf("rerun: exit %d %+v\n%s", r.code, s, r.stderr)
	}
	if _, err := os.Lstat(scratch); err == nil {
		left, _ := filepath.Glob(filepath.Join(scratch, "*"))
		t.Errorf("stale scratch left after the next run: %v", left)
	}
	for _, n := range []string{"x-0.txt", "x-1.txt", "run-#0.out", "run-#1.out"} {
		if _, err := os.Stat(filepath.Join(results, n)); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

// TestLargeFileWarning: a stray 60 MB file in a project is named once, with
// how to leave it out; the next campaign says nothing more of it.
func TestLargeFileWarning(t *testing.T) {
	dir := templateProject(t, "[build]\ncommand = \"\"\n[run]\ncommand = \"echo ok > {resultdir}/x-{run}.txt\"\n", map[string]string{})
	f, err := os.Create(filepath.Join(dir, "capture.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("pcap")
	f.Truncate(60 << 20) // sparse
	f.Close()
	state := t.TempDir()
	r := runSimswarm(t, dir, state, "run", "-j", "1")
	if r.code != 0 || strings.Count(r.stderr, "capture.pcap (60.0 MiB)") != 1 || !strings.Contains(r.stderr, ".gitignore") || !strings.Contains(r.stderr, "ignore = [") {
		t.Fatalf("first run: exit %d, want one warning naming capture.pcap and how to leave it out:\n%s", r.code, r.stderr)
	}
	os.WriteFile(filepath.Join(dir, "other.ini"), []byte("changed"), 0o644)
	if r := runSimswarm(t, dir, state, "run", "-j", "1"); r.code != 0 || strings.Contains(r.stderr, "capture.pcap") {
		t.Errorf("second run: exit %d, warned again:\n%s", r.code, r.stderr)
	}
}
