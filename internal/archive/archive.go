// Package archive packs files into the zstd-compressed tar streams that carry
// artifacts and results through the store, and unpacks them without letting a
// name escape the target directory.
package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
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

// Unpack extracts a Pack stream into dir, replacing files of the same name.
// Each file is written to a temporary name and renamed, so a reader never
// sees half a file.
func Unpack(r io.Reader, dir string) ([]Entry, error) {
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
		name, err := Clean(hdr.Name)
		if err != nil {
			return out, err
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		// Check before MkdirAll, which would follow a planted link and
		// create directories outside dir.
		if err := noLinkInPath(dir, name); err != nil {
			return out, err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return out, err
		}
		switch hdr.Typeflag {
		case tar.TypeSymlink:
			tmp := dst + ".simswarm-tmp"
			os.Remove(tmp)
			if err := os.Symlink(hdr.Linkname, tmp); err != nil {
				return out, err
			}
			if err := os.Rename(tmp, dst); err != nil {
				return out, err
			}
		case tar.TypeReg:
			if err := writeFile(dst, tr, os.FileMode(hdr.Mode).Perm(), hdr); err != nil {
				return out, fmt.Errorf("extract %s: %w", name, err)
			}
			out = append(out, Entry{Name: name, Size: hdr.Size})
		}
	}
}

func writeFile(dst string, r io.Reader, mode os.FileMode, hdr *tar.Header) error {
	f, err := os.CreateTemp(filepath.Dir(dst), ".simswarm-*")
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Chmod(mode | 0o200); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	_ = os.Chtimes(f.Name(), hdr.ModTime, hdr.ModTime)
	return os.Rename(f.Name(), dst)
}

// Clean validates a slash path from an archive or a worker: relative, no
// "..", no empty name.
func Clean(name string) (string, error) {
	c := path.Clean(name)
	if name == "" || c == "." || path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("unsafe path %q in archive", name)
	}
	return c, nil
}

// noLinkInPath refuses a name whose parent directories pass through a
// symlink: an archive could otherwise plant a link and write through it.
func noLinkInPath(dir, name string) error {
	parts := strings.Split(name, "/")
	p := dir
	for _, part := range parts[:len(parts)-1] {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // MkdirAll creates the rest as plain directories
		}
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("unsafe path %q in archive: %s is a symlink", name, part)
		}
	}
	return nil
}
