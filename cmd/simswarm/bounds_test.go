package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sizedTemplate writes a template project of vars variables with values
// values each, repeated repeat times.
func sizedTemplate(t *testing.T, vars, values int, repeat string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sized")
	os.MkdirAll(dir, 0o755)
	var b strings.Builder
	b.WriteString("[build]\ncommand = \"\"\n[run]\ncommand = \"true {resultdir}\"\nrepeat = " + repeat + "\n[run.vars]\n")
	for v := 0; v < vars; v++ {
		b.WriteString(string(rune('a'+v)) + " = [")
		for i := 0; i < values; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Itoa(i))
		}
		b.WriteString("]\n")
	}
	os.WriteFile(filepath.Join(dir, "simswarm.toml"), []byte(b.String()), 0o644)
	return dir
}

// TestSizeBadInputs: run filters that select nothing or everything by
// mistake, and campaign bounds, are one-line errors with exit status 2,
// before any engine starts.
func TestSizeBadInputs(t *testing.T) {
	dir := example(t, "aloha")
	state := t.TempDir()
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"trailing -r", []string{"run", "--", "./aloha", "-c", "PureAlohaExperiment", "-r"}, []string{"-r at the end of the simulation command has no value"}},
		{"empty -r", []string{"run", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", ""}, []string{"run filter (-r) is empty"}},
		{"blank -r", []string{"run", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "  "}, []string{"run filter (-r) is empty"}},
		{"empty runs-to-execute", []string{"run", "--", "./aloha", "-c", "PureAlohaExperiment", "--cmdenv-runs-to-execute="}, []string{"run filter (-r) is empty"}},
		{"trailing -c", []string{"run", "--", "./aloha", "-c"}, []string{"-c at the end"}},
		{"--max-runs 0", []string{"run", "--max-runs", "0", "--", "./aloha"}, []string{"--max-runs must be at least 1, not 0"}},
		{"--max-runs negative", []string{"run", "--max-runs", "-5", "--", "./aloha"}, []string{"--max-runs must be at least 1, not -5"}},
		{"--max-runs not a number", []string{"run", "--max-runs", "lots", "--", "./aloha"}, []string{"--max-runs"}},
		{"--estimate-nodes without --dry-run", []string{"run", "--estimate-nodes", "4", "--", "./aloha"}, []string{"use it with --dry-run"}},
		{"--estimate-nodes negative", []string{"run", "--dry-run", "--estimate-nodes", "-1", "--", "./aloha"}, []string{"--estimate-nodes must be at least 1, not -1"}},
		{"--instance-type unknown", []string{"run", "--dry-run", "--estimate-nodes", "2", "--instance-type", "x9.huge", "--", "./aloha"}, []string{`--instance-type "x9.huge": not an instance type`}},
		{"distccd two halves", []string{"distccd", "--allow", "0.0.0.0/1,128.0.0.0/1"}, []string{"4294967296 IPv4 addresses", "more than a private network"}},
		{"distccd public /7", []string{"distccd", "--allow", "10.0.0.0/24,12.0.0.0/7"}, []string{"more than a private network"}},
		{"distccd stray argument", []string{"distccd", "--allow", "10.0.0.0/24", "extra"}, []string{"unknown command \"extra\""}},
		{"fingerprints --json", []string{"fingerprints", "--json", "suite.csv"}, []string{"fingerprints: --json belongs to simswarm run"}},
		{"regress --dry-run --detach", []string{"regress", "--dry-run", "--detach", "suite.txt"}, []string{"regress: --detach, --dry-run belong to simswarm run"}},
		{"bisect --list", []string{"bisect", "--list", "runs.txt", "HEAD~1", "HEAD", "--", "true"}, []string{"bisect: --list belongs to simswarm run"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			oneLineError(t, runSimswarm(t, dir, state, c.args...), 2, c.want...)
		})
	}
	if _, err := os.Stat(filepath.Join(state, "engine")); err == nil {
		t.Errorf("a refused command started the engine")
	}
}

// TestHugeTemplateRefused: a template of 10^9 runs (100 x 100 x 100 values
// x 1000 repetitions) is refused with its size, in under a second of CPU
// and under 50 MB, before any engine starts; sizes past 2^63 are counted
// exactly instead of wrapping around; within --max-runs it runs.
func TestHugeTemplateRefused(t *testing.T) {
	state := t.TempDir()
	huge := sizedTemplate(t, 3, 100, "1000")
	start := time.Now()
	r := runSimswarm(t, huge, state, "run")
	wall := time.Since(start)
	oneLineError(t, r, 2, "the run template (100 x 100 x 100 values x 1000 repetitions) has 1000000000 runs, more than --max-runs 1000000")
	cpu := time.Duration(r.rusage.Utime.Nano() + r.rusage.Stime.Nano())
	if cpu > time.Second || r.rusage.Maxrss > 50<<10 {
		t.Errorf("refusing took %v of CPU and %d KiB, want under 1 s and 50 MB", cpu, r.rusage.Maxrss)
	}
	// Wall time depends on the machine's load; CPU time above does not.
	if wall > 5*time.Second {
		t.Errorf("refusing took %v", wall)
	}
	t.Logf("refused in %v wall, %v CPU, %d KiB max RSS", wall.Round(time.Millisecond), cpu.Round(time.Millisecond), r.rusage.Maxrss)

	wrap := sizedTemplate(t, 1, 4, "4611686018427387905") // (2^62+1) x 4
	oneLineError(t, runSimswarm(t, wrap, state, "run"), 2, "has 18446744073709551620 runs")
	big := sizedTemplate(t, 0, 0, "4611686018427387904") // 2^62: a makeslice panic once
	oneLineError(t, runSimswarm(t, big, state, "run"), 2, "has 4611686018427387904 runs")

	small := sizedTemplate(t, 1, 3, "2")
	if r := runSimswarm(t, small, state, "run", "-q", "--max-runs", "5"); r.code != 2 || !strings.Contains(r.stderr, "has 6 runs, more than --max-runs 5") {
		t.Fatalf("6 runs with --max-runs 5: exit %d\n%s", r.code, r.stderr)
	}
	r = runSimswarm(t, small, state, "run", "-q", "--json", "--max-runs", "6")
	if s := jsonSummary(t, r); r.code != 0 || s.Succeeded != 6 {
		t.Fatalf("6 runs with --max-runs 6: exit %d %+v\n%s", r.code, s, r.stderr)
	}
}

// TestHugeDryRunStops: --dry-run of a 10^9-run template prints as it goes,
// in bounded memory, and stops at once on SIGTERM and on SIGINT.
func TestHugeDryRunStops(t *testing.T) {
	huge := sizedTemplate(t, 3, 100, "1000")
	state := t.TempDir()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(binary, "run", "--dry-run")
			cmd.Dir, cmd.Env = huge, append(cleanEnv(), "SIMSWARM_STATE="+state)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var errb strings.Builder
			cmd.Stderr = &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			sc := bufio.NewScanner(out)
			lines := 0
			header := ""
			for lines < 200000 && sc.Scan() {
				if lines == 0 {
					header = sc.Text()
				}
				lines++
			}
			if !strings.Contains(header, "1000000000 runs") {
				t.Fatalf("header %q\n%s", header, errb.String())
			}
			sent := time.Now()
			_ = cmd.Process.Signal(sig)
			go func() {
				for sc.Scan() {
				}
			}()
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("dry run still going 10 s after %v", sig)
			}
			took := time.Since(sent)
			if code := cmd.ProcessState.ExitCode(); code != 130 {
				t.Errorf("exit %d after %v, want 130\n%s", code, sig, errb.String())
			}
			ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			if ru.Maxrss > 150<<10 {
				t.Errorf("dry run grew to %d KiB", ru.Maxrss)
			}
			t.Logf("%d lines read, stopped %v after %v, max RSS %d KiB", lines, took.Round(time.Millisecond), sig, ru.Maxrss)
		})
	}
}
