package snapshot

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/simswarm/simswarm/internal/fserr"

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

// Remove drops hash from the cache.
func (c BlobCache) Remove(hash string) error {
	err := os.Remove(c.path(hash))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// adopt makes the cache hold hash by a hard link to file, whose content
// was verified as it was written and which fi describes: no second copy,
// no second hash. The link is made under a temporary name and checked to
// be that very file before it takes the blob's name. Where no link can be
// made (the cache on another file system), the content is copied.
func (c BlobCache) adopt(hash, file string, fi fs.FileInfo) error {
	p := c.path(hash)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(p), ".link-"+rand.Text())
	if os.Link(file, tmp) == nil {
		if li, err := os.Lstat(tmp); err == nil && os.SameFile(li, fi) {
			if err := os.Rename(tmp, p); err != nil {
				os.Remove(tmp)
				return err
			}
			return nil
		}
		os.Remove(tmp)
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	return c.Put(hash, f)
}

// MaterializePack lays the files of m whose content the pack r holds out
// in dir straight from the stream: each content is written once, where
// the tree needs it, and verified against its hash while it is written (a
// file whose content does not match is never renamed into place). The
// host's cache then takes each verified file by a hard link (adopt), so a
// later tree of a snapshot sharing it finds it there at no second write.
// A content the tree does not need but the cache lacks goes into the
// cache.
//
// It leaves the rest of the tree (symlinks, a second path of the same
// content, files the pack lacks) to Materialize, which completes it from
// the cache: call Materialize after it. Both keep one state file, so
// Materialize leaves what this wrote untouched. It returns how many
// contents it took from the pack.
//
// The cache's file and the tree's file are then one file: a run that
// writes into its tree in place changes the cached content too. A tree
// taking the content from the cache verifies it as it copies it (a
// CorruptError, after which the caller drops the entry and fetches it
// again), and only trees laid out from a pack share files with the cache,
// never with each other, so such a run can spoil nothing but its own tree.
func MaterializePack(ctx context.Context, dir string, m *Manifest, r io.Reader, cache BlobCache) (n int, err error) {
	mt, err := openTree(dir, m)
	if err != nil {
		return 0, err
	}
	defer mt.root.Close()
	defer func() {
		if serr := mt.saveState(""); serr != nil && err == nil {
			err = serr
		}
	}()
	if err := mt.removeOld(ctx, m); err != nil {
		return 0, err
	}
	need := map[string]*Entry{}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Mode == ModeSymlink || need[e.Hash] != nil {
			continue
		}
		write, err := mt.settle(e)
		if err != nil {
			return 0, err
		}
		if write {
			need[e.Hash] = e
		}
	}
	zr, err := zstd.NewReader(r)
	if err != nil {
		return 0, err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("snapshot: read pack: %w", err)
		}
		if h.Typeflag != tar.TypeReg || !validHash(h.Name) {
			continue
		}
		e := need[h.Name]
		if e == nil {
			if !cache.Has(h.Name) {
				if err := cache.Put(h.Name, tr); err != nil {
					return n, fmt.Errorf("snapshot: read pack: %w", err)
				}
				n++
			}
			continue
		}
		delete(need, h.Name)
		if err := mt.writeFile(e, func(w io.Writer) error {
			_, err := io.CopyBuffer(w, tr, buf)
			return err
		}); err != nil {
			return n, err
		}
		n++
		if cache.Has(h.Name) {
			continue
		}
		fi, err := mt.root.Lstat(e.Path)
		if err == nil {
			err = cache.adopt(h.Name, filepath.Join(dir, filepath.FromSlash(e.Path)), fi)
		}
		if err != nil {
			return n, fmt.Errorf("snapshot: blob cache: %s: %w", e.Path, fserr.WithoutPath(err))
		}
	}
}
