// Package safedir is the one way simswarm writes files that come from runs
// (result archives, inline result files, console output) into a directory
// the user owns, such as results/. A run is not trusted: whatever names it
// sends, nothing it sends may land outside the directory, follow or create
// a symlink there, or leave half of its files behind.
//
// Everything goes through an os.Root opened on the directory, so no name
// can resolve outside it even when a symlink appears under our feet; on top
// of that every existing directory on a file's way must be a real directory
// (os.Root would follow a symlink that stays inside), and files are first
// written into a private staging directory under names created exclusively
// (O_EXCL), then renamed into place as a set: all of a run's files, or none.
//
// Staging directories live in <dir>/.simswarm-scratch/, each beside a lock
// file held with flock while in use, so that the next process finds and
// removes those a killed one left behind (Sweep).
package safedir

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/simswarm/simswarm"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ScratchName is the directory inside a target that holds staging
// directories. A run may not write a file of that name.
const ScratchName = ".simswarm-scratch"

// Dir is a directory that files from runs are written into.
type Dir struct {
	root *os.Root
	path string
}

// Open opens dir, creating it if needed. The directory itself is the
// user's choice and may be anything, a symlink included; only what lies
// beneath it is guarded.
func Open(dir string) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, explain(err))
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, explain(err))
	}
	return &Dir{root: root, path: dir}, nil
}

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }

// Path is the directory as it was opened.
func (d *Dir) Path() string { return d.path }

// CheckName validates a slash path that a run sent: relative, without ".."
// or empty components, not inside the scratch directory. It returns the
// name cleaned.
func CheckName(name string) (string, error) {
	c := path.Clean(name)
	switch {
	case name == "" || c == "." || strings.ContainsRune(name, 0):
		return "", fmt.Errorf("unsafe path %q: empty", name)
	case path.IsAbs(name):
		return "", fmt.Errorf("unsafe path %q: absolute", name)
	case c == ".." || strings.HasPrefix(c, "../") || strings.Contains("/"+name+"/", "/../"):
		return "", fmt.Errorf("unsafe path %q: has a .. component", name)
	case c == ScratchName || strings.HasPrefix(c, ScratchName+"/"):
		return "", fmt.Errorf("unsafe path %q: simswarm's scratch directory", name)
	}
	return c, nil
}

// checkWay makes sure every existing directory above name is a real
// directory: a symlink there (even one that stays inside) or a file is
// refused. Missing directories are fine; they are created as directories.
func (d *Dir) checkWay(name string) error {
	for i := 0; i < len(name); i++ {
		if name[i] != '/' {
			continue
		}
		fi, err := d.root.Lstat(name[:i])
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, explain(err))
		}
		if fi.Mode().Type() == fs.ModeSymlink {
			return fmt.Errorf("unsafe path %q: %s is a symlink", name, name[:i])
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s: %s is in the way and is not a directory", name, name[:i])
		}
	}
	return nil
}

// OpenFile opens the regular file name under dir for reading, through no
// symlink at all: what a run left there cannot point a reader elsewhere.
func OpenFile(dir, name string) (*os.File, error) {
	c, err := CheckName(name)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	d := &Dir{root: root, path: dir}
	if err := d.checkWay(c); err != nil {
		return nil, err
	}
	f, err := root.OpenFile(c, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	return f, nil
}

// Stage is a private directory inside a Dir where one run's files are
// gathered before they land together (Commit) or not at all (Remove).
type Stage struct {
	d     *Dir
	own   bool     // d was opened for this stage alone (OpenStage)
	rel   string   // relative to d
	lock  *os.File // flock'd while the stage is in use
	moves []move   // the set: staged file -> destination
	dst   map[string]bool
	links map[string]bool // staged symlinks, which no later name may pass through
}

type move struct{ src, dst string }

// Stage creates a staging directory named after prefix (a campaign and run,
// for people who look) with a random suffix.
func (d *Dir) Stage(prefix string) (*Stage, error) {
	var last error
	// Another process may remove the empty scratch directory between our
	// MkdirAll and our create: try again then.
	for range 5 {
		if err := d.root.MkdirAll(ScratchName, 0o755); err != nil {
			return nil, fmt.Errorf("staging in %s: %w", d.path, explain(err))
		}
		rel := path.Join(ScratchName, sanitize(prefix)+"-"+randomSuffix())
		lock, err := d.root.OpenFile(rel+".lock", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			last = err
			continue
		}
		if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil || !sameFile(d.root, rel+".lock", lock) {
			// A Sweep took our fresh lock for a stale one.
			lock.Close()
			last = fmt.Errorf("lock %s: taken", rel)
			continue
		}
		if err := d.root.Mkdir(rel, 0o755); err != nil {
			d.root.Remove(rel + ".lock")
			lock.Close()
			last = err
			continue
		}
		return &Stage{d: d, rel: rel, lock: lock, dst: map[string]bool{}, links: map[string]bool{}}, nil
	}
	return nil, fmt.Errorf("staging in %s: %w", d.path, explain(last))
}

// Path is the staging directory's path, for a process to write into.
func (s *Stage) Path() string { return filepath.Join(s.d.path, filepath.FromSlash(s.rel)) }

func (s *Stage) claim(name string) (string, error) {
	c, err := CheckName(name)
	if err != nil {
		return "", err
	}
	if s.dst[c] {
		return "", fmt.Errorf("%s: given twice", name)
	}
	for i := 0; i < len(c); i++ {
		if c[i] == '/' && (s.links[c[:i]] || s.dst[c[:i]]) {
			return "", fmt.Errorf("unsafe path %q: %s is a file or symlink of the same set", name, c[:i])
		}
	}
	for d := range s.dst {
		if strings.HasPrefix(d, c+"/") {
			return "", fmt.Errorf("%s: a file of the same set lies beneath it", name)
		}
	}
	return c, nil
}

// Write adds a regular file to the set with r's content.
func (s *Stage) Write(name string, r io.Reader, mode fs.FileMode, mtime time.Time) (int64, error) {
	c, err := s.claim(name)
	if err != nil {
		return 0, err
	}
	src := path.Join(s.rel, "in", c)
	if err := s.d.root.MkdirAll(path.Dir(src), 0o755); err != nil {
		return 0, fmt.Errorf("write %s: %w", name, explain(err))
	}
	f, err := s.d.root.OpenFile(src, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode.Perm()|0o200)
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", name, explain(err))
	}
	n, err := io.Copy(f, r)
	if err == nil {
		// The umask may have narrowed the mode given to OpenFile.
		err = f.Chmod(mode.Perm() | 0o200)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("write %s in %s: %w", name, s.d.path, explain(err))
	}
	if !mtime.IsZero() {
		_ = s.d.root.Chtimes(src, mtime, mtime)
	}
	s.dst[c] = true
	s.moves = append(s.moves, move{src, c})
	return n, nil
}

// Symlink adds a symlink to the set. Only trees simswarm builds hold them
// (artifacts); results never do. The link is created, never followed.
func (s *Stage) Symlink(name, target string) error {
	c, err := s.claim(name)
	if err != nil {
		return err
	}
	src := path.Join(s.rel, "in", c)
	if err := s.d.root.MkdirAll(path.Dir(src), 0o755); err != nil {
		return fmt.Errorf("link %s: %w", name, explain(err))
	}
	if err := s.d.root.Symlink(target, src); err != nil {
		return fmt.Errorf("link %s: %w", name, explain(err))
	}
	s.dst[c] = true
	s.links[c] = true
	s.moves = append(s.moves, move{src, c})
	return nil
}

// Adopt adds to the set a file that a process wrote at src inside the
// stage (relative to Path), to land as name. It must be a regular file.
func (s *Stage) Adopt(src, name string) error {
	c, err := s.claim(name)
	if err != nil {
		return err
	}
	sc, err := CheckName(src)
	if err != nil {
		return err
	}
	full := path.Join(s.rel, sc)
	// The process may have planted links in its own directory too.
	sub := &Dir{root: s.d.root}
	if err := sub.checkWay(full); err != nil {
		return err
	}
	fi, err := s.d.root.Lstat(full)
	if err != nil {
		return fmt.Errorf("%s: %w", src, explain(err))
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", src)
	}
	s.dst[c] = true
	s.moves = append(s.moves, move{full, c})
	return nil
}

// Take adds to the set a regular file already in the directory, to land
// as name: it moves into the stage now, so that files trading names (runs
// renumbered when a campaign grew) never overwrite each other. A stage
// removed before its commit loses what it took.
func (s *Stage) Take(from, name string) error {
	c, err := s.claim(name)
	if err != nil {
		return err
	}
	fc, err := CheckName(from)
	if err != nil {
		return err
	}
	if err := s.d.checkWay(fc); err != nil {
		return err
	}
	fi, err := s.d.root.Lstat(fc)
	if err != nil {
		return fmt.Errorf("%s: %w", from, explain(err))
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", from)
	}
	src := path.Join(s.rel, "took", strconv.Itoa(len(s.moves)))
	if err := s.d.root.MkdirAll(path.Dir(src), 0o755); err != nil {
		return fmt.Errorf("take %s: %w", from, explain(err))
	}
	if err := s.d.root.Rename(fc, src); err != nil {
		return fmt.Errorf("take %s: %w", from, explain(err))
	}
	s.dst[c] = true
	s.moves = append(s.moves, move{src, c})
	return nil
}

// Names is the set, as it will land.
func (s *Stage) Names() []string {
	out := make([]string, len(s.moves))
	for i, m := range s.moves {
		out[i] = m.dst
	}
	return out
}

// Commit moves the set into place. Every destination is checked first; if
// a move still fails, the moves already made are undone and files they
// replaced are put back, so a refused set leaves the directory as it was.
// The set is empty afterwards, either way: the stage can gather another
// (the runs of one process, one after the other) until it is removed.
func (s *Stage) Commit() error {
	defer func() { s.moves, s.dst, s.links = nil, map[string]bool{}, map[string]bool{} }()
	for _, m := range s.moves {
		if err := s.d.checkWay(m.dst); err != nil {
			return err
		}
		if fi, err := s.d.root.Lstat(m.dst); err == nil && fi.IsDir() {
			return fmt.Errorf("%s: a directory is in the way", m.dst)
		}
	}
	type done struct {
		dst, old string // old: where the replaced file waits, "" if none
	}
	var made []done
	var dirs []string
	undo := func() {
		for i := len(made) - 1; i >= 0; i-- {
			if made[i].old != "" {
				_ = s.d.root.Rename(made[i].old, made[i].dst)
			} else {
				_ = s.d.root.Remove(made[i].dst)
			}
		}
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = s.d.root.Remove(dirs[i])
		}
	}
	for i, m := range s.moves {
		for _, dir := range missingDirs(s.d.root, m.dst) {
			if err := s.d.root.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				undo()
				return fmt.Errorf("%s: %w", m.dst, explain(err))
			}
			dirs = append(dirs, dir)
		}
		// Check again right before the move: a simulation of this host may
		// race us, and a link on the way now would be followed.
		if err := s.d.checkWay(m.dst); err != nil {
			undo()
			return err
		}
		old := ""
		if _, err := s.d.root.Lstat(m.dst); err == nil {
			old = path.Join(s.rel, "old", fmt.Sprint(i))
			if err := s.d.root.MkdirAll(path.Dir(old), 0o755); err != nil {
				undo()
				return fmt.Errorf("%s: %w", m.dst, explain(err))
			}
			if err := s.d.root.Rename(m.dst, old); err != nil {
				undo()
				return fmt.Errorf("%s: %w", m.dst, explain(err))
			}
		}
		if err := s.d.root.Rename(m.src, m.dst); err != nil {
			if old != "" {
				_ = s.d.root.Rename(old, m.dst)
			}
			undo()
			return fmt.Errorf("%s: %w", m.dst, explain(err))
		}
		made = append(made, done{m.dst, old})
	}
	return nil
}

// missingDirs lists the directories above name that do not exist yet,
// outermost first.
func missingDirs(root *os.Root, name string) []string {
	var out []string
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		if _, err := root.Lstat(d); err == nil {
			break
		}
		out = append([]string{d}, out...)
	}
	return out
}

// Remove deletes the stage with whatever is left in it, and the scratch
// directory once it is empty: the target should look as if we had never
// been there.
func (s *Stage) Remove() {
	if s.lock == nil {
		return
	}
	_ = s.d.root.RemoveAll(s.rel)
	_ = s.d.root.Remove(s.rel + ".lock")
	s.lock.Close()
	s.lock = nil
	_ = s.d.root.Remove(ScratchName) // fails while others use it
	if s.own {
		s.d.Close()
	}
}

// OpenStage opens dir (see Open) and a stage in it, for a caller that
// needs nothing else of dir; removing the stage closes dir.
func OpenStage(dir, prefix string) (*Stage, error) {
	d, err := Open(dir)
	if err != nil {
		return nil, err
	}
	st, err := d.Stage(prefix)
	if err != nil {
		d.Close()
		return nil, err
	}
	st.own = true
	return st, nil
}

// Sweep removes staging directories that no live process holds: those a
// killed process left behind. It returns how many it removed.
func (d *Dir) Sweep() (int, error) {
	f, err := d.root.Open(ScratchName)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sweep %s: %w", d.path, explain(err))
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if errors.Is(err, fs.ErrNotExist) {
		// Removed between the open and the read, by a stage that was the
		// last one in it (back-to-back campaigns: simswarm run --until).
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sweep %s: %w", d.path, explain(err))
	}
	locks := map[string]bool{}
	for _, n := range names {
		if strings.HasSuffix(n, ".lock") {
			locks[strings.TrimSuffix(n, ".lock")] = true
		}
	}
	removed := 0
	for _, n := range names {
		if strings.HasSuffix(n, ".lock") {
			continue
		}
		rel := path.Join(ScratchName, n)
		if locks[n] {
			lock, err := d.root.OpenFile(rel+".lock", os.O_RDWR, 0)
			if err != nil {
				continue
			}
			if unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil || !sameFile(d.root, rel+".lock", lock) {
				lock.Close() // in use
				continue
			}
			_ = d.root.RemoveAll(rel)
			_ = d.root.Remove(rel + ".lock")
			lock.Close()
		} else {
			// A stage's lock is made before and removed after its directory:
			// a directory without one is being removed, or was abandoned.
			_ = d.root.RemoveAll(rel)
		}
		removed++
	}
	// Locks whose directory is gone (a process killed between the two).
	for n := range locks {
		if _, err := d.root.Lstat(path.Join(ScratchName, n)); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		lock, err := d.root.OpenFile(path.Join(ScratchName, n)+".lock", os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil && sameFile(d.root, path.Join(ScratchName, n)+".lock", lock) {
			_ = d.root.Remove(path.Join(ScratchName, n) + ".lock")
		}
		lock.Close()
	}
	_ = d.root.Remove(ScratchName)
	return removed, nil
}

// sameFile reports whether name still is the file f has open.
func sameFile(root *os.Root, name string, f *os.File) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := root.Lstat(name)
	return err == nil && os.SameFile(a, b)
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sanitize keeps a prefix to one harmless path component.
func sanitize(s string) string {
	t := simswarm.Token(s)
	if len(t) > 64 {
		t = t[:64]
	}
	return t
}

// ErrDiskFull is what a write that found no space is, in words people know.
var ErrDiskFull = errors.New("disk full (no space left on device)")

// explain turns errors people misread into ones they do not: a full disk
// or quota says so.
func explain(err error) error {
	if err != nil && IsDiskFull(err) {
		var df *diskFull
		if !errors.As(err, &df) {
			return &diskFull{err}
		}
	}
	return err
}

type diskFull struct{ err error }

func (e *diskFull) Error() string        { return ErrDiskFull.Error() }
func (e *diskFull) Unwrap() error        { return e.err }
func (e *diskFull) Is(target error) bool { return target == ErrDiskFull }

// IsDiskFull reports whether err comes from a file system without space
// (or a quota exceeded).
func IsDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, ErrDiskFull)
}
