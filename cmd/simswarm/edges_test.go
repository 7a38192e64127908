package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestNumericFlagBounds: every numeric flag has a range and a value
// outside it is one line naming the flag and the bound, exit status 2,
// before any engine starts: durations that would wrap (213504d x 24h is a
// cutoff 25 minutes ago), counts that would panic (-j 2147483648, --slots
// 9223372036854775807, status --campaigns -1).
func TestNumericFlagBounds(t *testing.T) {
	dir := example(t, "aloha")
	state := t.TempDir()
	srvState := filepath.Join(t.TempDir(), "srv")
	const nowhere = "nats://127.0.0.1:1"
	cases := []struct {
		name string
		args []string
		want []string
	}{
		// The ones the issue names.
		{"gc --older-than 213504d", []string{"gc", "--older-than", "213504d", "--dry-run"}, []string{`invalid --older-than "213504d"`, "up to 3650d"}},
		{"server --results-ttl 213504d", []string{"server", "--state", srvState, "--results-ttl", "213504d"}, []string{`invalid --results-ttl "213504d"`, "up to 3650d"}},
		{"run -j 2147483648", []string{"run", "-j", "2147483648", "--", "./aloha"}, []string{"-j must be at most 4096, not 2147483648"}},
		{"runner --slots 2147483648", []string{"runner", "--server", nowhere, "--slots", "2147483648"}, []string{"--slots must be at most 4096, not 2147483648"}},
		{"runner --slots maxint", []string{"runner", "--server", nowhere, "--slots", "9223372036854775807"}, []string{"--slots must be at most 4096, not 9223372036854775807"}},
		{"status --campaigns -1", []string{"status", "--campaigns", "-1"}, []string{"--campaigns must be at least 0, not -1"}},
		{"init --lease 0s", []string{"init", "--server", nowhere, "--lease", "0s"}, []string{"invalid --lease 0s", "at least 1s"}},
		// Durations.
		{"gc --older-than wraps", []string{"gc", "--older-than", "9223372036854775807d"}, []string{"invalid --older-than"}},
		{"gc --older-than hours wrap", []string{"gc", "--older-than", "2562048h"}, []string{"invalid --older-than"}},
		{"gc --older-than 1.5d", []string{"gc", "--older-than", "1.5d"}, []string{`invalid --older-than "1.5d"`}},
		{"gc --older-than negative", []string{"gc", "--older-than", "-3d"}, []string{`invalid --older-than "-3d"`}},
		{"server --results-ttl 3651d", []string{"server", "--state", srvState, "--results-ttl", "3651d"}, []string{`invalid --results-ttl "3651d"`}},
		{"server --results-ttl hours", []string{"server", "--state", srvState, "--results-ttl", "87601h"}, []string{`invalid --results-ttl "87601h"`}},
		{"server --lease 2h", []string{"server", "--state", srvState, "--lease", "2h"}, []string{"invalid --lease 2h", "at most 1h"}},
		{"server --lease days", []string{"server", "--state", srvState, "--lease", "2d"}, []string{"invalid --lease 2d"}},
		{"server --lease word", []string{"server", "--state", srvState, "--lease", "long"}, []string{"invalid --lease long"}},
		{"server --sync 0s", []string{"server", "--state", srvState, "--sync", "0s"}, []string{`invalid --sync "0s"`}},
		{"server --sync wraps", []string{"server", "--state", srvState, "--sync", "213504d"}, []string{`invalid --sync "213504d"`}},
		{"init --lease 500ms", []string{"init", "--server", nowhere, "--lease", "500ms"}, []string{"invalid --lease 500ms"}},
		{"run --timeout wraps", []string{"run", "--timeout", "213504d", "--", "./aloha"}, []string{`invalid --timeout "213504d"`, "up to 3650d"}},
		{"run --timeout 0", []string{"run", "--timeout", "0s", "--", "./aloha"}, []string{`invalid --timeout "0s"`}},
		{"run --timeout negative days", []string{"run", "--timeout", "-1d", "--", "./aloha"}, []string{`invalid --timeout "-1d"`}},
		{"fingerprints --cpu-time-limit wraps", []string{"fingerprints", "--cpu-time-limit", "213504d", "s.csv"}, []string{`invalid --cpu-time-limit "213504d"`}},
		// Counts.
		{"run -j negative", []string{"run", "-j", "-4", "--", "./aloha"}, []string{"-j must be at least 1, not -4"}},
		{"run -j 4097", []string{"run", "-j", "4097", "--", "./aloha"}, []string{"-j must be at most 4096, not 4097"}},
		{"run -j past int64", []string{"run", "-j", "9223372036854775808", "--", "./aloha"}, []string{`invalid argument "9223372036854775808"`, "-j, --jobs"}},
		{"run -b huge", []string{"run", "-b", "2147483648", "--", "./aloha"}, []string{"-b must be at most 1000, not 2147483648"}},
		{"run --retries negative", []string{"run", "--retries", "-1", "--", "./aloha"}, []string{"--retries must be at least 0, not -1"}},
		{"run --retries huge", []string{"run", "--retries", "1000000", "--", "./aloha"}, []string{"--retries must be at most 100, not 1000000"}},
		{"run --max-runs huge", []string{"run", "--max-runs", "9223372036854775807", "--", "./aloha"}, []string{"--max-runs must be at most"}},
		{"run --estimate-nodes huge", []string{"run", "--dry-run", "--estimate-nodes", "2147483648", "--", "./aloha"}, []string{"--estimate-nodes must be at most 10000"}},
		{"run --max-repetitions huge", []string{"run", "--until", "Aloha.server.channelUtilization:last ci95 < 5%", "--max-repetitions", "2147483648", "--", "./aloha", "-c", "PureAlohaExperiment"}, []string{"--max-repetitions must be at most 100000"}},
		{"run --distcc-per-host huge", []string{"run", "--distcc-per-host", "2147483648", "--", "./aloha"}, []string{"--distcc-per-host must be at most 4096"}},
		{"run --distcc-per-host negative", []string{"run", "--distcc-per-host", "-2", "--", "./aloha"}, []string{"--distcc-per-host must be at least 1, not -2"}},
		{"run --ccache-size NaN", []string{"run", "--ccache-size", "NaN", "--", "./aloha"}, []string{`invalid --ccache-size "NaN"`}},
		{"runner --slots negative", []string{"runner", "--server", nowhere, "--slots", "-1"}, []string{"--slots must be at least 1, not -1"}},
		{"runner --reserve negative", []string{"runner", "--server", nowhere, "--reserve", "-1"}, []string{"--reserve must not be negative, not -1"}},
		{"runner --reserve all", []string{"runner", "--server", nowhere, "--reserve", "100000"}, []string{"--reserve 100000 leaves no slot"}},
		{"runner --cache-size Inf", []string{"runner", "--server", nowhere, "--cache-size", "Inf"}, []string{`invalid --cache-size "Inf"`}},
		{"runner --cache-size wraps", []string{"runner", "--server", nowhere, "--cache-size", "9223372036854775807T"}, []string{`invalid --cache-size "9223372036854775807T"`, "more than 1EiB"}},
		{"builder --jobs huge", []string{"builder", "--server", nowhere, "--jobs", "2147483648"}, []string{"--jobs must be at most 4096, not 2147483648"}},
		{"builder --jobs 0", []string{"builder", "--server", nowhere, "--jobs", "0"}, []string{"--jobs must be at least 1, not 0"}},
		{"distccd --jobs huge", []string{"distccd", "--allow", "10.0.0.0/24", "--jobs", "2147483648"}, []string{"--jobs must be at most 4096"}},
		{"server --replicas 7", []string{"server", "--state", srvState, "--cluster", "127.0.0.1:6222", "--replicas", "7"}, []string{"--replicas must be at most 5, not 7"}},
		{"server --replicas 0", []string{"server", "--state", srvState, "--replicas", "0"}, []string{"--replicas must be at least 1, not 0"}},
		{"server --max-store wraps", []string{"server", "--state", srvState, "--max-store", "1e30"}, []string{`invalid --max-store "1e30"`}},
		{"init --replicas 9", []string{"init", "--server", nowhere, "--replicas", "9"}, []string{"--replicas must be at most 5, not 9"}},
		{"status --campaigns huge", []string{"status", "--campaigns", "2147483648"}, []string{"--campaigns must be at most 100000"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runSimswarm(t, dir, state, c.args...)
			oneErrorLine(t, r, c.want...)
			// The closing note of issue 23 lists each input with its exit
			// and line: -v prints them.
			t.Logf("simswarm %s: exit %d: %s", strings.Join(c.args, " "), r.code, strings.TrimSpace(r.stderr))
		})
	}
	if _, err := os.Stat(filepath.Join(state, "engine")); err == nil {
		t.Errorf("a refused command started the engine")
	}
	if _, err := os.Stat(srvState); err == nil {
		t.Errorf("a refused server made its state directory")
	}
}

// TestTimeoutInDays: --timeout takes days like the other durations.
func TestTimeoutInDays(t *testing.T) {
	dir := example(t, "aloha")
	r := runSimswarm(t, dir, t.TempDir(), "run", "-q", "--json", "--timeout", "1d", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "0")
	if s := jsonSummary(t, r); r.code != 0 || s.Succeeded != 1 {
		t.Fatalf("--timeout 1d: exit %d %+v\n%s", r.code, s, r.stderr)
	}
	// One run is "1 run", not "1 runs".
	r = runSimswarm(t, dir, t.TempDir(), "run", "-q", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "1")
	if !regexp.MustCompile(`campaign [0-9a-f]{16}: 1 run: 1 succeeded, 0 failed; 1 executed, 0 already done`).MatchString(r.stdout) {
		t.Errorf("the summary of one run:\n%s", r.stdout)
	}
	r = runSimswarm(t, dir, t.TempDir(), "run", "--dry-run", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "2")
	if !regexp.MustCompile(`campaign [0-9a-f]{16}: 1 run of `).MatchString(r.stdout) {
		t.Errorf("the dry run of one run:\n%s", r.stdout)
	}
}

// TestProvenanceTornLine: a provenance file whose last record was cut
// short (a full disk or a crash while appending) is read without it, with
// one warning, and the next campaign's records start on lines of their
// own instead of continuing the torn one.
func TestProvenanceTornLine(t *testing.T) {
	dir := example(t, "aloha")
	state := t.TempDir()
	r := runSimswarm(t, dir, state, "run", "-q", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "0..1")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	prov := filepath.Join(dir, "results", "provenance.jsonl")
	whole := readFile(t, prov)
	torn := whole + `{"key":"0123","campaign":"ab`
	if err := os.WriteFile(prov, []byte(torn), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runSimswarm(t, dir, state, "results", "--provenance", "-o", filepath.Join(t.TempDir(), "out.csv"))
	warns := strings.Count(r.stderr, "warning:")
	if r.code != 0 || warns != 1 || !strings.Contains(r.stderr, "provenance.jsonl: skipped a torn record (line 3") {
		t.Fatalf("results --provenance on a torn file: exit %d, %d warnings\n%s", r.code, warns, r.stderr)
	}
	r = runSimswarm(t, dir, state, "run", "-q", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "2")
	if r.code != 0 || !strings.Contains(r.stderr, "skipped a torn record") {
		t.Fatalf("the next campaign: exit %d, want 0 and the torn record named once\n%s", r.code, r.stderr)
	}
	after := readFile(t, prov)
	if !strings.HasPrefix(after, whole) || strings.Contains(after, `"campaign":"ab{`) || strings.Count(after, "\n") != 3 {
		t.Fatalf("the torn line was continued instead of cut off:\n%s", after)
	}
	r = runSimswarm(t, dir, state, "results", "--provenance", "-o", filepath.Join(t.TempDir(), "out.csv"))
	if r.code != 0 || strings.Contains(r.stderr, "warning") {
		t.Fatalf("after the next campaign: exit %d\n%s", r.code, r.stderr)
	}
}

// TestFingerprintsMissingProgram: a --program that is not there is named in
// the verdict, not reported as "exit status -1".
func TestFingerprintsMissingProgram(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "examples", "a"), 0o755)
	os.WriteFile(filepath.Join(dir, "s.csv"), []byte("/examples/a/, -c A -r 0, 10s, 1234-5678/tplx, PASS,\n"), 0o644)
	r := runSimswarm(t, dir, t.TempDir(), "fingerprints", "--program", "./nosuch", "s.csv")
	if r.code != 1 || !regexp.MustCompile(`examples/a -c A -r 0 +PASS +ERROR +ERROR .*program ./nosuch not found`).MatchString(r.stdout) || strings.Contains(r.stdout, "exit status") {
		t.Fatalf("exit %d, want 1 and the verdict naming the missing program\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "fingerprints: 1 test, 0 PASS, 0 FAIL, 1 ERROR") {
		t.Errorf("the count line:\n%s", r.stdout)
	}
}

// TestMoreBadInputs: commands, arguments and flags of every kind given
// wrong: one line naming what is wrong, exit status 2, and a finished
// campaign's results and cached runs survive all of them.
func TestMoreBadInputs(t *testing.T) {
	dir := example(t, "aloha")
	state := t.TempDir()
	r := runSimswarm(t, dir, state, "run", "-q", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "0")
	if r.code != 0 {
		t.Fatalf("setup campaign: exit %d\n%s", r.code, r.stderr)
	}
	sca := files(t, filepath.Join(dir, "results"), "*.sca")
	srv := filepath.Join(t.TempDir(), "srv")
	noProv := t.TempDir() // result files without their provenance
	if err := os.WriteFile(filepath.Join(noProv, filepath.Base(sca[0])), []byte(readFile(t, sca[0])), 0o644); err != nil {
		t.Fatal(err)
	}
	const target = "Aloha.server.channelUtilization:last"
	aloha := []string{"--", "./aloha", "-c", "PureAlohaExperiment"}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"cancel no id", []string{"cancel"}, []string{"cancel needs the campaign id"}},
		{"cancel one id bad", []string{"cancel", "0123456789abcdef", "zz"}, []string{`invalid campaign "zz"`}},
		{"cancel second unknown", []string{"cancel", "0123456789abcdef", "fedcba9876543210"}, []string{"no such campaign on this engine"}},
		{"cancel not hex", []string{"cancel", "nothex"}, []string{`invalid campaign "nothex"`, "16 hex digits"}},
		{"cancel path", []string{"cancel", "../../etc/passwd"}, []string{`invalid campaign "../../etc/passwd"`}},
		{"cancel unknown", []string{"cancel", "0123456789abcdef"}, []string{"campaign 0123456789abcdef: no such campaign on this engine"}},
		{"cancel bad URL", []string{"cancel", "0123456789abcdef", "--server", "ftp://x"}, []string{`malformed server URL "ftp://x"`}},
		{"cancel unreachable", []string{"cancel", "0123456789abcdef", "--server", "nats://127.0.0.1:1"}, []string{"cannot reach the simswarm server at nats://127.0.0.1:1"}},
		{"attach no id", []string{"attach"}, []string{"attach needs the campaign id"}},
		{"results unknown format", []string{"results", "--format", "xml"}, []string{`unknown format "xml"`}},
		{"results no provenance", []string{"results", "--provenance", noProv}, []string{"no provenance records"}},
		{"results bad filter", []string{"results", "--filter", "name =~"}, []string{`filter "name =~"`}},
		{"until upward", append([]string{"run", "--until", "x ci95 > 5%"}, aloha...), []string{`--until "x ci95 > 5%"`, "write '<'"}},
		{"until level", append([]string{"run", "--until", "x ci150 < 5%"}, aloha...), []string{"ci150 is not a confidence level"}},
		{"until zero", append([]string{"run", "--until", "x ci95 < 0%"}, aloha...), []string{"the target must be positive"}},
		{"until NaN", append([]string{"run", "--until", "x ci95 < NaN"}, aloha...), []string{`"NaN" is not a number`}},
		{"until garbage", append([]string{"run", "--until", "soon"}, aloha...), []string{`--until "soon": expected`}},
		{"max-repetitions 1", append([]string{"run", "--until", target + " ci95 < 5%", "--max-repetitions", "1"}, aloha...), []string{"--max-repetitions must be at least 2"}},
		{"max-repetitions alone", append([]string{"run", "--max-repetitions", "5"}, aloha...), []string{"--max-repetitions needs --until"}},
		{"until with --detach", append([]string{"run", "--detach", "--until", target + " ci95 < 5%"}, aloha...), []string{"cannot be combined with --detach"}},
		{"list missing", []string{"run", "--list", "nosuch.txt"}, []string{"--list: open nosuch.txt"}},
		{"rebuild and no-build", append([]string{"run", "--rebuild", "--no-build"}, aloha...), []string{"--rebuild and --no-build contradict each other"}},
		{"creds missing", append([]string{"run", "--creds", "/nonexistent", "--server", "nats://127.0.0.1:1"}, aloha...), []string{"credentials /nonexistent"}},
		{"dashboard address", append([]string{"run", "--dashboard", "nohost"}, aloha...), []string{`--dashboard`, `"nohost"`}},
		{"timeout fraction of days", append([]string{"run", "--timeout", "1.5d"}, aloha...), []string{`invalid --timeout "1.5d"`}},
		{"server listen", []string{"server", "--listen", "nohostport", "--state", srv}, []string{`invalid --listen "nohostport"`}},
		{"server port", []string{"server", "--listen", "127.0.0.1:99999", "--state", srv}, []string{`invalid --listen "127.0.0.1:99999": bad port`}},
		{"server tls half", []string{"server", "--tls-cert", "x", "--state", srv}, []string{"--tls-cert and --tls-key go together"}},
		{"server replicas alone", []string{"server", "--replicas", "3", "--state", srv}, []string{"--replicas 3 needs a cluster"}},
		{"server empty state", []string{"server", "--state", ""}, []string{"--state", "empty"}},
		{"dashboard open", []string{"dashboard", "--listen", "0.0.0.0:9181"}, []string{"reachable from other machines", "give a token"}},
		{"gc argument", []string{"gc", "extra"}, []string{`unknown command "extra"`}},
		{"gc empty age", []string{"gc", "--older-than", ""}, []string{`invalid --older-than ""`}},
		{"status bad URL", []string{"status", "--server", "ftp://x"}, []string{`malformed server URL "ftp://x"`}},
		{"distccd open", []string{"distccd", "--allow", "0.0.0.0/0"}, []string{"--allow 0.0.0.0/0 admits every address"}},
		{"builder no server", []string{"builder"}, []string{"--server is required"}},
		{"init no server", []string{"init"}, []string{"--server is required"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runSimswarm(t, dir, state, c.args...)
			oneErrorLine(t, r, c.want...)
			// The closing note of issue 23 lists each input with its exit
			// and line: -v prints them.
			t.Logf("simswarm %s: exit %d: %s", strings.Join(c.args, " "), r.code, strings.TrimSpace(r.stderr))
		})
	}
	if _, err := os.Stat(srv); err == nil {
		t.Errorf("a refused server made its state directory")
	}
	if after := files(t, filepath.Join(dir, "results"), "*.sca"); len(after) != len(sca) {
		t.Fatalf("results lost: %d before, %d after", len(sca), len(after))
	}
	r = runSimswarm(t, dir, state, "run", "-q", "--json", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "0")
	if s := jsonSummary(t, r); r.code != 0 || s.Cached != 1 || s.Executed != 0 {
		t.Fatalf("the earlier campaign is no longer cached: exit %d %+v", r.code, s)
	}
}

// TestProvenanceDiskFull: campaigns whose results fill their disk leave a
// provenance file of whole records only.
func TestProvenanceDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root (CI runs as root)")
	}
	results := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", results).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	defer exec.Command("umount", "-l", results).Run()
	dir := sizedProject(t, 40)
	state := t.TempDir()
	// Run sizes that leave the disk full at many different points of the
	// provenance file's appends.
	for _, size := range []string{"60000", "7000", "900", "100"} {
		r := runSimswarm(t, dir, state, "run", "-j", "2", "--results", results, "--json", "--", size, "full")
		if r.code != 0 && r.code != 1 {
			t.Fatalf("size %s: exit %d\n%s", size, r.code, r.stderr)
		}
	}
	b, err := os.ReadFile(filepath.Join(results, "provenance.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	if last := lines[len(lines)-1]; last != "" {
		t.Errorf("provenance.jsonl ends in a torn line: %q", last)
	}
	for i, l := range lines[:len(lines)-1] {
		var v map[string]any
		if err := jsonUnmarshal(l, &v); err != nil {
			t.Errorf("provenance.jsonl:%d is not a whole record: %q", i+1, l)
		}
	}
	t.Logf("%d whole records on the full disk", len(lines)-1)
}
