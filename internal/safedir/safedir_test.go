package safedir

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/testkit"
)

func TestCheckName(t *testing.T) {
	ok := map[string]string{
		"a": "a", "a/b": "a/b", "a//b": "a/b", "./a": "a", "a/./b/": "a/b",
		"..a": "..a", "a..": "a..", "a/..b": "a/..b", ".hidden": ".hidden", ".simswarm-scratchy": ".simswarm-scratchy",
	}
	for in, want := range ok {
		got, err := CheckName(in)
		if err != nil || got != want {
			t.Errorf("CheckName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".", "./", "..", "../", "../x", "a/../..", "a/../../x", "a/b/../c", "/", "/etc/passwd", "//x",
		".simswarm-scratch", ".simswarm-scratch/x/y", "a\x00b"} {
		if got, err := CheckName(in); err == nil || !strings.Contains(err.Error(), "unsafe path") {
			t.Errorf("CheckName(%q) = %q, %v; want an unsafe path error", in, got, err)
		}
	}
}

func same(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

func TestStageCommitsTheWholeSet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "results")
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := os.WriteFile(filepath.Join(dir, "old.sca"), []byte("before"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := d.Stage("camp-3")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.Path(), filepath.Join(dir, ScratchName)+"/camp-3-") {
		t.Errorf("stage at %s", st.Path())
	}
	mtime := time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)
	for name, body := range map[string]string{"old.sca": "after", "sub/deep/x.vec": "vec", "run.out": "out"} {
		if _, err := st.Write(name, strings.NewReader(body), 0o600, mtime); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing is visible before the commit.
	for _, p := range testkit.Tree(dir) {
		if p != "old.sca=before" && !strings.HasPrefix(p, ScratchName+"/") {
			t.Errorf("before commit: %s is visible", p)
		}
	}
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	// The stage takes another set (the next run of a batch process).
	if _, err := st.Write("run2.out", strings.NewReader("out2"), 0o644, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	st.Remove()
	want := []string{"old.sca=after", "run.out=out", "run2.out=out2", "sub/", "sub/deep/", "sub/deep/x.vec=vec"}
	if got := testkit.Tree(dir); !same(got, want) {
		t.Errorf("after commit:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	fi, _ := os.Stat(filepath.Join(dir, "sub/deep/x.vec"))
	if !fi.ModTime().Equal(mtime) || fi.Mode().Perm() != 0o600 {
		t.Errorf("x.vec: mtime %v mode %v", fi.ModTime(), fi.Mode())
	}
}

// TestRefusedSetLeavesNothing: a hostile set (good files first, then a bad
// one) is refused as a whole, whatever makes it bad, and nothing outside
// the directory is touched.
func TestRefusedSetLeavesNothing(t *testing.T) {
	cases := map[string]func(t *testing.T, dir, outside string, st *Stage) error{
		"dotdot":   func(_ *testing.T, _, _ string, st *Stage) error { return write(st, "../x") },
		"absolute": func(_ *testing.T, _, o string, st *Stage) error { return write(st, filepath.Join(o, "x")) },
		"scratch":  func(_ *testing.T, _, _ string, st *Stage) error { return write(st, ScratchName+"/x") },
		"twice":    func(_ *testing.T, _, _ string, st *Stage) error { return write(st, "a.sca") },
		"symlinked directory in the target": func(t *testing.T, dir, o string, st *Stage) error {
			if err := os.Symlink(o, filepath.Join(dir, "d")); err != nil {
				t.Fatal(err)
			}
			if err := write(st, "d/x"); err != nil {
				return err
			}
			return st.Commit()
		},
		"symlink inside the target": func(t *testing.T, dir, _ string, st *Stage) error {
			if err := os.Mkdir(filepath.Join(dir, "real"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("real", filepath.Join(dir, "d")); err != nil {
				t.Fatal(err)
			}
			if err := write(st, "d/x"); err != nil {
				return err
			}
			return st.Commit()
		},
		"directory in the way": func(t *testing.T, dir, _ string, st *Stage) error {
			if err := os.MkdirAll(filepath.Join(dir, "z.vec", "inner"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := write(st, "z.vec"); err != nil {
				return err
			}
			return st.Commit()
		},
		"file then directory of the same name": func(_ *testing.T, _, _ string, st *Stage) error { return write(st, "a.sca/x") },
		"link then through it": func(_ *testing.T, _, o string, st *Stage) error {
			if err := st.Symlink("l", o); err != nil {
				return err
			}
			return write(st, "l/x")
		},
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dir, outside := filepath.Join(parent, "results"), filepath.Join(parent, "outside")
			if err := os.Mkdir(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			d, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if err := os.WriteFile(filepath.Join(dir, "keep.sca"), []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			before := testkit.Tree(dir)
			st, err := d.Stage("hostile")
			if err != nil {
				t.Fatal(err)
			}
			for _, good := range []string{"a.sca", "b/c.vec", "keep.sca"} {
				if err := write(st, good); err != nil {
					t.Fatal(err)
				}
			}
			err = bad(t, dir, outside, st)
			st.Remove()
			if err == nil {
				t.Fatal("hostile set accepted")
			}
			t.Logf("refused: %v", err)
			// The planted links are the test's own; nothing else may differ.
			got := testkit.Tree(dir)
			var left []string
			for _, p := range got {
				if !strings.Contains(p, " -> ") && !strings.HasPrefix(p, "real/") && !strings.HasPrefix(p, "z.vec/") {
					left = append(left, p)
				}
			}
			if !same(left, before) {
				t.Errorf("refused (%v) but the directory changed:\n%s", err, strings.Join(got, "\n"))
			}
			if o := testkit.Tree(outside); len(o) != 0 {
				t.Errorf("written outside: %q", o)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "keep.sca")); string(b) != "mine" {
				t.Errorf("keep.sca replaced by a refused set: %q", b)
			}
		})
	}
}

func write(st *Stage, name string) error {
	_, err := st.Write(name, strings.NewReader("evil "+name), 0o644, time.Time{})
	return err
}

// TestAdoptRefusesLinks: a process writing into its stage may plant links;
// they are refused, not moved, not followed.
func TestAdoptRefusesLinks(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "results")
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	st, err := d.Stage("run")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Remove()
	res := filepath.Join(st.Path(), "results")
	os.MkdirAll(filepath.Join(parent, "elsewhere"), 0o755)
	os.WriteFile(filepath.Join(parent, "elsewhere", "f"), []byte("secret"), 0o644)
	os.MkdirAll(res, 0o755)
	os.Symlink(filepath.Join(parent, "elsewhere"), filepath.Join(res, "d"))
	os.Symlink(filepath.Join(parent, "elsewhere", "f"), filepath.Join(res, "l.sca"))
	os.WriteFile(filepath.Join(res, "good.sca"), []byte("good"), 0o644)
	if err := st.Adopt("results/good.sca", "good.sca"); err != nil {
		t.Fatal(err)
	}
	if err := st.Adopt("results/d/f", "f"); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("adopting through a link: %v", err)
	}
	if err := st.Adopt("results/l.sca", "l.sca"); err == nil {
		t.Error("adopted a symlink")
	}
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	st.Remove()
	if got := testkit.Tree(dir); !same(got, []string{"good.sca=good"}) {
		t.Errorf("results: %q", got)
	}
}

func TestOpenFileThroughNoLink(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "results")
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "a.sca"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(parent, "secret"), []byte("secret"), 0o644)
	os.Symlink(filepath.Join(parent, "secret"), filepath.Join(dir, "l.sca"))
	os.Symlink("sub", filepath.Join(dir, "s"))
	f, err := OpenFile(dir, "sub/a.sca")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, name := range []string{"l.sca", "s/a.sca", "../secret", "sub"} {
		if f, err := OpenFile(dir, name); err == nil {
			f.Close()
			t.Errorf("OpenFile(%q) succeeded", name)
		}
	}
}

// TestSweepRemovesWhatAKilledProcessLeft: a process killed with SIGKILL
// while its stage is open leaves it; Sweep removes it, but never a stage a
// live process holds.
func TestSweepRemovesWhatAKilledProcessLeft(t *testing.T) {
	if os.Getenv("SAFEDIR_HOLD") != "" {
		d, err := Open(os.Getenv("SAFEDIR_HOLD"))
		if err != nil {
			os.Exit(3)
		}
		st, err := d.Stage("held")
		if err != nil {
			os.Exit(3)
		}
		os.WriteFile(filepath.Join(st.Path(), "partial.vec"), []byte("half"), 0o644)
		os.Stdout.WriteString("ready\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSweepRemovesWhatAKilledProcessLeft$")
	cmd.Env = append(os.Environ(), "SAFEDIR_HOLD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }()
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("helper: %q %v", buf, err)
	}
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	live, err := d.Stage("live")
	if err != nil {
		t.Fatal(err)
	}
	// The helper is alive: its stage stays.
	if n, err := d.Sweep(); err != nil || n != 0 {
		t.Fatalf("sweep with the holder alive: %d, %v", n, err)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	if n, err := d.Sweep(); err != nil || n != 1 {
		t.Fatalf("sweep after kill -9: removed %d, %v", n, err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, ScratchName))
	if len(ents) != 2 { // our live stage and its lock
		t.Errorf("scratch holds %v after the sweep", ents)
	}
	live.Remove()
	if _, err := os.Lstat(filepath.Join(dir, ScratchName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("scratch directory left after the last stage went: %v", err)
	}
}
