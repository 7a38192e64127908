// Package atomicfile writes the files simswarm keeps between runs (run-time
// history, hash cache, provenance, suite outputs) so that a crash or a
// full disk (ENOSPC) in the middle leaves the previous complete state.
package atomicfile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile replaces name with data: a reader, a crash or a full disk sees
// the old file or the new one, never part of it. An existing file keeps
// its mode; a new one gets perm.
func WriteFile(name string, data []byte, perm os.FileMode) error {
	if st, err := os.Stat(name); err == nil {
		perm = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	// Renamed before its blocks are on disk, a crash could leave the new
	// name empty: the old content would be lost rather than kept.
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return err
	}
	ok = true
	return nil
}

// AppendLine appends line (which ends in a newline) to path, creating it,
// so that the file only ever grows by whole lines: a torn last line left
// by an earlier crash is cut off first, and an append that fails part way
// (ENOSPC) is cut back, leaving the file as it was.
func AppendLine(path string, line []byte, perm os.FileMode) error {
	if len(line) == 0 || line[len(line)-1] != '\n' {
		return fmt.Errorf("append to %s: a line must end in a newline", path)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, perm)
	if err != nil {
		return err
	}
	defer f.Close()
	end, err := wholeLines(f)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(line, end); err != nil {
		if terr := f.Truncate(end); terr != nil {
			return fmt.Errorf("%w (and cutting the partial line back: %v)", err, terr)
		}
		return err
	}
	return f.Close()
}

// wholeLines returns where the file's last complete line ends, cutting off
// a torn tail after it.
func wholeLines(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		start := max(0, end-int64(len(buf)))
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			whole := start + int64(i) + 1
			if whole < size {
				return whole, f.Truncate(whole)
			}
			return whole, nil
		}
		end = start
	}
	if size > 0 {
		return 0, f.Truncate(0)
	}
	return 0, nil
}
