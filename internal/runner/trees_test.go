package runner

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/archive"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/snapshot"
	"github.com/simswarm/simswarm/internal/testkit"
	"github.com/simswarm/simswarm/internal/treestore"
)

// storeSnapshot stores the snapshot of root as a client does (every
// content, the pack, then the manifest) and returns its key.
func storeSnapshot(t *testing.T, ctx context.Context, eng *engine.Engine, root string) (string, *snapshot.Manifest) {
	t.Helper()
	man, err := snapshot.Scan(ctx, root, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range man.Entries {
		if e.Hash == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(e.Path)))
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.PutBytes(ctx, engine.FileObject(e.Hash), b); err != nil {
			t.Fatal(err)
		}
	}
	var pack bytes.Buffer
	if err := snapshot.WritePack(&pack, root, man); err != nil {
		t.Fatal(err)
	}
	if err := eng.PutBytes(ctx, engine.PackObject(man.Key()), pack.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := eng.PutBytes(ctx, engine.SnapshotObject(man.Key()), man.Encode()); err != nil {
		t.Fatal(err)
	}
	return man.Key(), man
}

// sameTree fails unless tree holds every file of man as root has it.
func sameTree(t *testing.T, tree, root string, man *snapshot.Manifest) {
	t.Helper()
	for _, e := range man.Entries {
		want, _ := os.ReadFile(filepath.Join(root, filepath.FromSlash(e.Path)))
		got, err := os.ReadFile(filepath.Join(tree, filepath.FromSlash(e.Path)))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("tree file %s differs from the source (%v)", e.Path, err)
		}
	}
}

// TestTreeFromPackThenOneFile: a host's first tree of a big snapshot comes
// as one pack stream; the next snapshot, one file changed, fetches that
// file alone; and a run that wrote into a file of the first tree in place
// spoils neither the second tree nor later ones (the cache shares that
// file, and the changed content is fetched again, not copied).
func TestTreeFromPackThenOneFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	eng, weng := twoEngines(t, ctx, 0)

	src := t.TempDir()
	for i := range 200 {
		name := filepath.Join(src, "src", "m"+strconv.Itoa(i)+".cc")
		os.MkdirAll(filepath.Dir(name), 0o755)
		if err := os.WriteFile(name, []byte("// module "+strconv.Itoa(i)+"\n"+strings.Repeat("x", i*37)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, 3<<20) // several chunks of the object store
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(src, "lib.so"), big, 0o755); err != nil {
		t.Fatal(err)
	}
	snap1, man1 := storeSnapshot(t, ctx, eng, src)
	storeArtifact(t, ctx, eng, "art1")

	var logged testkit.SyncBuffer
	c := &treeCache{dir: t.TempDir(), store: treestore.New(weng), log: slog.New(slog.NewTextHandler(&logged, nil))}
	ready := regexp.MustCompile(`msg="tree ready".* fetched_files=(\d+) .*pack=(\w+)`)
	readyLine := func(n int) []string {
		t.Helper()
		all := ready.FindAllStringSubmatch(logged.String(), -1)
		if len(all) != n {
			t.Fatalf("%d \"tree ready\" lines, want %d:\n%s", len(all), n, logged.String())
		}
		return all[n-1]
	}

	tree1, release1, err := c.get(ctx, snap1, "art1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release1()
	sameTree(t, tree1, src, man1)
	if b, _ := os.ReadFile(filepath.Join(tree1, "sim")); string(b) != "#!/bin/sh\n" {
		t.Fatal("the artifact is not in the tree")
	}
	if l := readyLine(1); l[1] != "201" || l[2] != "true" {
		t.Fatalf("first tree: fetched_files=%s pack=%s, want 201 as one pack", l[1], l[2])
	}

	// A run in the first tree writes into one of its source files in place.
	f, err := os.OpenFile(filepath.Join(tree1, "src", "m7.cc"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("// changed by a run")
	f.Close()

	if err := os.WriteFile(filepath.Join(src, "src", "m3.cc"), []byte("// edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap2, man2 := storeSnapshot(t, ctx, eng, src)
	tree2, release2, err := c.get(ctx, snap2, "art1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release2()
	sameTree(t, tree2, src, man2)
	// The changed file, and the content the run spoiled, fetched again.
	if l := readyLine(2); l[1] != "2" || l[2] != "false" {
		t.Fatalf("second tree: fetched_files=%s pack=%s, want 2 (the edited file, the spoiled one) one by one", l[1], l[2])
	}
	if !strings.Contains(logged.String(), `path=src/m7.cc`) {
		t.Errorf("the spoiled cache entry was not named:\n%s", logged.String())
	}

	// Another edit: the cache is whole again, one file comes.
	if err := os.WriteFile(filepath.Join(src, "src", "m4.cc"), []byte("// edited too\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap3, man3 := storeSnapshot(t, ctx, eng, src)
	tree3, release3, err := c.get(ctx, snap3, "art1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release3()
	sameTree(t, tree3, src, man3)
	if l := readyLine(3); l[1] != "1" || l[2] != "false" {
		t.Fatalf("third tree: fetched_files=%s pack=%s, want 1", l[1], l[2])
	}
}

// storeArtifact stores, as artifact name, a build output of one file: the
// script sim.
func storeArtifact(t *testing.T, ctx context.Context, eng *engine.Engine, name string) {
	t.Helper()
	art := t.TempDir()
	if err := os.WriteFile(filepath.Join(art, "sim"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var ab bytes.Buffer
	if _, err := archive.Pack(&ab, art, []string{"sim"}); err != nil {
		t.Fatal(err)
	}
	if err := eng.PutBytes(ctx, engine.ArtifactObject(name), ab.Bytes()); err != nil {
		t.Fatal(err)
	}
}
