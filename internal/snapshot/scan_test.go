package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// sourceTree makes a small plain (non-git) project.
func sourceTree(t testing.TB) string {
	root := t.TempDir()
	isolateGit(t, root)
	put(t, root, "Makefile", "all:\n\tcc -o aloha aloha.c\n", 0o644)
	put(t, root, "src/aloha.c", "int main(void) { return 0; }\n", 0o644)
	put(t, root, "src/Host.ned", "simple Host {}\n", 0o644)
	put(t, root, "run.sh", "#!/bin/sh\n./aloha \"$@\"\n", 0o755)
	put(t, root, "omnetpp.ini", "[General]\nnetwork = Aloha\n", 0o644)
	symlink(t, root, "lib", "src")
	return root
}

func TestScanKeyTracksContentNotTime(t *testing.T) {
	root := sourceTree(t)
	base := mustScan(t, root, Options{})
	if got := paths(base); !slices.Equal(got, []string{"Makefile", "lib", "omnetpp.ini", "run.sh", "src/Host.ned", "src/aloha.c"}) {
		t.Fatalf("paths = %q", got)
	}
	if e, _ := entry(base, "run.sh"); e.Mode != ModeExec || e.Size != int64(len("#!/bin/sh\n./aloha \"$@\"\n")) {
		t.Fatalf("run.sh = %+v", e)
	}
	if e, _ := entry(base, "lib"); e.Mode != ModeSymlink || e.Link != "src" || e.Hash != "" {
		t.Fatalf("lib = %+v", e)
	}
	if again := mustScan(t, root, Options{}); again.Key() != base.Key() {
		t.Fatal("unchanged tree gave another key")
	}

	// mtime only: same key.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(root, "src/aloha.c"), old, old); err != nil {
		t.Fatal(err)
	}
	if k := mustScan(t, root, Options{}).Key(); k != base.Key() {
		t.Fatal("touch changed the key")
	}

	// Each change gives a new key; undoing it gives the old key back.
	changes := []struct {
		name     string
		do, undo func()
	}{
		{"content", func() { put(t, root, "src/aloha.c", "int main(void) { return 1; }\n", 0o644) },
			func() { put(t, root, "src/aloha.c", "int main(void) { return 0; }\n", 0o644) }},
		{"new file", func() { put(t, root, "src/new.h", "", 0o644) },
			func() { os.Remove(filepath.Join(root, "src/new.h")) }},
		{"removed file", func() { os.Rename(filepath.Join(root, "omnetpp.ini"), filepath.Join(t.TempDir(), "x")) },
			func() { put(t, root, "omnetpp.ini", "[General]\nnetwork = Aloha\n", 0o644) }},
		{"rename", func() { os.Rename(filepath.Join(root, "src/Host.ned"), filepath.Join(root, "src/Host2.ned")) },
			func() { os.Rename(filepath.Join(root, "src/Host2.ned"), filepath.Join(root, "src/Host.ned")) }},
		{"chmod +x", func() { os.Chmod(filepath.Join(root, "Makefile"), 0o755) },
			func() { os.Chmod(filepath.Join(root, "Makefile"), 0o644) }},
		{"symlink target", func() { symlink(t, root, "lib", "src/") },
			func() { symlink(t, root, "lib", "src") }},
	}
	seen := map[string]string{base.Key(): "base"}
	for _, c := range changes {
		c.do()
		k := mustScan(t, root, Options{}).Key()
		if prev, dup := seen[k]; dup {
			t.Errorf("%s: key equals that of %s", c.name, prev)
		}
		seen[k] = c.name
		c.undo()
		if k := mustScan(t, root, Options{}).Key(); k != base.Key() {
			t.Fatalf("undoing %s did not restore the key", c.name)
		}
	}
	// Group and other permission bits are not part of the key, as in git.
	os.Chmod(filepath.Join(root, "omnetpp.ini"), 0o600)
	if k := mustScan(t, root, Options{}).Key(); k != base.Key() {
		t.Fatal("chmod 600 changed the key")
	}
}

func TestScanNonGitIgnores(t *testing.T) {
	root := sourceTree(t)
	for _, junk := range []string{
		".git/config", "sub/.git", "out/gcc-release/src/aloha.o", "results/General-#0.sca",
		"src/aloha.o", "src/aloha.d", ".simswarm/state", "sub/out/x", "sub/results/y",
	} {
		put(t, root, junk, "junk", 0o644)
	}
	put(t, root, "gen/a.h", "a", 0o644)
	put(t, root, "gen/keep.h", "k", 0o644)
	put(t, root, "gen/deep/b.h", "b", 0o644)
	put(t, root, "docs/x/y/z.pdf", "pdf", 0o644)
	put(t, root, "docs/readme.txt", "txt", 0o644)
	put(t, root, "vendor.o", "wanted object", 0o644)
	put(t, root, "data/big.vec", "vec", 0o644)
	put(t, root, "data/small.csv", "csv", 0o644)

	m := mustScan(t, root, Options{
		Ignore:  []string{"gen/**", "!gen/keep.h", "docs/**/*.pdf", "!/vendor.o", "# comment", ""},
		Exclude: []string{"data/big.vec", "./src/Host.ned/"},
	})
	want := []string{
		"Makefile", "data/small.csv", "docs/readme.txt", "gen/keep.h", "lib", "omnetpp.ini",
		"run.sh", "src/aloha.c", "vendor.o",
	}
	if got := paths(m); !slices.Equal(got, want) {
		t.Fatalf("paths\n got %q\nwant %q", got, want)
	}

	// Exclude leaves out whole directories; paths outside the root are no-ops.
	m = mustScan(t, root, Options{Exclude: []string{"src", "../elsewhere"}})
	for _, p := range paths(m) {
		if strings.HasPrefix(p, "src/") {
			t.Fatalf("excluded directory still listed: %s", p)
		}
	}
	for _, bad := range []string{"/abs", ".", "a/.."} {
		if _, err := Scan(context.Background(), root, Options{Exclude: []string{bad}}); err == nil {
			t.Errorf("Exclude %q accepted", bad)
		}
	}
	if _, err := Scan(context.Background(), root, Options{Ignore: []string{"[oops"}}); err == nil || !strings.Contains(err.Error(), "[oops") {
		t.Errorf("bad pattern: err = %v", err)
	}
}

func TestScanGit(t *testing.T) {
	needGit(t)
	repo := t.TempDir()
	isolateGit(t, repo)
	git(t, repo, "init", "-q")
	put(t, repo, ".gitignore", "*.o\nbuild/\n", 0o644)
	put(t, repo, "README", "top", 0o644)
	put(t, repo, "sim/Makefile", "all:", 0o644)
	put(t, repo, "sim/aloha.c", "c", 0o644)
	put(t, repo, "sim/gone.c", "deleted later", 0o644)
	put(t, repo, "sim/tracked.o", "tracked despite the ignore rule", 0o644)
	git(t, repo, "add", ".gitignore", "README", "sim/Makefile", "sim/aloha.c", "sim/gone.c")
	git(t, repo, "add", "-f", "sim/tracked.o")
	git(t, repo, "commit", "-qm", "init")

	os.Remove(filepath.Join(repo, "sim/gone.c"))                    // tracked, deleted: skipped
	put(t, repo, "sim/new.ned", "untracked", 0o644)                 // untracked, not ignored: included
	put(t, repo, "sim/aloha.o", "object", 0o644)                    // ignored
	put(t, repo, "sim/build/out.bin", "build output", 0o755)        // ignored directory
	put(t, repo, "sim/results/r.sca", "result", 0o644)              // not ignored by git, left out by Exclude below
	symlink(t, repo, "sim/inet", "../../inet")                      // untracked symlink pointing outside: recorded
	if err := mkfifo(filepath.Join(repo, "sim/fifo")); err != nil { // untracked special file: skipped
		t.Log("no FIFO:", err)
	}

	m := mustScan(t, repo, Options{Exclude: []string{"sim/results"}})
	want := []string{".gitignore", "README", "sim/Makefile", "sim/aloha.c", "sim/inet", "sim/new.ned", "sim/tracked.o"}
	if got := paths(m); !slices.Equal(got, want) {
		t.Fatalf("paths\n got %q\nwant %q", got, want)
	}
	if e, _ := entry(m, "sim/inet"); e.Mode != ModeSymlink || e.Link != "../../inet" {
		t.Fatalf("symlink entry = %+v", e)
	}

	// A subdirectory of the repository as root: paths relative to it, and
	// Ignore patterns relative to it too.
	sub := mustScan(t, filepath.Join(repo, "sim"), Options{Ignore: []string{"/results/", "*.ned"}})
	if got := paths(sub); !slices.Equal(got, []string{"Makefile", "aloha.c", "inet", "tracked.o"}) {
		t.Fatalf("subdir paths = %q", got)
	}
	// Same files, same key, whether listed by git or by the walk.
	e1, _ := entry(m, "sim/aloha.c")
	e2, _ := entry(sub, "aloha.c")
	if e1.Hash != e2.Hash || e1.Size != e2.Size {
		t.Fatal("the same file hashed differently")
	}
}

func TestScanGitNestedRepositories(t *testing.T) {
	needGit(t)
	base := t.TempDir()
	isolateGit(t, base)
	// A library that the project uses as a submodule.
	lib := filepath.Join(base, "lib")
	os.MkdirAll(lib, 0o755)
	git(t, lib, "init", "-q")
	put(t, lib, ".gitignore", "*.so\n", 0o644)
	put(t, lib, "lib.c", "lib", 0o644)
	git(t, lib, "add", ".")
	git(t, lib, "commit", "-qm", "lib")

	repo := filepath.Join(base, "project")
	os.MkdirAll(repo, 0o755)
	git(t, repo, "init", "-q")
	put(t, repo, "main.c", "main", 0o644)
	git(t, repo, "add", "main.c")
	git(t, repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", lib, "ext/lib")
	git(t, repo, "commit", "-qm", "init")
	put(t, repo, "ext/lib/libx.so", "built, ignored by the submodule", 0o644)
	put(t, repo, "ext/lib/extra.h", "untracked in the submodule", 0o644)

	// An untracked nested repository (say, a checked-out model library).
	nested := filepath.Join(repo, "models")
	os.MkdirAll(nested, 0o755)
	git(t, nested, "init", "-q")
	put(t, nested, ".gitignore", "out/\n", 0o644)
	put(t, nested, "m.ned", "model", 0o644)
	put(t, nested, "out/m.o", "obj", 0o644)

	m := mustScan(t, repo, Options{})
	want := []string{".gitmodules", "ext/lib/.gitignore", "ext/lib/extra.h", "ext/lib/lib.c", "main.c", "models/.gitignore", "models/m.ned"}
	if got := paths(m); !slices.Equal(got, want) {
		t.Fatalf("paths\n got %q\nwant %q", got, want)
	}
	// Ignore patterns of the project reach into nested repositories.
	m = mustScan(t, repo, Options{Ignore: []string{"ext/"}, Exclude: []string{"models/m.ned"}})
	if got := paths(m); !slices.Equal(got, []string{".gitmodules", "main.c", "models/.gitignore"}) {
		t.Fatalf("paths = %q", got)
	}
}

func TestScanHashCache(t *testing.T) {
	defer func(w time.Duration) { racyWindow = w }(racyWindow)
	var reads atomic.Int64
	hashHook = func(string) { reads.Add(1) }
	defer func() { hashHook = nil }()

	root := sourceTree(t)
	cache := filepath.Join(t.TempDir(), "cache", "hashes")
	opts := Options{HashCache: cache}

	// Files written just now are too recent to cache (same-tick rewrites
	// could keep the stamp): every scan re-reads them.
	m1 := mustScan(t, root, opts)
	n := reads.Load()
	if n != 5 {
		t.Fatalf("first scan read %d files, want 5", n)
	}
	mustScan(t, root, opts)
	if got := reads.Load() - n; got != 5 {
		t.Fatalf("scan of fresh files read %d files, want 5 (none cached)", got)
	}

	racyWindow = 0
	mustScan(t, root, opts) // fills the cache
	reads.Store(0)
	m2 := mustScan(t, root, opts)
	if got := reads.Load(); got != 0 {
		t.Fatalf("warm scan read %d files, want 0", got)
	}
	if m2.Key() != m1.Key() {
		t.Fatal("cached hashes changed the key")
	}

	// A changed file misses the cache; the others still hit.
	put(t, root, "src/aloha.c", "int main(void) { return 2; }\n", 0o644)
	m3 := mustScan(t, root, opts)
	if got := reads.Load(); got != 1 || m3.Key() == m1.Key() {
		t.Fatalf("after one change: %d reads, key changed %v", got, m3.Key() != m1.Key())
	}

	// Limitation, documented: the stamp includes ctime, which no user-level
	// call can set back, so even a same-size rewrite with the mtime restored
	// is noticed.
	fi, _ := os.Stat(filepath.Join(root, "omnetpp.ini"))
	put(t, root, "omnetpp.ini", "[General]\nnetwork = AlohX\n", 0o644)
	os.Chtimes(filepath.Join(root, "omnetpp.ini"), fi.ModTime(), fi.ModTime())
	reads.Store(0)
	m4 := mustScan(t, root, opts)
	if got := reads.Load(); got != 1 || m4.Key() == m3.Key() {
		t.Fatalf("same-size rewrite with restored mtime: %d reads, key changed %v", got, m4.Key() != m3.Key())
	}

	// A corrupt cache is ignored and rewritten.
	os.WriteFile(cache, []byte("garbage"), 0o644)
	reads.Store(0)
	if k := mustScan(t, root, opts).Key(); k != m4.Key() {
		t.Fatal("corrupt cache changed the key")
	}
	if got := reads.Load(); got != 5 {
		t.Fatalf("scan with corrupt cache read %d files, want 5", got)
	}
	reads.Store(0)
	mustScan(t, root, opts)
	if got := reads.Load(); got != 0 {
		t.Fatalf("cache not rewritten: %d reads", got)
	}

	// A cache written for another tree is not used for this one.
	other := sourceTree(t)
	reads.Store(0)
	mustScan(t, other, opts)
	if got := reads.Load(); got != 5 {
		t.Fatalf("scan of another tree read %d files, want 5", got)
	}
}

func TestScanErrors(t *testing.T) {
	root := sourceTree(t)
	if _, err := Scan(context.Background(), filepath.Join(root, "nope"), Options{}); err == nil {
		t.Error("missing root accepted")
	}
	if _, err := Scan(context.Background(), filepath.Join(root, "Makefile"), Options{}); err == nil {
		t.Error("file as root accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Scan(ctx, root, Options{}); err == nil {
		t.Error("cancelled context ignored")
	}
	if os.Geteuid() == 0 {
		t.Log("running as root: permission checks skipped")
		return
	}
	os.Chmod(filepath.Join(root, "src/aloha.c"), 0o000)
	_, err := Scan(context.Background(), root, Options{})
	if err == nil || !strings.Contains(err.Error(), "src/aloha.c") {
		t.Errorf("unreadable file: err = %v", err)
	}
	t.Logf("unreadable file: %v", err)
	os.Chmod(filepath.Join(root, "src/aloha.c"), 0o644)
	os.Chmod(filepath.Join(root, "src"), 0o000)
	defer os.Chmod(filepath.Join(root, "src"), 0o755)
	_, err = Scan(context.Background(), root, Options{})
	if err == nil || !strings.Contains(err.Error(), "src") {
		t.Errorf("unreadable directory: err = %v", err)
	}
	t.Logf("unreadable directory: %v", err)
	// An ignored unreadable directory is not an error.
	if _, err := Scan(context.Background(), root, Options{Ignore: []string{"/src/"}}); err != nil {
		t.Errorf("ignored unreadable directory: %v", err)
	}
}

func TestScanSymlinkedRoot(t *testing.T) {
	root := sourceTree(t)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	if mustScan(t, link, Options{}).Key() != mustScan(t, root, Options{}).Key() {
		t.Fatal("scanning through a symlinked root gave another key")
	}
}

// TestScanKeep: a simulator's state files git ignores (INET's feature
// choice) are in the snapshot; Exclude still wins, absent ones are fine.
func TestScanKeep(t *testing.T) {
	needGit(t)
	repo := t.TempDir()
	isolateGit(t, repo)
	git(t, repo, "init", "-q")
	put(t, repo, ".gitignore", ".oppfeaturestate\n.nedexclusions\nsrc/Makefile\n", 0o644)
	put(t, repo, "Makefile", "makefiles:\n", 0o644)
	put(t, repo, ".oppfeaturestate", "<features/>", 0o644)
	put(t, repo, ".nedexclusions", "inet.visualizer\n", 0o644)
	put(t, repo, "src/Makefile", "generated", 0o644)
	git(t, repo, "add", ".gitignore", "Makefile")
	git(t, repo, "commit", "-qm", "init")
	keep := []string{".oppfeaturestate", ".nedexclusions", ".nedfolders"}
	got := paths(mustScan(t, repo, Options{Keep: keep}))
	want := []string{".gitignore", ".nedexclusions", ".oppfeaturestate", "Makefile"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("snapshot holds %v, want %v (src/Makefile is generated: the build makes it)", got, want)
	}
	got = paths(mustScan(t, repo, Options{Keep: keep, Exclude: []string{".nedexclusions"}}))
	if strings.Contains(strings.Join(got, " "), ".nedexclusions") {
		t.Errorf("an excluded state file was kept: %v", got)
	}
}
