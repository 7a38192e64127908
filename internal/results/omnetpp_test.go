package results

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/simswarm/simswarm/internal/scavefilter"
	"github.com/simswarm/simswarm/internal/testkit"
)

// This file gives the tests a real OMNeT++ 6.1 (testkit.OMNeTPP) and a
// built copy of its aloha sample. Tests skip, saying why, where
// ../shared/omnetpp is absent.

func repoRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatal("no go.mod above the test's directory")
		}
	}
}

// sharedDir is ../shared beside the repository.
func sharedDir(t testing.TB) string { return filepath.Join(repoRoot(t), "..", "shared") }

// capturedFile is one of the real result files in ../shared/omnetpp-output.
func capturedFile(t testing.TB, name string) string {
	p := filepath.Join(sharedDir(t), "omnetpp-output", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("real OMNeT++ output %s is not here (../shared/omnetpp-output): %v", name, err)
	}
	return p
}

// omnetppDir returns the root of the real OMNeT++ (testkit.OMNeTPP), with
// aloha copied out of it and built once per test binary: the installation
// is shared, so nothing is built inside it.
func omnetppDir(t testing.TB) string {
	t.Helper()
	o := testkit.OMNeTPP(t)
	alohaOnce.Do(func() {
		if _, err := exec.LookPath("g++"); err != nil {
			alohaErr = errors.New("g++ is not installed: cannot build OMNeT++'s aloha sample")
			return
		}
		dir, err := os.MkdirTemp("", "results-aloha-")
		if err != nil {
			alohaErr = err
			return
		}
		alohaTmp = dir
		aloha := o.CopySample(t, "aloha", dir)
		cmd := exec.Command("make", "MODE=release")
		cmd.Dir = aloha
		cmd.Env = o.Env
		if out, err := cmd.CombinedOutput(); err != nil {
			alohaErr = fmt.Errorf("build aloha: %v\n%s", err, out)
			return
		}
		alohaDir = aloha
	})
	if alohaErr != nil {
		t.Fatal(alohaErr)
	}
	return o.Root
}

var (
	alohaOnce sync.Once
	alohaDir  string // the built copy of samples/aloha
	alohaTmp  string // holds it; removed when the tests end
	alohaErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if alohaTmp != "" {
		os.RemoveAll(alohaTmp)
	}
	os.Exit(code)
}

func oppEnv(dir string) []string {
	env := []string{"PATH=" + filepath.Join(dir, "bin") + ":" + os.Getenv("PATH")}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PATH=") {
			env = append(env, e)
		}
	}
	return env
}

// runAloha runs aloha's PureAlohaExperiment (42 runs, in one process) with
// extra arguments, writing into a new directory, and returns it.
func runAloha(t testing.TB, opp string, extra ...string) string {
	t.Helper()
	out := t.TempDir()
	args := append([]string{"-s", "-u", "Cmdenv", "-c", "PureAlohaExperiment", "-r", "0..41",
		"--sim-time-limit=5min", "--result-dir=" + out}, extra...)
	cmd := exec.Command("./aloha", args...)
	cmd.Dir = alohaDir
	cmd.Env = oppEnv(opp)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("aloha %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out
}

// scavetool runs opp_scavetool with args.
func scavetool(t testing.TB, opp string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(opp, "bin", "opp_scavetool"), args...)
	cmd.Env = oppEnv(opp)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("opp_scavetool %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return string(b)
}

func mustFilter(t testing.TB, expr string) *scavefilter.Filter {
	t.Helper()
	f, err := scavefilter.Parse(expr)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
