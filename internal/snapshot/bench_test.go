package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// BenchmarkScan scans a generated tree of 5000 small files in 50 directories
// plus three 20 MB files: without a hash cache (everything hashed), and with a
// warm cache (only stat and open per file).
func BenchmarkScan(b *testing.B) {
	root := b.TempDir()
	isolateGit(b, root)
	for i := range 5000 {
		put(b, root, fmt.Sprintf("src/d%02d/file%04d.cc", i%50, i), "// file "+strconv.Itoa(i)+"\nint f"+strconv.Itoa(i)+"() { return 0; }\n", 0o644)
	}
	big := make([]byte, 20<<20)
	for i := range 3 {
		rand.Read(big)
		p := filepath.Join(root, "data", fmt.Sprintf("big%d.bin", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, big, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	defer func(w time.Duration) { racyWindow = w }(racyWindow)
	racyWindow = 0 // the files were just written; let the cache trust them

	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			mustScan(b, root, Options{})
		}
	})
	b.Run("cold-writing-cache", func(b *testing.B) {
		cache := filepath.Join(b.TempDir(), "hashes")
		for b.Loop() {
			os.Remove(cache)
			mustScan(b, root, Options{HashCache: cache})
		}
	})
	b.Run("warm-cache", func(b *testing.B) {
		cache := filepath.Join(b.TempDir(), "hashes")
		mustScan(b, root, Options{HashCache: cache})
		for b.Loop() {
			mustScan(b, root, Options{HashCache: cache})
		}
	})
}

// BenchmarkMaterializePack lays out a tree shaped like INET's (5000 sources
// of 12 kB, one 50 MB library, half random) from its pack into a fresh
// directory and blob cache, as a host's first tree; "decode" only reads
// the pack, the floor of what laying it out can cost.
func BenchmarkMaterializePack(b *testing.B) {
	root := b.TempDir()
	isolateGit(b, root)
	buf := make([]byte, 9000)
	for i := range 5000 {
		rand.Read(buf)
		put(b, root, fmt.Sprintf("src/d%02d/Module%04d.cc", i%50, i), base64.StdEncoding.EncodeToString(buf), 0o644)
	}
	lib := make([]byte, 50<<20)
	rand.Read(lib[:len(lib)/2])
	if err := os.WriteFile(filepath.Join(root, "src", "libINET.so"), lib, 0o755); err != nil {
		b.Fatal(err)
	}
	m := mustScan(b, root, Options{})
	var pack bytes.Buffer
	if err := WritePack(&pack, root, m); err != nil {
		b.Fatal(err)
	}
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(m.TotalSize())
		for b.Loop() {
			zr, _ := zstd.NewReader(bytes.NewReader(pack.Bytes()))
			tr := tar.NewReader(zr)
			for {
				if _, err := tr.Next(); err != nil {
					break
				}
				io.Copy(io.Discard, tr)
			}
			zr.Close()
		}
	})
	b.Run("tree", func(b *testing.B) {
		b.SetBytes(m.TotalSize())
		for b.Loop() {
			dir, cache := b.TempDir(), BlobCache{Dir: b.TempDir()}
			if _, complete, err := MaterializePack(context.Background(), dir, m, bytes.NewReader(pack.Bytes()), cache); err != nil || !complete {
				b.Fatal(complete, err)
			}
		}
	})
}
