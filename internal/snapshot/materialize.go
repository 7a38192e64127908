package snapshot

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/simswarm/simswarm/internal/fserr"
	"golang.org/x/sync/errgroup"
)

// Fetch writes the blob with the given hash to w.
type Fetch func(ctx context.Context, hash string, w io.Writer) error

// StateFile is the name, inside a materialized directory, of the record of
// what Materialize last wrote there. A manifest may not contain it.
const StateFile = ".simswarm-tree.json"

const stateFormat = "simswarm-tree-1"

// treeState is the content of StateFile.
type treeState struct {
	Format string              `json:"format"`
	Key    string              `json:"key,omitempty"` // key of the last manifest materialized completely
	Files  map[string]stateRec `json:"files"`
}

// stateRec is one file as Materialize left it: what it should contain and
// the size and mtime it had right after being written, which is how a later
// call tells "still ours, untouched" from "changed by someone".
type stateRec struct {
	Mode  string `json:"m"`
	Hash  string `json:"h,omitempty"`
	Link  string `json:"l,omitempty"`
	Size  int64  `json:"s,omitempty"`
	MTime int64  `json:"t,omitempty"` // ns
}

// Materialize makes dir hold exactly the manifest's files, incrementally, for
// a persistent build workspace or a run tree.
//
// Files already matching (per the state file dir/.simswarm-tree.json, whose
// recorded size and mtime must still match the disk) are left untouched, so
// their mtimes stay and make stays incremental; a listed file without a record
// (first run into an existing directory, lost state) is kept if its content
// hashes right. Everything else the manifest lists is rewritten atomically
// (temp file + rename) with mode 0644 or 0755. Files of the previous manifest
// missing from this one are removed, along with directories this leaves
// empty; files never part of a manifest (build outputs) are left alone.
//
// Every fetched blob is checked against the entry's sha256 and size; a
// mismatch is an error naming the path. Entries that would escape dir (".."
// or absolute paths, or a path through a symlink, whether the symlink comes
// from the manifest or is already in dir) are refused. Fetch is called from
// several goroutines at once.
func Materialize(ctx context.Context, dir string, m *Manifest, fetch Fetch) (err error) {
	mt, err := openTree(dir, m)
	if err != nil {
		return err
	}
	defer mt.close()
	mt.fetch = fetch
	// The state is saved even after a failure, recording what was done, so
	// the next call neither rewrites finished files nor forgets files it
	// must remove later.
	complete := false
	defer func() {
		key := ""
		if complete {
			key = m.Key()
		}
		if serr := mt.saveState(key); serr != nil && err == nil {
			err = serr
		}
	}()
	if err := mt.removeOld(ctx, m); err != nil {
		return err
	}
	if err := mt.writeAll(ctx, m.Entries); err != nil {
		return err
	}
	complete = true
	return nil
}

// openTree checks m and opens dir with its state for materialising m.
func openTree(dir string, m *Manifest) (*materializer, error) {
	if m == nil {
		return nil, errors.New("snapshot: materialize: nil manifest")
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	for _, e := range m.Entries {
		if e.Path == StateFile {
			return nil, fmt.Errorf("snapshot: manifest entry %q: the name is reserved for Materialize's state file", e.Path)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("snapshot: materialize: %w", err)
	}
	// All file operations go through os.Root, which refuses to leave dir even
	// if a symlink appears under our feet; the explicit parent checks below
	// additionally refuse symlinks that stay inside dir.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("snapshot: materialize: %w", err)
	}
	return &materializer{root: root, dir: dir, files: loadState(root)}, nil
}

// removeOld removes the files of the previous manifest that m lacks. It
// comes before any write: a file of the old tree may stand where the new
// tree needs a directory. Deepest paths first, so emptied directories can go.
func (mt *materializer) removeOld(ctx context.Context, m *Manifest) error {
	want := make(map[string]bool, len(m.Entries))
	for _, e := range m.Entries {
		want[e.Path] = true
	}
	var gone []string
	for p := range mt.files {
		if !want[p] {
			gone = append(gone, p)
		}
	}
	slices.SortFunc(gone, func(a, b string) int { return strings.Compare(b, a) })
	for _, p := range gone {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := mt.remove(p); err != nil {
			return err
		}
	}
	return nil
}

type materializer struct {
	root  *os.Root
	dir   string
	fetch Fetch

	mu    sync.Mutex
	files map[string]stateRec // guarded by mu

	dirsOK sync.Map // directory path -> true once checked to be a real directory
	tmpSeq atomic.Int64
	subs   sync.Map // directory path -> *os.Root (dirRoot)
	nsubs  atomic.Int32
}

func (mt *materializer) setRec(p string, r stateRec) {
	mt.mu.Lock()
	mt.files[p] = r
	mt.mu.Unlock()
}

func (mt *materializer) dropRec(p string) {
	mt.mu.Lock()
	delete(mt.files, p)
	mt.mu.Unlock()
}

// loadState reads the state file; a missing or corrupt one means "nothing is
// known": listed files are then verified by hashing, and nothing is removed.
func loadState(root *os.Root) map[string]stateRec {
	b, err := root.ReadFile(StateFile)
	if err != nil {
		return map[string]stateRec{}
	}
	var st treeState
	if json.Unmarshal(b, &st) != nil || st.Format != stateFormat {
		return map[string]stateRec{}
	}
	for p, r := range st.Files {
		// A record with a bad path could make us remove the wrong file.
		if checkPath(p) != nil || p == StateFile || (r.Mode != ModeFile && r.Mode != ModeExec && r.Mode != ModeSymlink) {
			return map[string]stateRec{}
		}
	}
	if st.Files == nil {
		st.Files = map[string]stateRec{}
	}
	return st.Files
}

func (mt *materializer) saveState(key string) error {
	mt.mu.Lock()
	b, err := json.Marshal(treeState{Format: stateFormat, Key: key, Files: mt.files})
	mt.mu.Unlock()
	if err != nil {
		return fmt.Errorf("snapshot: encoding tree state: %w", err)
	}
	tmp := mt.tmpName(".")
	if err := mt.root.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("snapshot: writing %s in %s: %w", StateFile, mt.dir, fserr.WithoutPath(err))
	}
	if err := mt.root.Rename(tmp, StateFile); err != nil {
		mt.root.Remove(tmp)
		return fmt.Errorf("snapshot: writing %s in %s: %w", StateFile, mt.dir, fserr.WithoutPath(err))
	}
	return nil
}

// tmpName returns a fresh temporary name in directory d (relative to dir).
// The temp file lives beside its target so the final rename is atomic.
func (mt *materializer) tmpName(d string) string {
	name := ".simswarm-tmp-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(mt.tmpSeq.Add(1), 10)
	return path.Join(d, name)
}

// checkParents makes sure every existing directory above p is a real
// directory, not a symlink (writing through it could land elsewhere in the
// tree or outside it) and not a file. Missing directories are fine: they
// are created later.
func (mt *materializer) checkParents(p string) error {
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		d := p[:i]
		if _, ok := mt.dirsOK.Load(d); ok {
			continue
		}
		fi, err := mt.root.Lstat(d)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("snapshot: materialize %s: %w", p, fserr.WithoutPath(err))
		}
		if fi.Mode().Type() == fs.ModeSymlink {
			return fmt.Errorf("snapshot: materialize %s: refusing to write through symlink %s", p, d)
		}
		if !fi.IsDir() {
			return fmt.Errorf("snapshot: materialize %s: %s is in the way and is not a directory", p, d)
		}
		mt.dirsOK.Store(d, true)
	}
	return nil
}

// remove deletes a file of the previous manifest and then the directories
// above it that this leaves empty.
func (mt *materializer) remove(p string) error {
	if mt.checkParents(p) != nil {
		// Its directory was replaced by something else: the file we wrote
		// is no longer there to remove.
		mt.dropRec(p)
		return nil
	}
	fi, err := mt.root.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("snapshot: materialize: removing %s: %w", p, fserr.WithoutPath(err))
	case fi.IsDir():
		// Someone put a directory there; its contents are not ours.
	default:
		if err := mt.root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("snapshot: materialize: removing %s: %w", p, fserr.WithoutPath(err))
		}
	}
	mt.dropRec(p)
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if mt.root.Remove(d) != nil {
			break // not empty (or gone): keep it and everything above
		}
		mt.dirsOK.Delete(d)
	}
	return nil
}

// writeAll brings every entry up to date with a few concurrent workers:
// fetching is mostly waiting on the store.
func (mt *materializer) writeAll(ctx context.Context, entries []Entry) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(min(max(4, runtime.NumCPU()), 16))
	for i := range entries {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return mt.writeOne(gctx, &entries[i]) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

func perm(mode string) fs.FileMode {
	if mode == ModeExec {
		return 0o755
	}
	return 0o644
}

// writeOne makes one entry right, leaving it alone when it already is.
func (mt *materializer) writeOne(ctx context.Context, e *Entry) error {
	need, err := mt.settle(e)
	if err != nil || !need {
		return err
	}
	_, err = mt.writeFile(e, func(w io.Writer) error { return mt.fetch(ctx, e.Hash, w) })
	return err
}

// settle makes e right where that takes no content (a symlink; a file that
// already holds it, whose executable bit at most is off) and reports
// whether e's content must still be written.
func (mt *materializer) settle(e *Entry) (bool, error) {
	if err := mt.checkParents(e.Path); err != nil {
		return false, err
	}
	fi, err := mt.root.Lstat(e.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("snapshot: materialize %s: %w", e.Path, fserr.WithoutPath(err))
	}
	exists := err == nil
	if exists && fi.IsDir() {
		return false, fmt.Errorf("snapshot: materialize %s: a directory is in the way", e.Path)
	}

	if e.Mode == ModeSymlink {
		if exists && fi.Mode().Type() == fs.ModeSymlink {
			if target, err := mt.root.Readlink(e.Path); err == nil && target == e.Link {
				mt.setRec(e.Path, stateRec{Mode: ModeSymlink, Link: e.Link})
				return false, nil
			}
		}
		return false, mt.writeSymlink(e)
	}

	if exists && fi.Mode().IsRegular() && mt.upToDate(e, fi) {
		// Only the executable bit may be off; chmod keeps the mtime.
		if (fi.Mode().Perm()&0o100 != 0) != (e.Mode == ModeExec) {
			if err := mt.root.Chmod(e.Path, perm(e.Mode)); err != nil {
				return false, fmt.Errorf("snapshot: materialize %s: %w", e.Path, fserr.WithoutPath(err))
			}
		}
		mt.setRec(e.Path, stateRec{Mode: e.Mode, Hash: e.Hash, Size: fi.Size(), MTime: fi.ModTime().UnixNano()})
		return false, nil
	}
	return true, nil
}

// upToDate reports whether the regular file fi at e.Path already holds e's
// content.
func (mt *materializer) upToDate(e *Entry, fi fs.FileInfo) bool {
	mt.mu.Lock()
	rec, ok := mt.files[e.Path]
	mt.mu.Unlock()
	if ok {
		// Written by us: trust it while size and mtime are what we left.
		// Different size or mtime means someone changed it: rewrite.
		return rec.Hash == e.Hash && rec.Size == fi.Size() && rec.MTime == fi.ModTime().UnixNano()
	}
	// Never recorded (first materialization into an existing directory, or
	// the state file was lost): keep the file, and its mtime, if its content
	// is already right.
	if fi.Size() != e.Size {
		return false
	}
	f, err := mt.root.Open(e.Path)
	if err != nil {
		return false
	}
	defer f.Close()
	sum, _, err := hashReader(f, make([]byte, 64<<10))
	return err == nil && hex.EncodeToString(sum[:]) == e.Hash
}

func (mt *materializer) mkdirs(p string) error {
	if d := path.Dir(p); d != "." {
		if err := mt.root.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("snapshot: materialize %s: %w", p, fserr.WithoutPath(err))
		}
	}
	return nil
}

func (mt *materializer) writeSymlink(e *Entry) error {
	if err := mt.mkdirs(e.Path); err != nil {
		return err
	}
	tmp := mt.tmpName(path.Dir(e.Path))
	if err := mt.root.Symlink(e.Link, tmp); err != nil {
		return fmt.Errorf("snapshot: materialize %s: %w", e.Path, fserr.WithoutPath(err))
	}
	if err := mt.root.Rename(tmp, e.Path); err != nil {
		mt.root.Remove(tmp)
		return fmt.Errorf("snapshot: materialize %s: %w", e.Path, fserr.WithoutPath(err))
	}
	mt.setRec(e.Path, stateRec{Mode: ModeSymlink, Link: e.Link})
	return nil
}

// errBlobTooLong stops a fetch that delivers more bytes than the entry's size.
var errBlobTooLong = errors.New("blob longer than the manifest says")

// verifyWriter hashes and counts what Fetch writes, refusing to go past the
// expected size so a wrong or hostile blob cannot fill the disk.
type verifyWriter struct {
	w     io.Writer
	h     hash.Hash
	n     int64
	limit int64
	over  bool
}

func (v *verifyWriter) Write(p []byte) (int, error) {
	if v.n+int64(len(p)) > v.limit {
		v.over = true
		return 0, errBlobTooLong
	}
	n, err := v.w.Write(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	return n, err
}

// CorruptError is a blob whose content is not what the manifest says: the
// file it was meant for is not written. A caller that took the blob from a
// cache of its own drops it there and fetches it again.
type CorruptError struct {
	Path, Hash string
	detail     string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("snapshot: materialize %s: blob %s %s", e.Path, e.Hash, e.detail)
}

// writeFile writes e's content, which fill writes to the writer it is
// given, under a temporary name, and renames it into place only once the
// content proved to be e's. It returns the file as written.
func (mt *materializer) writeFile(e *Entry, fill func(io.Writer) error) (_ fs.FileInfo, err error) {
	dr, release, err := mt.dirRoot(path.Dir(e.Path))
	if err != nil {
		return nil, err
	}
	defer release()
	base := path.Base(e.Path)
	tmp := mt.tmpName(".")
	f, err := dr.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm(e.Mode))
	if err != nil {
		return nil, fmt.Errorf("snapshot: materialize %s: %w", e.Path, fserr.WithoutPath(err))
	}
	defer func() {
		if err != nil {
			f.Close()
			dr.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 256<<10)
	v := &verifyWriter{w: bw, h: sha256.New(), limit: e.Size}
	if ferr := fill(v); ferr != nil && !v.over {
		return nil, fmt.Errorf("snapshot: materialize %s: fetching blob %s: %w", e.Path, e.Hash, ferr)
	}
	if got := hex.EncodeToString(v.h.Sum(nil)); v.over || got != e.Hash || v.n != e.Size {
		if v.over {
			return nil, &CorruptError{e.Path, e.Hash, fmt.Sprintf("is longer than the %d bytes the manifest says", e.Size)}
		}
		return nil, &CorruptError{e.Path, e.Hash, fmt.Sprintf("is corrupt: got %d bytes with sha256 %s, want %d bytes", v.n, got, e.Size)}
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("snapshot: materialize %s: %w", e.Path, fserr.WithoutPath(err))
	}
	// The umask may have narrowed the mode given to OpenFile.
	if err := f.Chmod(perm(e.Mode)); err != nil {
		return nil, fmt.Errorf("snapshot: materialize %s: %w", e.Path, fserr.WithoutPath(err))
	}
	// Size and mtime are final once written: neither close nor rename
	// changes them.
	fi, err := f.Stat()
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot: materialize %s: %w", e.Path, fserr.WithoutPath(err))
	}
	if err := dr.Rename(tmp, base); err != nil {
		return nil, fmt.Errorf("snapshot: materialize %s: %w", e.Path, fserr.WithoutPath(err))
	}
	mt.setRec(e.Path, stateRec{Mode: e.Mode, Hash: e.Hash, Size: fi.Size(), MTime: fi.ModTime().UnixNano()})
	return fi, nil
}

// maxDirRoots bounds the directories a materializer keeps open.
const maxDirRoots = 256

// dirRoot returns a root on directory d of the tree, creating it: a
// file's writes then name it by its last component alone, where each
// operation through the tree's root would walk every directory above it
// again (a syscall each way per component, for each of a file's five
// operations). Up to maxDirRoots stay open for the next file there.
func (mt *materializer) dirRoot(d string) (*os.Root, func(), error) {
	if d == "." {
		return mt.root, func() {}, nil
	}
	if r, ok := mt.subs.Load(d); ok {
		return r.(*os.Root), func() {}, nil
	}
	if err := mt.root.MkdirAll(d, 0o755); err != nil {
		return nil, nil, fmt.Errorf("snapshot: materialize %s: %w", d, fserr.WithoutPath(err))
	}
	r, err := mt.root.OpenRoot(d)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot: materialize %s: %w", d, fserr.WithoutPath(err))
	}
	if mt.nsubs.Add(1) > maxDirRoots {
		mt.nsubs.Add(-1)
		return r, func() { r.Close() }, nil
	}
	if old, loaded := mt.subs.LoadOrStore(d, r); loaded {
		mt.nsubs.Add(-1)
		r.Close()
		r = old.(*os.Root)
	}
	return r, func() {}, nil
}

// empty reports whether the tree's directory holds nothing at all.
func (mt *materializer) empty() bool {
	f, err := mt.root.Open(".")
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	return err == io.EOF
}

// close releases the tree and the directories kept open.
func (mt *materializer) close() {
	mt.subs.Range(func(_, r any) bool {
		r.(*os.Root).Close()
		return true
	})
	mt.root.Close()
}
