//go:build unix

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
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

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
		defer reportCPU(b)()
		for b.Loop() {
			dir, cache := b.TempDir(), BlobCache{Dir: b.TempDir()}
			if _, complete, err := MaterializePack(context.Background(), dir, m, bytes.NewReader(pack.Bytes()), cache); err != nil || !complete {
				b.Fatal(complete, err)
			}
		}
	})
}

// reportCPU reports the process's user+system CPU per iteration, steadier
// than wall time on a shared machine: call it before the loop, the
// function it returns after.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() { b.ReportMetric((cpu()-start).Seconds()/float64(b.N), "cpu-s/op") }
}
