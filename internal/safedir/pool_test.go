package safedir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPoolReusesEmptiedStages: a stage put back after its files landed is
// the next run's, empty; one put back after a failure is removed, and
// closing the pool leaves no scratch behind.
func TestPoolReusesEmptiedStages(t *testing.T) {
	dir := t.TempDir()
	p := &Pool{Keep: []string{"results"}}
	st, err := p.Get(dir, "c-1")
	if err != nil {
		t.Fatal(err)
	}
	first := st.Path()
	if err := os.MkdirAll(filepath.Join(first, "results", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(first, "results", "sub", "a.sca"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write("b.sca", strings.NewReader("y"), 0o644, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	p.Put(st, true)
	st2, err := p.Get(dir, "c-2")
	if err != nil {
		t.Fatal(err)
	}
	if st2.Path() != first {
		t.Errorf("second run's stage %s; want the first one's, %s", st2.Path(), first)
	}
	entries, _ := os.ReadDir(filepath.Join(first, "results"))
	if len(entries) != 0 {
		t.Errorf("the reused stage's results hold %d entries; want none", len(entries))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "b.sca")); err != nil || string(b) != "y" {
		t.Errorf("committed file: %q %v", b, err)
	}
	p.Put(st2, false) // a run that went wrong: its stage goes
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Errorf("stage of a failed run still there: %v", err)
	}
	st3, err := p.Get(dir, "c-3")
	if err != nil {
		t.Fatal(err)
	}
	p.Put(st3, true)
	p.Close()
	if _, err := os.Stat(filepath.Join(dir, ScratchName)); !os.IsNotExist(err) {
		t.Errorf("%s left after Close: %v", ScratchName, err)
	}
}
