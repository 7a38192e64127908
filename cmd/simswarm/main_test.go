package main

// End-to-end tests: the built simswarm binary against the bundled examples,
// with real builds, real simulation processes and the embedded engine.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/testkit"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "simswarm-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "simswarm")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build simswarm: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// example copies a bundled example into a fresh directory, leaving out
// whatever a local build left there, so every test starts from sources.
func example(t testing.TB, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := testkit.CopySources(filepath.Join("..", "..", "examples", name), dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

type result struct {
	stdout, stderr string
	code           int
	rusage         *syscall.Rusage
}

// simswarm runs the binary in dir with its own state directory.
func runSimswarm(t testing.TB, dir, state string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SIMSWARM_STATE="+state)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
		r.rusage, _ = cmd.ProcessState.SysUsage().(*syscall.Rusage)
	} else if err != nil {
		t.Fatalf("simswarm %v: %v", args, err)
	}
	return r
}

type summary struct {
	Campaign  string `json:"campaign"`
	Runs      int    `json:"runs"`
	Succeeded int    `json:"succeeded"`
	Failed    int    `json:"failed"`
	Cached    int    `json:"cached"`
	Executed  int    `json:"executed"`
	Cancelled int    `json:"cancelled"`
	Failures  []struct {
		Run      int      `json:"run"`
		Exit     int      `json:"exit"`
		Signal   string   `json:"signal"`
		TimedOut bool     `json:"timed_out"`
		Errors   []string `json:"errors"`
		Reason   string   `json:"reason"`
	} `json:"failures"`
}

func jsonSummary(t testing.TB, r result) summary {
	t.Helper()
	var s summary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("--json output is not JSON: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	return s
}

// direct runs the example program by hand, as a user would without
// simswarm, to compare results.
func direct(t testing.TB, dir string, args ...string) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "aloha")); err != nil {
		if out, err := exec.Command("make", "-C", dir, "-j2").CombinedOutput(); err != nil {
			t.Fatalf("make: %v\n%s", err, out)
		}
	}
	res := t.TempDir()
	cmd := exec.Command("./aloha", append(args, "--result-dir="+res)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("aloha %v: %v\n%s", args, err, out)
	}
	return res
}

// scalars keeps the lines of a result file that carry results, not the
// run's date or process id.
func scalars(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "scalar ") || strings.HasPrefix(l, "itervar ") || strings.HasPrefix(l, "attr runnumber") {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		t.Fatalf("%s holds no scalars", path)
	}
	return strings.Join(keep, "\n")
}

func files(t testing.TB, dir, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
