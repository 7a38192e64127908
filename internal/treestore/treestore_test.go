package treestore_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/simswarm/simswarm/internal/archive"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/engine/enginetest"
	"github.com/simswarm/simswarm/internal/snapshot"
	"github.com/simswarm/simswarm/internal/treestore"
)

func writeTree(t *testing.T, root string, files int) {
	t.Helper()
	for i := range files {
		p := filepath.Join(root, fmt.Sprintf("src/d%d/f%d.cc", i%7, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(fmt.Sprintf("// file %d\nint f%d() { return %d; }\n", i, i, i%3)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sameTree(t *testing.T, a, b string) {
	t.Helper()
	err := filepath.WalkDir(a, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs after the round trip: %v", rel, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRoundTrip: a tree uploaded by a client is laid out by a worker file
// for file (one file at a time and from its pack alike), a second upload
// stores nothing, and gc's keep set holds every object the tree needs.
func TestRoundTrip(t *testing.T) {
	e := enginetest.Start(t)
	worker := e.Open(t, "worker")
	ctx := context.Background()
	src := t.TempDir()
	writeTree(t, src, snapshot.PackMin+6) // big enough for a pack
	man, err := snapshot.Scan(ctx, src, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	client := treestore.New(e.Engine)
	stored, err := client.Upload(ctx, src, man)
	if err != nil {
		t.Fatal(err)
	}
	if distinct := len(man.Blobs()); stored != distinct {
		t.Errorf("first upload stored %d files, the tree has %d distinct contents", stored, distinct)
	}
	if again, err := client.Upload(ctx, src, man); err != nil || again != -1 {
		t.Errorf("second upload = %d, %v; want -1 (the store has it)", again, err)
	}

	w := treestore.New(worker)
	got, err := w.Manifest(ctx, man.Key())
	if err != nil || got.Key() != man.Key() {
		t.Fatalf("Manifest = %v, %v", got, err)
	}
	files := t.TempDir()
	if err := w.Materialize(ctx, files, got); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, files)

	pack, found, err := w.OpenPack(ctx, man.Key())
	if err != nil || !found {
		t.Fatalf("OpenPack of a %d-file tree: found %v, %v", len(man.Entries), found, err)
	}
	bc := snapshot.BlobCache{Dir: t.TempDir()}
	packed := t.TempDir()
	_, complete, err := snapshot.MaterializePack(ctx, packed, got, pack, bc)
	pack.Close()
	if err != nil || !complete {
		t.Fatalf("MaterializePack: complete %v, %v", complete, err)
	}
	sameTree(t, src, packed)

	keep := map[string]bool{}
	if err := w.Keep(ctx, man.Key(), keep); err != nil {
		t.Fatal(err)
	}
	objs, err := e.Objects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if !keep[o.Name] {
			t.Errorf("gc would delete %s, which the tree needs", o.Name)
		}
	}
	if len(objs) != len(man.Blobs())+2 {
		t.Errorf("the store holds %d objects for %d contents, a manifest and a pack", len(objs), len(man.Blobs()))
	}
}

// TestArtifact: a build's outputs stored by a builder unpack on a runner.
func TestArtifact(t *testing.T) {
	e := enginetest.Start(t)
	ctx := context.Background()
	out := t.TempDir()
	writeTree(t, out, 3)
	var buf bytes.Buffer
	names := []string{"src/d0/f0.cc", "src/d1/f1.cc", "src/d2/f2.cc"}
	if _, err := archive.Pack(&buf, out, names); err != nil {
		t.Fatal(err)
	}
	s := treestore.New(e.Engine)
	if has, err := s.HasArtifact(ctx, "a1"); err != nil || has {
		t.Fatalf("HasArtifact before it was stored: %v, %v", has, err)
	}
	if err := s.PutArtifact(ctx, "a1", io.NopCloser(&buf)); err != nil {
		t.Fatal(err)
	}
	if has, err := s.HasArtifact(ctx, "a1"); err != nil || !has {
		t.Fatalf("HasArtifact after it was stored: %v, %v", has, err)
	}
	dir := t.TempDir()
	n, err := s.Unpack(ctx, "a1", dir)
	if err != nil || n == 0 {
		t.Fatalf("Unpack = %d, %v", n, err)
	}
	sameTree(t, out, dir)
	keep := map[string]bool{}
	treestore.KeepArtifact("a1", keep)
	if !keep[engine.ArtifactObject("a1")] {
		t.Error("KeepArtifact keeps another name than the artifact's")
	}
	if _, err := s.Unpack(ctx, "nosuch", t.TempDir()); err == nil {
		t.Error("Unpack of an artifact never stored succeeded")
	}
}
