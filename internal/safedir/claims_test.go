package safedir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCommitForRefusesAnotherRunsFile: a run of a campaign may replace its
// own file (run again), not one another run of the campaign put there;
// another campaign's runs, and another directory, are not concerned.
func TestCommitForRefusesAnotherRunsFile(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	commit := func(d *Dir, campaign string, run int, body string) error {
		st, err := d.Stage("t")
		if err != nil {
			t.Fatal(err)
		}
		defer st.Remove()
		if _, err := st.Write("sub/out.csv", strings.NewReader(body), 0o644, time.Time{}); err != nil {
			t.Fatal(err)
		}
		return st.CommitFor(campaign, run)
	}
	read := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "sub", "out.csv"))
		return string(b)
	}
	if err := commit(d, "c1", 0, "run 0"); err != nil {
		t.Fatal(err)
	}
	if err := commit(d, "c1", 0, "run 0 again"); err != nil || read() != "run 0 again" {
		t.Fatalf("a run replacing its own file: %v, file %q", err, read())
	}
	err = commit(d, "c1", 1, "run 1")
	var ce *ClaimError
	if !errors.As(err, &ce) || ce.Run != 1 || ce.By != 0 || ce.Name != "sub/out.csv" || read() != "run 0 again" {
		t.Fatalf("run 1 writing run 0's file: %v, file %q", err, read())
	}
	if !strings.Contains(err.Error(), "runs 0 and 1 of campaign c1 both write sub/out.csv") {
		t.Errorf("message %q", err)
	}
	if err := commit(d, "c2", 5, "another campaign"); err != nil || read() != "another campaign" {
		t.Fatalf("another campaign's run: %v, file %q", err, read())
	}
	other, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := commit(other, "c1", 1, "elsewhere"); err != nil {
		t.Fatalf("the same campaign in another directory: %v", err)
	}
	Claimed(dir, "c3", 7, []string{"sub/out.csv"})
	if err := commit(d, "c3", 8, "c3 run 8"); !errors.As(err, &ce) || ce.By != 7 {
		t.Fatalf("a file noted as run 7's, written by run 8: %v", err)
	}
}
