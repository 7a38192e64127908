package fingerprint

import "testing"

// Two tests that differ only in their time limit (the bench suite's
// shape) must not share a results directory: the second's files would
// replace the first's, and neither would be found done on a rerun.
func TestResultDirsDistinct(t *testing.T) {
	a := &Test{WorkDir: "examples/a", Args: "-c A -r 0", SimTimeLimit: "10s", Fingerprints: []string{"1234-5678/tplx"}}
	b := &Test{WorkDir: "examples/a", Args: "-c A -r 0", SimTimeLimit: "20s", Fingerprints: []string{"1234-5678/tplx"}}
	var items []Item
	for _, tt := range []*Test{a, b, a} {
		args, err := tt.CommandArgs(0, Profile{})
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, Item{Test: tt, Workdir: tt.WorkDir, Argv: append([]string{"./a"}, args...)})
	}
	dirs := (&Campaign{Results: "/r"}).ResultDirs(items)
	if dirs[0] == dirs[1] {
		t.Errorf("tests differing in their time limit share %s", dirs[0])
	}
	if dirs[0] != dirs[2] {
		t.Errorf("the same test gets two directories: %s and %s", dirs[0], dirs[2])
	}
}
