package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// packTree is a source tree of 100 files with 70 distinct contents (8 kB
// that do not compress, so that the pack spans several zstd blocks), an
// executable and a symlink, its manifest and its pack.
func packTree(t *testing.T) (string, *Manifest, []byte) {
	t.Helper()
	src := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	contents := make([]string, 70)
	for i := range contents {
		b := make([]byte, 6000)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		contents[i] = "content " + strconv.Itoa(i) + "\n" + base64.StdEncoding.EncodeToString(b)
	}
	for i := range 100 {
		put(t, src, "src/f"+strconv.Itoa(i)+".cc", contents[i%70], 0o644)
	}
	put(t, src, "run.sh", "#!/bin/sh\necho run\n", 0o755)
	symlink(t, src, "lib", "src")
	m := mustScan(t, src, Options{})
	var pack bytes.Buffer
	if err := WritePack(&pack, src, m); err != nil {
		t.Fatal(err)
	}
	return src, m, pack.Bytes()
}

// checkCache fails unless every entry of the cache holds the content its
// name says.
func checkCache(t *testing.T, bc BlobCache) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(bc.Dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != d.Name() {
			t.Errorf("cache entry %s holds other content", d.Name())
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMaterializePack: the first tree comes straight from the pack; the
// cache then holds every content, as the very files of that tree (no
// second copy), and a second tree laid out from the cache alone equals the
// source.
func TestMaterializePack(t *testing.T) {
	ctx := context.Background()
	src, m, pack := packTree(t)
	bc := BlobCache{Dir: t.TempDir()}
	if miss, _ := bc.Missing(m); len(miss) != 71 {
		t.Fatalf("an empty cache misses %d contents, want 71", len(miss))
	}
	dst := t.TempDir()
	n, complete, err := MaterializePack(ctx, dst, m, bytes.NewReader(pack), bc)
	if err != nil || n != 71 || !complete {
		t.Fatalf("the pack gave %d contents (complete %v, %v), want 71 and a whole tree", n, complete, err)
	}
	if got := materialized(t, dst); got.Key() != m.Key() {
		t.Fatalf("tree from the pack differs from the source:\n got %s\nwant %s", got.Encode(), m.Encode())
	}
	if p := lstat(t, dst, "run.sh").Mode().Perm(); p != 0o755 {
		t.Errorf("run.sh mode %v", p)
	}
	if miss, _ := bc.Missing(m); len(miss) != 0 {
		t.Fatalf("the cache misses %d contents after the pack", len(miss))
	}
	if got := checkCache(t, bc); got != 71 {
		t.Errorf("the cache holds %d entries, want 71", got)
	}
	e, _ := entry(m, "src/f99.cc")
	cached, err := os.Stat(bc.path(e.Hash))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(cached, lstat(t, dst, "src/f99.cc")) && !os.SameFile(cached, lstat(t, dst, "src/f29.cc")) {
		t.Error("the cache holds a second copy of src/f99.cc's content, not the tree's file")
	}

	// A pack that brings nothing new stores nothing and rewrites nothing.
	before := lstat(t, dst, "src/f5.cc")
	if n, complete, err := MaterializePack(ctx, dst, m, bytes.NewReader(pack), bc); err != nil || n != 0 || !complete {
		t.Errorf("a second pack into the finished tree took %d contents (complete %v, %v)", n, complete, err)
	}
	if after := lstat(t, dst, "src/f5.cc"); !os.SameFile(before, after) || !before.ModTime().Equal(after.ModTime()) {
		t.Error("a file already in place was rewritten")
	}

	dst2 := t.TempDir()
	if err := Materialize(ctx, dst2, m, bc.Fetch); err != nil {
		t.Fatal(err)
	}
	if read(t, dst2, "src/f99.cc") != read(t, src, "src/f99.cc") {
		t.Errorf("tree from the cache: f99.cc holds %q", read(t, dst2, "src/f99.cc"))
	}
	if os.SameFile(lstat(t, dst2, "src/f99.cc"), cached) {
		t.Error("a tree laid out from the cache shares its file with the cache")
	}
}

// TestMaterializePackWrittenInPlace: a run that writes into a file of the
// tree that came from the pack changes the cache entry sharing it; the
// next tree taking that content from the cache refuses it (CorruptError
// naming the hash), writes no such file, and after the entry is dropped the
// cache serves the rest.
func TestMaterializePackWrittenInPlace(t *testing.T) {
	ctx := context.Background()
	_, m, pack := packTree(t)
	bc := BlobCache{Dir: t.TempDir()}
	dst := t.TempDir()
	if _, _, err := MaterializePack(ctx, dst, m, bytes.NewReader(pack), bc); err != nil {
		t.Fatal(err)
	}
	e, _ := entry(m, "src/f3.cc")
	f, err := os.OpenFile(filepath.Join(dst, "src", "f3.cc"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("CONTENT"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !bc.Has(e.Hash) {
		t.Fatal("the cache lost f3.cc's content")
	}
	dst2 := t.TempDir()
	err = Materialize(ctx, dst2, m, bc.Fetch)
	var bad *CorruptError
	if !errors.As(err, &bad) || bad.Hash != e.Hash {
		t.Fatalf("tree from a changed cache entry: err = %v, want a CorruptError for %s", err, e.Hash)
	}
	for _, p := range []string{"src/f3.cc", "src/f73.cc"} {
		if exists(dst2, p) {
			t.Errorf("%s was written from the changed cache entry", p)
		}
	}
	if err := bc.Remove(bad.Hash); err != nil {
		t.Fatal(err)
	}
	if miss, _ := bc.Missing(m); len(miss) != 1 || miss[0] != e.Hash {
		t.Fatalf("after dropping the bad entry the cache misses %v, want only %s", miss, e.Hash)
	}
}

// TestMaterializePackBad: a pack with a content under a wrong hash, or
// cut off in the middle of a file, leaves neither that file in the tree nor
// anything unverified in the cache; what came before it stays usable.
func TestMaterializePackBad(t *testing.T) {
	ctx := context.Background()
	src, m, pack := packTree(t)

	// The same pack with one entry's content replaced (same length).
	e, _ := entry(m, "src/f7.cc")
	var forged bytes.Buffer
	zw, _ := zstd.NewWriter(&forged)
	tw := tar.NewWriter(zw)
	zr, err := zstd.NewReader(bytes.NewReader(pack))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(tr)
		if h.Name == e.Hash {
			b = []byte(strings.Replace(string(b), "content 7", "content 8", 1))
		}
		tw.WriteHeader(h)
		tw.Write(b)
	}
	zr.Close()
	tw.Close()
	zw.Close()

	cases := map[string][]byte{
		"forged":    forged.Bytes(),
		"truncated": pack[:len(pack)/2],
	}
	for name, p := range cases {
		bc := BlobCache{Dir: t.TempDir()}
		dst := t.TempDir()
		_, _, err := MaterializePack(ctx, dst, m, bytes.NewReader(p), bc)
		if err == nil {
			t.Errorf("%s pack: no error", name)
			continue
		}
		t.Logf("%s pack: %v", name, err)
		var bad *CorruptError
		if name == "forged" && (!errors.As(err, &bad) || bad.Hash != e.Hash) {
			t.Errorf("forged pack: err = %v, want a CorruptError for %s", err, e.Hash)
		}
		if name == "forged" && (exists(dst, "src/f7.cc") || bc.Has(e.Hash)) {
			t.Error("forged pack: the forged content was kept")
		}
		checkCache(t, bc)
		ents, _ := os.ReadDir(filepath.Join(dst, "src"))
		for _, d := range ents {
			if strings.HasPrefix(d.Name(), ".") {
				t.Errorf("%s pack: temp file %s left in the tree", name, d.Name())
			}
		}
		// What the pack did deliver stays: the tree completes fetching
		// only the rest.
		store := newStore()
		store.add(t, src, m)
		if err := Materialize(ctx, dst, m, store.fetch); err != nil {
			t.Fatalf("%s pack: completing the tree: %v", name, err)
		}
		if got := materialized(t, dst); got.Key() != m.Key() {
			t.Errorf("%s pack: completed tree differs from the source", name)
		}
		if name == "truncated" && store.total() >= 101 {
			t.Errorf("truncated pack: completing the tree fetched %d files, want fewer than all 101", store.total())
		}
	}
}
