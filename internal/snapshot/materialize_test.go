package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lstat returns the FileInfo of rel under root, failing the test if absent.
func lstat(t *testing.T, root, rel string) os.FileInfo {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// materialized scans dir as a tree (without the state file) for comparison
// with the manifest it was made from.
func materialized(t *testing.T, dir string) *Manifest {
	t.Helper()
	return mustScan(t, dir, Options{Exclude: []string{StateFile}})
}

func TestMaterialize(t *testing.T) {
	src := sourceTree(t)
	put(t, src, "src/old.h", "old header", 0o644)
	put(t, src, "deep/only/child.txt", "alone", 0o644)
	symlink(t, src, "etc", "/etc/hostname") // outside the tree: kept as a link
	m1 := mustScan(t, src, Options{})
	store := newStore()
	store.add(t, src, m1)

	dir := filepath.Join(t.TempDir(), "ws")
	ctx := context.Background()
	if err := Materialize(ctx, dir, m1, store.fetch); err != nil {
		t.Fatal(err)
	}
	if got := materialized(t, dir); got.Key() != m1.Key() {
		t.Fatalf("materialized tree differs:\n got %s\nwant %s", got.Encode(), m1.Encode())
	}
	if p := lstat(t, dir, "run.sh").Mode().Perm(); p != 0o755 {
		t.Fatalf("run.sh mode %v", p)
	}
	if p := lstat(t, dir, "Makefile").Mode().Perm(); p != 0o644 {
		t.Fatalf("Makefile mode %v", p)
	}
	if target, _ := os.Readlink(filepath.Join(dir, "lib")); target != "src" {
		t.Fatalf("lib -> %q", target)
	}
	if target, _ := os.Readlink(filepath.Join(dir, "etc")); target != "/etc/hostname" {
		t.Fatalf("etc -> %q", target)
	}

	// The build leaves outputs that were never part of a manifest.
	put(t, dir, "aloha", "binary", 0o755)
	put(t, dir, "out/src/aloha.o", "object", 0o644)
	put(t, dir, "deep/only/child.o", "object", 0o644)
	before := map[string]os.FileInfo{}
	for _, p := range paths(m1) {
		before[p] = lstat(t, dir, p)
	}

	// Materializing the same manifest again touches nothing and fetches nothing.
	fetched := store.total()
	if err := Materialize(ctx, dir, m1, store.fetch); err != nil {
		t.Fatal(err)
	}
	if store.total() != fetched {
		t.Fatalf("unchanged manifest fetched %d blobs", store.total()-fetched)
	}

	// Next version: one file changed, one removed, one added, one chmod +x.
	put(t, src, "src/aloha.c", "int main(void) { return 42; }\n", 0o644)
	os.Remove(filepath.Join(src, "src/old.h"))
	os.Remove(filepath.Join(src, "deep/only/child.txt"))
	put(t, src, "src/new.h", "new header", 0o644)
	os.Chmod(filepath.Join(src, "omnetpp.ini"), 0o755)
	m2 := mustScan(t, src, Options{})
	store.add(t, src, m2)
	fetched = store.total()
	if err := Materialize(ctx, dir, m2, store.fetch); err != nil {
		t.Fatal(err)
	}
	if got := store.total() - fetched; got != 2 {
		t.Fatalf("fetched %d blobs, want 2 (changed + new file)", got)
	}
	for _, p := range []string{"aloha", "out/src/aloha.o", "deep/only/child.o"} {
		if !exists(dir, p) {
			t.Errorf("foreign file %s removed", p)
		}
	}
	for _, p := range []string{"src/old.h", "deep/only/child.txt"} {
		if exists(dir, p) {
			t.Errorf("%s not removed", p)
		}
	}
	if read(t, dir, "src/aloha.c") != "int main(void) { return 42; }\n" || read(t, dir, "src/new.h") != "new header" {
		t.Fatal("changed or new file has the wrong content")
	}
	for p, fi := range before {
		now, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p)))
		switch p {
		case "src/aloha.c":
			if err != nil || os.SameFile(fi, now) {
				t.Errorf("%s was not rewritten", p)
			}
		case "src/old.h", "deep/only/child.txt":
		case "omnetpp.ini":
			// Mode change only: chmod in place, content and mtime untouched.
			if err != nil || !os.SameFile(fi, now) || !fi.ModTime().Equal(now.ModTime()) || now.Mode().Perm() != 0o755 {
				t.Errorf("%s: want same file, same mtime, mode 0755; got mode %v", p, now.Mode().Perm())
			}
		default:
			if err != nil || !os.SameFile(fi, now) || !fi.ModTime().Equal(now.ModTime()) {
				t.Errorf("%s was touched although unchanged", p)
			}
		}
	}
	// The build outputs aside ("out" and "*.o" are ignored by default), the
	// directory holds exactly the new manifest.
	if got := mustScan(t, dir, Options{Exclude: []string{StateFile, "aloha"}}); got.Key() != m2.Key() {
		t.Fatalf("tree after update differs:\n got %s\nwant %s", got.Encode(), m2.Encode())
	}
	if !exists(dir, "deep/only") {
		t.Error("directory still holding a build output was removed")
	}

	// Someone edits a materialized file: it is rewritten next time.
	put(t, dir, "Makefile", "locally hacked\n", 0o644)
	if err := Materialize(ctx, dir, m2, store.fetch); err != nil {
		t.Fatal(err)
	}
	if got := read(t, dir, "Makefile"); got != read(t, src, "Makefile") {
		t.Fatalf("edited file not restored: %q", got)
	}

	// Lost state: files with the right content are adopted, not rewritten.
	os.Remove(filepath.Join(dir, StateFile))
	fi := lstat(t, dir, "src/Host.ned")
	put(t, dir, "src/aloha.c", "wrong", 0o644)
	fetched = store.total()
	if err := Materialize(ctx, dir, m2, store.fetch); err != nil {
		t.Fatal(err)
	}
	if now := lstat(t, dir, "src/Host.ned"); !os.SameFile(fi, now) || !fi.ModTime().Equal(now.ModTime()) {
		t.Error("file with right content rewritten after the state was lost")
	}
	if got := store.total() - fetched; got != 1 || read(t, dir, "src/aloha.c") != "int main(void) { return 42; }\n" {
		t.Errorf("after lost state: %d fetches, aloha.c = %q", got, read(t, dir, "src/aloha.c"))
	}
}

func TestMaterializeTypeChanges(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	isolateGit(t, src)
	put(t, src, "a", "file a", 0o644)
	put(t, src, "d/x", "in d", 0o644)
	symlink(t, src, "s", "a")
	put(t, src, "f", "will become a link", 0o644)
	m1 := mustScan(t, src, Options{})
	store := newStore()
	store.add(t, src, m1)
	dir := t.TempDir()
	if err := Materialize(ctx, dir, m1, store.fetch); err != nil {
		t.Fatal(err)
	}

	// "a" becomes a directory, "d" a file, "s" a regular file, "f" a symlink.
	for _, p := range []string{"a", "d/x", "s", "f"} {
		os.Remove(filepath.Join(src, p))
	}
	os.Remove(filepath.Join(src, "d"))
	put(t, src, "a/inner", "inner", 0o644)
	put(t, src, "d", "now a file", 0o755)
	put(t, src, "s", "now a file", 0o644)
	symlink(t, src, "f", "d")
	m2 := mustScan(t, src, Options{})
	store.add(t, src, m2)
	if err := Materialize(ctx, dir, m2, store.fetch); err != nil {
		t.Fatal(err)
	}
	if got := materialized(t, dir); got.Key() != m2.Key() {
		t.Fatalf("got %s\nwant %s", got.Encode(), m2.Encode())
	}
	// And back.
	if err := Materialize(ctx, dir, m1, store.fetch); err != nil {
		t.Fatal(err)
	}
	if got := materialized(t, dir); got.Key() != m1.Key() {
		t.Fatalf("got %s\nwant %s", got.Encode(), m1.Encode())
	}
}

func TestMaterializeBadBlobs(t *testing.T) {
	ctx := context.Background()
	content := "the real content\n"
	sum := sha256.Sum256([]byte(content))
	m := &Manifest{Entries: []Entry{{Path: "src/a.c", Mode: ModeFile, Size: int64(len(content)), Hash: hex.EncodeToString(sum[:])}}}
	cases := map[string]Fetch{
		"corrupt": func(ctx context.Context, h string, w io.Writer) error {
			_, err := io.WriteString(w, "the fake content\n") // same length
			return err
		},
		"short": func(ctx context.Context, h string, w io.Writer) error {
			_, err := io.WriteString(w, "the real")
			return err
		},
		"long": func(ctx context.Context, h string, w io.Writer) error {
			_, err := io.WriteString(w, content+"and more")
			return err
		},
		"missing": func(ctx context.Context, h string, w io.Writer) error {
			return os.ErrNotExist
		},
	}
	for name, fetch := range cases {
		dir := t.TempDir()
		err := Materialize(ctx, dir, m, fetch)
		if err == nil || !strings.Contains(err.Error(), "src/a.c") {
			t.Errorf("%s blob: err = %v, want an error naming src/a.c", name, err)
			continue
		}
		t.Logf("%s blob: %v", name, err)
		if exists(dir, "src/a.c") {
			t.Errorf("%s blob: file written anyway", name)
		}
		ents, _ := os.ReadDir(filepath.Join(dir, "src"))
		if len(ents) != 0 {
			t.Errorf("%s blob: temp files left: %v", name, ents)
		}
	}
}

func TestMaterializeRefusesEscapes(t *testing.T) {
	ctx := context.Background()
	sum := sha256.Sum256([]byte("x"))
	h := hex.EncodeToString(sum[:])
	fetch := func(ctx context.Context, _ string, w io.Writer) error {
		_, err := io.WriteString(w, "x")
		return err
	}
	file := func(p string) Entry { return Entry{Path: p, Mode: ModeFile, Size: 1, Hash: h} }
	outside := t.TempDir()

	bad := map[string][]Entry{
		"dotdot":          {file("../escaped")},
		"inner dotdot":    {file("a/../../escaped")},
		"absolute":        {file(filepath.Join(outside, "escaped"))},
		"through symlink": {{Path: "a", Mode: ModeSymlink, Link: outside}, file("a/escaped")},
		"state file":      {file(StateFile)},
	}
	for name, es := range bad {
		dir := t.TempDir()
		err := Materialize(ctx, dir, &Manifest{Entries: es}, fetch)
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		t.Logf("%s: %v", name, err)
	}

	// A symlink already in the directory (not from a manifest) is not
	// followed either, whether it points outside or inside.
	dir := t.TempDir()
	os.Symlink(outside, filepath.Join(dir, "link"))
	os.MkdirAll(filepath.Join(dir, "real"), 0o755)
	os.Symlink("real", filepath.Join(dir, "inner"))
	for _, p := range []string{"link/escaped", "inner/x"} {
		err := Materialize(ctx, dir, &Manifest{Entries: []Entry{file(p)}}, fetch)
		if err == nil || !strings.Contains(err.Error(), "symlink") {
			t.Errorf("%s: err = %v", p, err)
		}
		t.Logf("%s: %v", p, err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("files written outside the directory: %v", ents)
	}
	if exists(dir, "real/x") {
		t.Fatal("wrote through an inner symlink")
	}

	// A tampered state file cannot make Materialize remove files outside.
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("keep"), 0o644)
	dir = t.TempDir()
	state := `{"format":"simswarm-tree-1","files":{"../` + filepath.Base(outside) + `/victim":{"m":"f"}}}`
	os.WriteFile(filepath.Join(dir, StateFile), []byte(state), 0o644)
	if err := Materialize(ctx, dir, &Manifest{}, fetch); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Fatal("tampered state removed a file outside the directory")
	}
}
