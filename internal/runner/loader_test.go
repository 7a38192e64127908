package runner

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/proc"
)

// TestMissingLibraryNamed: a simulation linked against a library the
// runner's host lacks fails with a record whose errors name the library
// (the dynamic loader's line), not just an exit status. The program is a
// real one, built with gcc against a shared library that is then removed.
func TestMissingLibraryNamed(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed")
	}
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("lib.c", "int simlib(void) { return 0; }\n")
	write("main.c", "int simlib(void);\nint main(void) { return simlib(); }\n")
	for _, argv := range [][]string{
		{"gcc", "-shared", "-fPIC", "-o", "libsimlibgone.so", "lib.c"},
		{"gcc", "-o", "sim", "main.c", "-L.", "-lsimlibgone", "-Wl,-rpath," + dir},
	} {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", argv, err, out)
		}
	}
	run := func() ([]byte, *proc.Result) {
		res, err := proc.Run(context.Background(), proc.Spec{Argv: []string{"./sim"}, Dir: dir, Timeout: time.Minute, TailBytes: 4096})
		if err != nil {
			t.Fatal(err)
		}
		return res.Tail, res
	}
	if out, res := run(); res.Failed() {
		t.Fatalf("with its library the program fails: %s\n%s", res.Describe(), out)
	}
	if err := os.Remove(filepath.Join(dir, "libsimlibgone.so")); err != nil {
		t.Fatal(err)
	}
	out, res := run()
	rec := (&Runner{}).outcomeOf(out, res, time.Now())
	if !res.Failed() || rec.State != simswarm.RunFailed {
		t.Fatalf("without its library: state %q (%s), want failed", rec.State, res.Describe())
	}
	if len(rec.Errors) != 1 || !strings.Contains(rec.Errors[0], "libsimlibgone.so") {
		t.Fatalf("errors %q, want the loader's line naming libsimlibgone.so (output %q)", rec.Errors, out)
	}
}
