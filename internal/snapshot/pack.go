package snapshot

import (
	"archive/tar"
	"context"
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
// no second hash. A link appears whole or not at all, so it takes the
// blob's name at once; should it not be that very file (the tree changed
// under us), it goes again. Where no link can be made (the cache on
// another file system), the content is copied.
func (c BlobCache) adopt(hash, file string, fi fs.FileInfo) error {
	p := c.path(hash)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	err := os.Link(file, p)
	if errors.Is(err, fs.ErrExist) {
		return nil // another runner process on this cache was first
	}
	if err == nil {
		if li, err := os.Lstat(p); err == nil && os.SameFile(li, fi) {
			return nil
		}
		os.Remove(p)
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	return c.Put(hash, f)
}

// MaterializePack lays the files of m out in dir straight from the pack r:
// each content is written once, where the tree needs it, and verified
// against its hash while it is written (a file whose content does not
// match is never renamed into place). The host's cache then takes each
// verified file by a hard link (adopt), so a later tree of a snapshot
// sharing it finds it there at no second write. A content the tree does
// not need but the cache lacks goes into the cache. What the stream does
// not carry (symlinks, a second path of the same content) is taken from
// the cache.
//
// complete reports whether the tree is whole; it is not when the pack
// lacked contents the cache does not have either: fetch those into the
// cache, then call Materialize, which finishes the tree leaving what this
// wrote untouched (both keep one state file). n is how many contents
// came from the pack.
//
// The cache's file and the tree's file are then one file: a run that
// writes into its tree in place changes the cached content too. A tree
// taking the content from the cache verifies it as it copies it (a
// CorruptError, after which the caller drops the entry and fetches it
// again), and only trees laid out from a pack share files with the cache,
// never with each other, so such a run can spoil nothing but its own tree.
func MaterializePack(ctx context.Context, dir string, m *Manifest, r io.Reader, cache BlobCache) (n int, complete bool, err error) {
	mt, err := openTree(dir, m)
	if err != nil {
		return 0, false, err
	}
	defer mt.close()
	defer func() {
		key := ""
		if complete {
			key = m.Key()
		}
		if serr := mt.saveState(key); serr != nil && err == nil {
			complete, err = false, serr
		}
	}()
	if err := mt.removeOld(ctx, m); err != nil {
		return 0, false, err
	}
	// In a directory that holds nothing yet (a runner's new tree), every
	// file is to be written: no need to look at each path first.
	fresh := len(mt.files) == 0 && mt.empty()
	need := map[string]*Entry{}
	var rest []Entry
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Mode == ModeSymlink || need[e.Hash] != nil {
			rest = append(rest, *e)
			continue
		}
		write := true
		if !fresh {
			if write, err = mt.settle(e); err != nil {
				return 0, false, err
			}
		}
		if write {
			need[e.Hash] = e
		}
	}
	zr, err := zstd.NewReader(r)
	if err != nil {
		return 0, false, err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return n, false, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, false, fmt.Errorf("snapshot: read pack: %w", err)
		}
		if h.Typeflag != tar.TypeReg || !validHash(h.Name) {
			continue
		}
		e := need[h.Name]
		if e == nil {
			if !cache.Has(h.Name) {
				if err := cache.Put(h.Name, tr); err != nil {
					return n, false, fmt.Errorf("snapshot: read pack: %w", err)
				}
				n++
			}
			continue
		}
		delete(need, h.Name)
		fi, err := mt.writeFile(e, func(w io.Writer) error {
			_, err := io.CopyBuffer(w, tr, buf)
			return err
		})
		if err != nil {
			return n, false, err
		}
		n++
		if err := cache.adopt(h.Name, filepath.Join(dir, filepath.FromSlash(e.Path)), fi); err != nil {
			return n, false, fmt.Errorf("snapshot: blob cache: %s: %w", e.Path, fserr.WithoutPath(err))
		}
	}
	for _, e := range need {
		rest = append(rest, *e)
	}
	for _, e := range rest {
		if e.Mode != ModeSymlink && !cache.Has(e.Hash) {
			return n, false, nil
		}
	}
	mt.fetch = cache.Fetch
	if err := mt.writeAll(ctx, rest); err != nil {
		return n, false, err
	}
	return n, true, nil
}
