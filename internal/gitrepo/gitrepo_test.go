package gitrepo

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simswarm/simswarm/internal/testkit"
)

// TestRepo: the path between two commits, ancestry, trees of a revert,
// a dirty work tree (an untracked file does not count), and a worktree
// that leaves the user's checkout as it was.
func TestRepo(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	ctx := context.Background()
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		return testkit.Git(t, dir, args...)
	}
	write := func(s string) { os.WriteFile(filepath.Join(dir, "f.txt"), []byte(s), 0o644) }
	run("init", "-q", "-b", "main")
	write("a")
	run("add", "f.txt")
	run("commit", "-q", "-m", "a")
	a := run("rev-parse", "HEAD")
	write("b")
	run("commit", "-q", "-am", "b")
	write("a")
	run("commit", "-q", "-am", "back to a")
	c := run("rev-parse", "HEAD")

	r, err := Open(ctx, filepath.Join(dir))
	if err != nil {
		t.Fatal(err)
	}
	path, err := r.Path(ctx, a, "main")
	if err != nil || len(path) != 2 || path[1] != c {
		t.Fatalf("path %v, %v", path, err)
	}
	if ok, _ := r.IsAncestor(ctx, a, c); !ok {
		t.Error("a is not an ancestor of c")
	}
	if ok, _ := r.IsAncestor(ctx, c, a); ok {
		t.Error("c is an ancestor of a")
	}
	ta, _ := r.Tree(ctx, a)
	tc, _ := r.Tree(ctx, c)
	if ta == "" || ta != tc {
		t.Errorf("a revert has another tree: %q %q", ta, tc)
	}
	if _, err := r.Resolve(ctx, "nosuch"); err == nil || !strings.Contains(err.Error(), `"nosuch" names no commit`) {
		t.Errorf("unknown revision: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "untracked.txt"), []byte("x"), 0o644)
	if d, err := r.Dirty(ctx); err != nil || len(d) != 0 {
		t.Errorf("an untracked file makes the tree dirty: %v %v", d, err)
	}
	write("changed")
	if d, _ := r.Dirty(ctx); len(d) != 1 || d[0] != "f.txt" {
		t.Errorf("dirty: %v", d)
	}
	if h := Head(ctx, dir); h != c+"+dirty" {
		t.Errorf("Head %q", h)
	}
	wt := filepath.Join(t.TempDir(), "wt")
	if err := r.AddWorktree(ctx, wt, a); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(wt, "f.txt")); string(b) != "a" {
		t.Errorf("worktree holds %q", b)
	}
	if err := r.RemoveWorktree(ctx, wt); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "f.txt")); string(b) != "changed" || strings.Count(run("worktree", "list"), "\n") != 0 {
		t.Errorf("the checkout changed: %q, worktrees %q", b, run("worktree", "list"))
	}
}
