package snapshot

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
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
