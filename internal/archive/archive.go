// Package archive packs files into the zstd-compressed tar streams that carry
// artifacts and results through the store, and unpacks them through safedir,
// so that no name escapes the target directory.
package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/klauspost/compress/zstd"
	"github.com/simswarm/simswarm/internal/safedir"
)

// Pack writes the named files (slash paths relative to root) as a
// zstd-compressed tar to w. Symlinks stay symlinks. Entries are sorted and
// carry no owner or time beyond mtime, so equal trees pack alike.
func Pack(w io.Writer, root string, names []string) (int64, error) {
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return 0, err
	}
	tw := tar.NewWriter(zw)
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	var total int64
	for _, name := range sorted {
		p := filepath.Join(root, filepath.FromSlash(name))
		fi, err := os.Lstat(p)
		if err != nil {
			return total, fmt.Errorf("pack %s: %w", name, err)
		}
		hdr := &tar.Header{Name: name, ModTime: fi.ModTime(), Format: tar.FormatPAX}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return total, fmt.Errorf("pack %s: %w", name, err)
			}
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, target, 0o777
		case fi.Mode().IsRegular():
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, fi.Size(), int64(fi.Mode().Perm())
		default:
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return total, err
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return total, fmt.Errorf("pack %s: %w", name, err)
			}
			n, err := io.CopyN(tw, f, hdr.Size)
			f.Close()
			total += n
			if err != nil {
				return total, fmt.Errorf("pack %s: %w", name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return total, err
	}
	return total, zw.Close()
}

// Entry is a file found in an archive.
type Entry struct {
	Name string
	Size int64
}

// Unpack extracts a Pack stream into dir, symlinks included (an artifact's
// libraries link to each other), replacing files of the same name. The
// archive lands whole or not at all (see safedir).
func Unpack(r io.Reader, dir string) ([]Entry, error) {
	d, err := safedir.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	st, err := d.Stage("unpack")
	if err != nil {
		return nil, err
	}
	defer st.Remove()
	entries, err := Extract(r, st, true)
	if err != nil {
		return nil, err
	}
	return entries, st.Commit()
}

// Extract adds the entries of a Pack stream to a stage. Only regular files
// are accepted, and symlinks where links is set: a run's results never hold
// links, hard links or devices, so an archive that does is refused.
func Extract(r io.Reader, st *safedir.Stage, links bool) ([]Entry, error) {
	zr, err := zstd.NewReader(r)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var out []Entry
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("read archive: %w", err)
		}
		switch {
		case hdr.Typeflag == tar.TypeReg:
			n, err := st.Write(hdr.Name, tr, os.FileMode(hdr.Mode).Perm(), hdr.ModTime)
			if err != nil {
				return out, fmt.Errorf("extract: %w", err)
			}
			out = append(out, Entry{Name: hdr.Name, Size: n})
		case hdr.Typeflag == tar.TypeSymlink && links:
			if err := st.Symlink(hdr.Name, hdr.Linkname); err != nil {
				return out, fmt.Errorf("extract: %w", err)
			}
		case hdr.Typeflag == tar.TypeDir:
			// Directories come with the files in them.
		default:
			return out, fmt.Errorf("extract %q: refusing a %s entry", hdr.Name, kind(hdr.Typeflag))
		}
	}
}

func kind(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("type %q", t)
}
