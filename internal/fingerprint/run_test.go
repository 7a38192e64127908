package fingerprint

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// answers plays the campaign: what each test's run left, by arguments.
type answers map[string]Observed

func (a answers) RunItems(_ context.Context, items []Item) ([]Observed, error) {
	out := make([]Observed, len(items))
	for i, it := range items {
		out[i] = a[it.Test.Args]
	}
	return out, nil
}

func TestRunWritesSuiteFiles(t *testing.T) {
	dir := t.TempDir()
	suite := filepath.Join(dir, "s.csv")
	src := "# working directory, command line arguments, simulation time limit, fingerprint, expected result, tags\n" +
		"/a/,  -c Good -r 0,   1s,  1111-1111/tplx, PASS, x\n" +
		"# /a/, -c Off, 1s, 0000-0000/tplx, PASS,\n" +
		"/a/,  -c Wrong -r 0,  1s,  2222-2222/tplx, PASS, x\n" +
		"/a/,  -c Bad -r 0,    1s,  3333-3333/tplx, PASS, y\n" +
		"/a/,  -c Known -r 0,  1s,  4444-4444/tplx, FAIL, y\n"
	if err := os.WriteFile(suite, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(sibling(suite, "ERROR"), []byte("stale"), 0o644)
	a := answers{
		"-c Good -r 0":  {Fingerprint: "verified", Calculated: "1111-1111/tplx"},
		"-c Wrong -r 0": {Fingerprint: "mismatch", Calculated: "9999-9999/tplx"},
		"-c Bad -r 0":   {Exit: 1, Errors: []string{"<!> Error: No such config: Bad"}},
		"-c Known -r 0": {Fingerprint: "mismatch", Calculated: "5555-5555/tplx"},
	}
	var out bytes.Buffer
	opts := Options{Suites: []string{suite}, Program: func(string) ([]string, error) { return []string{"./a"}, nil }, Out: &out}
	rep, err := Run(context.Background(), a, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pass != 2 || rep.Fail != 1 || rep.Error != 1 || rep.OK() {
		t.Errorf("report %+v", rep)
	}
	if !strings.Contains(out.String(), "fingerprints: 4 tests, 2 PASS, 1 FAIL, 1 ERROR") || !strings.Contains(out.String(), "No such config: Bad") {
		t.Errorf("table:\n%s", out.String())
	}
	read := func(name string) string { b, _ := os.ReadFile(name); return string(b) }
	wantUpdated := strings.NewReplacer("2222-2222/tplx", "9999-9999/tplx", "4444-4444/tplx", "5555-5555/tplx").Replace(src)
	if got := read(sibling(suite, "UPDATED")); got != wantUpdated {
		t.Errorf("UPDATED:\n%s", got)
	}
	if got := read(sibling(suite, "FAILED")); !strings.HasPrefix(got, "# Failures:\n") || !strings.Contains(got, "-c Wrong") || !strings.Contains(got, "-c Known") || strings.Count(got, "\n") != 3 {
		t.Errorf("FAILED:\n%s", got)
	}
	if got := read(sibling(suite, "ERROR")); !strings.Contains(got, "-c Bad") || strings.Contains(got, "stale") {
		t.Errorf("ERROR:\n%s", got)
	}
	if read(suite) != src {
		t.Error("the suite changed without --update")
	}

	// Only the x tests, in place: FAILED is written, ERROR is removed.
	opts.Selection, _ = NewSelection("", []string{"x"})
	opts.Update = true
	if _, err := Run(context.Background(), a, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sibling(suite, "ERROR")); !os.IsNotExist(err) {
		t.Errorf("stale ERROR file kept: %v", err)
	}
	if got := read(suite); got != strings.Replace(src, "2222-2222/tplx", "9999-9999/tplx", 1) {
		t.Errorf("updated in place:\n%s", got)
	}
}

func TestLoadBadInputs(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "g.csv")
	os.WriteFile(good, []byte("/a/, -c X, 1s, 1111-1111/tplx, PASS,\n"), 0o644)
	empty := filepath.Join(dir, "e.csv")
	os.WriteFile(empty, []byte("# nothing\n"), 0o644)
	prog := func(string) ([]string, error) { return []string{"./a"}, nil }
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{Suites: []string{good, filepath.Join(dir, ".", "g.csv")}, Program: prog}, "given twice"},
		{Options{Suites: []string{empty}, Program: prog}, "e.csv: no tests"},
		{Options{Suites: nil, Program: prog}, "no suite given"},
		{Options{Suites: []string{filepath.Join(dir, "missing.csv")}, Program: prog}, "missing.csv"},
		{Options{Suites: []string{good}, Program: prog, Selection: Selection{Tags: []string{"none"}}}, "no test is selected"},
	} {
		if _, _, err := Load(c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, err)
		}
	}
}
