package snapshot

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/klauspost/compress/zstd"
)

// A pack carries a snapshot's file contents as one stream: a zstd tar
// whose entries are named by content hash, each distinct content once. An
// INET tree is ~5000 files; one object read per file costs a round trip
// each, a pack costs one for all.

// PackMin is the number of distinct files from which a snapshot is worth
// a pack: below it, a few reads cost less than a second copy in the store.
const PackMin = 64

// WritePack writes the pack of m's files, read from root, to w.
func WritePack(w io.Writer, root string, m *Manifest) error {
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	done := map[string]bool{}
	entries := append([]Entry(nil), m.Entries...)
	sort.Slice(entries, func(a, b int) bool { return entries[a].Hash < entries[b].Hash })
	for _, e := range entries {
		if e.Hash == "" || done[e.Hash] {
			continue
		}
		done[e.Hash] = true
		f, err := os.Open(filepath.Join(root, filepath.FromSlash(e.Path)))
		if err != nil {
			return fmt.Errorf("pack %s: %w", e.Path, err)
		}
		err = tw.WriteHeader(&tar.Header{Name: e.Hash, Typeflag: tar.TypeReg, Size: e.Size, Mode: 0o644, Format: tar.FormatPAX})
		if err == nil {
			_, err = io.CopyN(tw, f, e.Size)
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("pack %s (changed while packing?): %w", e.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// BlobCache is a host's store of file contents by hash, shared by the trees
// materialised there: a new snapshot of a project fetches only the files
// none of them had. Entries are written atomically and verified.
type BlobCache struct{ Dir string }

func (c BlobCache) path(hash string) string {
	if len(hash) < 2 {
		return filepath.Join(c.Dir, "_", hash)
	}
	return filepath.Join(c.Dir, hash[:2], hash)
}

// Has reports whether the cache holds hash.
func (c BlobCache) Has(hash string) bool {
	_, err := os.Stat(c.path(hash))
	return err == nil
}

// Put stores r's content under hash, refusing content that does not hash
// to it.
func (c BlobCache) Put(hash string, r io.Reader) error {
	p := c.path(hash)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".put-*")
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && hex.EncodeToString(h.Sum(nil)) != hash {
		err = fmt.Errorf("content does not match hash %s", hash)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), p)
}

// Fetch is a Fetch reading from the cache.
func (c BlobCache) Fetch(_ context.Context, hash string, w io.Writer) error {
	f, err := os.Open(c.path(hash))
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// Missing lists the distinct hashes of m the cache lacks, and their bytes.
func (c BlobCache) Missing(m *Manifest) (hashes []string, bytes int64) {
	seen := map[string]bool{}
	for _, e := range m.Entries {
		if e.Hash == "" || seen[e.Hash] {
			continue
		}
		seen[e.Hash] = true
		if !c.Has(e.Hash) {
			hashes = append(hashes, e.Hash)
			bytes += e.Size
		}
	}
	return hashes, bytes
}

// ReadPack stores the pack entries the cache lacks, skipping the others,
// and returns how many it stored.
func (c BlobCache) ReadPack(r io.Reader) (int, error) {
	zr, err := zstd.NewReader(r)
	if err != nil {
		return 0, err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("read pack: %w", err)
		}
		if h.Typeflag != tar.TypeReg || !validHash(h.Name) || c.Has(h.Name) {
			continue
		}
		if err := c.Put(h.Name, tr); err != nil {
			return n, fmt.Errorf("read pack: %w", err)
		}
		n++
	}
}
