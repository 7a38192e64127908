package snapshot

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
)

// TestPackIntoBlobCache: a pack carries each distinct content once; the
// cache takes only what it lacks, refuses content under a wrong hash, and a
// tree materialised from it equals the source.
func TestPackIntoBlobCache(t *testing.T) {
	src := t.TempDir()
	for i := range 100 {
		put(t, src, "src/f"+strconv.Itoa(i)+".cc", "content "+strconv.Itoa(i%70), 0o644)
	}
	m := mustScan(t, src, Options{})
	var pack bytes.Buffer
	if err := WritePack(&pack, src, m); err != nil {
		t.Fatal(err)
	}
	bc := BlobCache{Dir: t.TempDir()}
	if miss, _ := bc.Missing(m); len(miss) != 70 {
		t.Fatalf("an empty cache misses %d contents, want 70", len(miss))
	}
	if err := bc.Put(m.Entries[0].Hash, strings.NewReader("not it")); err == nil {
		t.Fatal("content under a wrong hash was stored")
	}
	n, err := bc.ReadPack(bytes.NewReader(pack.Bytes()))
	if err != nil || n != 70 {
		t.Fatalf("pack stored %d contents (%v), want 70", n, err)
	}
	if n, _ := bc.ReadPack(bytes.NewReader(pack.Bytes())); n != 0 {
		t.Errorf("a second pack stored %d contents the cache had", n)
	}
	dst := t.TempDir()
	if err := Materialize(context.Background(), dst, m, bc.Fetch); err != nil {
		t.Fatal(err)
	}
	if read(t, dst, "src/f99.cc") != "content 29" {
		t.Errorf("materialised f99.cc holds %q", read(t, dst, "src/f99.cc"))
	}
}
