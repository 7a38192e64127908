package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestOMNeTPP: the helper gives a runnable OMNeT++ (the bundled runtime,
// unpacked once, or $SIMSWARM_OMNETPP), and a sample copy holds sources
// but none of a build's outputs.
func TestOMNeTPP(t *testing.T) {
	o := OMNeTPP(t)
	cmd := exec.Command(filepath.Join(o.Bin, "opp_run"), "-v")
	cmd.Env = o.Env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("opp_run -v: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "OMNeT++") {
		t.Fatalf("opp_run -v from %s printed %q", o.Bin, out)
	}
	if again := OMNeTPP(t); again.Root != o.Root {
		t.Errorf("second call gave %s, first %s", again.Root, o.Root)
	}
	dir := o.CopySample(t, "queuenet", t.TempDir())
	for _, f := range []string{"queuenet", "omnetpp.ini", ".project", "Makefile"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("copied queuenet lacks %s", f)
		}
	}
}

// TestUnpackOMNeTPPShared: two unpacks into one cache share the directory,
// and an interrupted unpack (no ready mark) is redone.
func TestUnpackOMNeTPPShared(t *testing.T) {
	shared, err := SharedDir()
	if err != nil {
		t.Skip(err)
	}
	archive := filepath.Join(shared, runtimeArchive)
	if _, err := os.Stat(archive); err != nil {
		t.Skipf("no OMNeT++ runtime at %s", archive)
	}
	cache := t.TempDir()
	a, err := UnpackOMNeTPP(archive, cache)
	if err != nil {
		t.Fatal(err)
	}
	marks, _ := filepath.Glob(filepath.Join(cache, "*", ".ready"))
	if len(marks) != 1 {
		t.Fatalf("%d ready marks in the cache, want 1", len(marks))
	}
	os.Remove(marks[0])
	os.Remove(filepath.Join(a, "bin", "opp_run"))
	b, err := UnpackOMNeTPP(archive, cache)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("second unpack at %s, first at %s", b, a)
	}
	if _, err := os.Stat(filepath.Join(b, "bin", "opp_run")); err != nil {
		t.Errorf("an unpack without its ready mark was not redone: %v", err)
	}
}
