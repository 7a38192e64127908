package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/simswarm/simswarm/internal/fserr"
	"golang.org/x/sync/errgroup"
)

// Options tune Scan.
type Options struct {
	// Ignore holds extra gitignore-style patterns (relative to root), from
	// the project's simswarm.toml. Supported: "*", "?", "[...]", "**",
	// leading "/" anchors, trailing "/" for directories only, "!" negation,
	// "#" comments. A malformed pattern is an error naming it.
	Ignore []string
	// Exclude holds paths (relative to root, slash form) left out entirely
	// with everything below them, e.g. the results directory. An absolute
	// path is an error; a path leading out of root ("../x") matches nothing.
	Exclude []string
	// HashCache optionally names a file caching hashes by (path, size,
	// mtime ns, inode, ctime ns) so unchanged big files are not re-read; a
	// missing or corrupt cache is ignored and rewritten. Use one file per
	// project: a cache written for another root is discarded. Limitation: a
	// hit trusts that the content is unchanged while all five values are; a
	// content change that keeps them all (possible only by resetting the
	// clock) goes unnoticed. Files changed within racyWindow of the scan are
	// never cached, since coarse timestamps could hide a rewrite there.
	HashCache string
	// Keep lists files (relative to root, slash form) that belong to the
	// snapshot whenever they exist, whatever git or the ignore patterns
	// say: a simulator's per-checkout state that its tools keep untracked
	// (INET's .oppfeaturestate). Exclude still wins.
	Keep []string
}

// hashHook, when set (by tests only), is called each time a file's content is
// actually read for hashing, i.e. on every hash-cache miss.
var hashHook func(rel string)

// Scan builds the manifest of root.
//
// Inside a git work tree it takes the files git tracks under root plus the
// untracked files git does not ignore (git ls-files --cached --others
// --exclude-standard), skipping tracked files deleted from disk. Submodules
// and untracked nested repositories are listed the same way with git inside
// them, so their own ignore rules apply and their build outputs stay out; an
// uninitialised submodule (no .git inside) contributes nothing.
//
// Outside git (or when no git binary is installed) it walks root, leaving out
// .git, out/, results/, *.o, *.d and .simswarm/; Options.Ignore patterns come
// after these defaults, so "!results/" re-includes a default.
//
// In both cases Options.Ignore and Options.Exclude are applied on top, and
// Options.Keep files are added back.
// Symlinks are recorded, never followed, even if they point outside root.
// Special files (sockets, FIFOs, devices) and empty directories are left out.
// An unreadable file or directory is an error naming it, as is a file name
// that is not valid UTF-8 (JSON could not carry it unchanged).
func Scan(ctx context.Context, root string, opts Options) (*Manifest, error) {
	start := time.Now()
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("snapshot: root %s: %w", root, err)
	}
	// Resolve a symlinked root once, so the walk descends into it and the hash
	// cache is tied to the real tree.
	abs, err = filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("snapshot: root %s: %w", root, err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("snapshot: root %s: %w", root, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("snapshot: root %s is not a directory", root)
	}
	excl, err := newExcluder(opts.Exclude)
	if err != nil {
		return nil, err
	}
	inGit, err := gitWorkTree(ctx, abs)
	if err != nil {
		return nil, err
	}

	var cands []string
	var ign *ignoreMatcher
	if inGit {
		if ign, err = compileIgnores(opts.Ignore); err != nil {
			return nil, err
		}
		cands, err = gitList(ctx, abs, "", excl, ign)
	} else {
		if ign, err = compileIgnores(defaultIgnores, opts.Ignore); err != nil {
			return nil, err
		}
		cands, err = walkTree(ctx, abs, excl, ign)
	}
	if err != nil {
		return nil, err
	}
	for _, k := range opts.Keep {
		if fi, err := os.Lstat(filepath.Join(abs, filepath.FromSlash(k))); err == nil && fi.Mode().IsRegular() && !excl.excluded(k) && !slices.Contains(cands, k) {
			cands = append(cands, k)
		}
	}

	var cache *hashCache
	if opts.HashCache != "" {
		cache = loadHashCache(opts.HashCache, abs, start)
	}
	var entries []Entry
	for len(cands) > 0 {
		found, dirs, err := statAndHash(ctx, abs, cands, cache)
		if err != nil {
			return nil, err
		}
		entries = append(entries, found...)
		cands = nil
		if !inGit {
			break // the walk lists no directories (one just created in their place is not followed)
		}
		// Git listings name directories for submodules (gitlinks) and
		// untracked nested repositories. List each with its own git.
		for _, d := range dirs {
			if _, err := os.Lstat(filepath.Join(abs, filepath.FromSlash(d), ".git")); err != nil {
				continue // uninitialised submodule, or a tracked file replaced by a directory (its files are listed as untracked)
			}
			more, err := gitList(ctx, abs, d, excl, ign)
			if err != nil {
				return nil, err
			}
			cands = append(cands, more...)
		}
	}
	slices.SortFunc(entries, compareEntries)
	entries = slices.CompactFunc(entries, func(a, b Entry) bool { return a.Path == b.Path })
	if cache != nil {
		if err := cache.save(); err != nil {
			return nil, err
		}
	}
	return &Manifest{Entries: entries}, nil
}

// excluder leaves out Options.Exclude paths and everything below them.
type excluder []string

func newExcluder(paths []string) (excluder, error) {
	var ex excluder
	for _, p := range paths {
		s := filepath.ToSlash(p)
		if path.IsAbs(s) || filepath.IsAbs(p) {
			return nil, fmt.Errorf("snapshot: exclude path %q must be relative to the root", p)
		}
		s = path.Clean(s)
		if s == "." {
			return nil, fmt.Errorf("snapshot: exclude path %q names the root itself", p)
		}
		if s == ".." || strings.HasPrefix(s, "../") {
			continue // outside the root (e.g. a result directory beside the project): nothing to leave out
		}
		ex = append(ex, s)
	}
	return ex, nil
}

func (ex excluder) excluded(rel string) bool {
	for _, x := range ex {
		if rel == x || (len(rel) > len(x) && rel[len(x)] == '/' && strings.HasPrefix(rel, x)) {
			return true
		}
	}
	return false
}

// gitEnv is the environment for git commands: variables that would point git
// at another repository (set, e.g., when simswarm runs from a git hook) are
// dropped, so git finds the repository from the directory alone.
func gitEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR",
			"GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_PREFIX":
			continue
		}
		env = append(env, kv)
	}
	return env
}

func runGit(ctx context.Context, dir string, args ...string) (stdout []byte, stderr string, err error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	cmd.Env = gitEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.Bytes(), strings.TrimSpace(errb.String()), err
}

// gitWorkTree reports whether dir lies in a git work tree. No git binary
// means "not in git" (the walk then applies the default ignores); any other
// git failure, such as git refusing a repository owned by another user, is
// an error rather than a silent switch to a different file set.
func gitWorkTree(ctx context.Context, dir string) (bool, error) {
	if _, err := exec.LookPath("git"); err != nil {
		return false, nil
	}
	out, stderr, err := runGit(ctx, dir, "rev-parse", "--is-inside-work-tree")
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if strings.Contains(stderr, "not a git repository") {
			return false, nil
		}
		return false, fmt.Errorf("snapshot: git rev-parse in %s: %s", dir, firstLine(stderr, err))
	}
	return strings.TrimSpace(string(out)) == "true", nil
}

// gitList lists the files git would snapshot in the work tree at root/sub
// ("" for root itself), as paths relative to root, filtered by Exclude and
// Ignore. Directories come back without a trailing slash; the stat pass
// recognises them.
func gitList(ctx context.Context, root, sub string, excl excluder, ign *ignoreMatcher) ([]string, error) {
	dir := filepath.Join(root, filepath.FromSlash(sub))
	out, stderr, err := runGit(ctx, dir, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", ".")
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("snapshot: git ls-files in %s: %s", dir, firstLine(stderr, err))
	}
	var list []string
	for _, name := range strings.Split(string(out), "\x00") {
		if name == "" {
			continue
		}
		// --others shows an untracked nested repository as "dir/".
		isDir := strings.HasSuffix(name, "/")
		rel := path.Join(sub, strings.TrimSuffix(name, "/"))
		if excl.excluded(rel) || ign.ignoredPath(rel, isDir) {
			continue
		}
		list = append(list, rel)
	}
	// Unmerged paths are listed once per conflict stage.
	slices.Sort(list)
	return slices.Compact(list), nil
}

func firstLine(stderr string, err error) string {
	if stderr == "" {
		return err.Error()
	}
	line, _, _ := strings.Cut(stderr, "\n")
	return line
}

// walkTree lists the non-directory entries under root that neither the
// ignore patterns nor Exclude leave out, pruning ignored directories.
func walkTree(ctx context.Context, root string, excl excluder, ign *ignoreMatcher) ([]string, error) {
	var list []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if p == root {
			if err != nil {
				return fmt.Errorf("snapshot: cannot read root %s: %w", root, fserr.WithoutPath(err))
			}
			return nil
		}
		rel := filepath.ToSlash(p[len(root)+1:])
		if err != nil {
			return fmt.Errorf("snapshot: cannot read %s: %w", rel, fserr.WithoutPath(err))
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		isDir := d.IsDir()
		if excl.excluded(rel) || ign.matchSegs(strings.Split(rel, "/"), isDir) {
			if isDir {
				return filepath.SkipDir
			}
			return nil
		}
		if !isDir {
			list = append(list, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return list, nil
}

// scanned is the outcome for one candidate path.
type scanned struct {
	entry Entry
	kind  int // one of the kind constants
}

const (
	kindSkip  = iota // vanished, special file
	kindEntry        // entry is valid
	kindDir          // a directory (submodule or nested repository)
)

// statAndHash classifies and hashes the candidate paths concurrently, one
// worker per CPU: hashing is CPU-bound for files in the page cache and
// I/O-bound otherwise, and both benefit.
func statAndHash(ctx context.Context, root string, cands []string, cache *hashCache) ([]Entry, []string, error) {
	results := make([]scanned, len(cands))
	// Work is handed out in batches of consecutive paths: a goroutine per
	// file would cost as much as the lstat of a cached file.
	const batch = 64
	bufs := sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.NumCPU())
	for start := 0; start < len(cands) && gctx.Err() == nil; start += batch {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err // another batch failed or the scan was cancelled
			}
			buf := bufs.Get().(*[]byte)
			defer bufs.Put(buf)
			for i := start; i < min(start+batch, len(cands)); i++ {
				r, err := scanOne(root, cands[i], cache, *buf)
				if err != nil {
					return err
				}
				results[i] = r
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	var entries []Entry
	var dirs []string
	for i, r := range results {
		switch r.kind {
		case kindEntry:
			entries = append(entries, r.entry)
		case kindDir:
			dirs = append(dirs, cands[i])
		}
	}
	return entries, dirs, nil
}

// scanOne turns one path into an entry.
func scanOne(root, rel string, cache *hashCache, buf []byte) (scanned, error) {
	full := filepath.Join(root, filepath.FromSlash(rel))
	fi, err := os.Lstat(full)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return scanned{}, nil // a tracked file deleted from disk, or gone since listing
		}
		return scanned{}, fmt.Errorf("snapshot: cannot stat %s: %w", rel, fserr.WithoutPath(err))
	}
	switch t := fi.Mode().Type(); {
	case t == fs.ModeSymlink:
		if err := checkPath(rel); err != nil {
			return scanned{}, fmt.Errorf("snapshot: cannot record %s: %w", rel, err)
		}
		target, err := os.Readlink(full)
		if err != nil {
			return scanned{}, fmt.Errorf("snapshot: cannot read symlink %s: %w", rel, fserr.WithoutPath(err))
		}
		if target == "" || strings.ContainsRune(target, 0) {
			return scanned{}, fmt.Errorf("snapshot: symlink %s has an unusable target %q", rel, target)
		}
		return scanned{kind: kindEntry, entry: Entry{Path: rel, Mode: ModeSymlink, Link: filepath.ToSlash(target)}}, nil
	case t == fs.ModeDir:
		return scanned{kind: kindDir}, nil
	case t != 0:
		return scanned{}, nil // socket, FIFO, device: never a source file
	}
	if err := checkPath(rel); err != nil {
		return scanned{}, fmt.Errorf("snapshot: cannot record %s: %w", rel, err)
	}

	// Git records a file as executable when the owner may execute it.
	mode := ModeFile
	if fi.Mode().Perm()&0o100 != 0 {
		mode = ModeExec
	}
	if cache != nil {
		// A hit needs no open: the file was read successfully when its hash
		// was cached, and anything that could make it unreadable since
		// (chmod, chown, ACLs) or change it (writes, utimes) changes its
		// ctime and so misses. One lstat per unchanged file is the whole cost.
		if sum, ok := cache.lookup(rel, stampOf(fi)); ok {
			return scanned{kind: kindEntry, entry: Entry{Path: rel, Mode: mode, Size: fi.Size(), Hash: hex.EncodeToString(sum[:])}}, nil
		}
	}

	f, err := os.OpenFile(full, openFlags, 0)
	if err != nil {
		return scanned{}, fmt.Errorf("snapshot: cannot read %s: %w", rel, fserr.WithoutPath(err))
	}
	defer f.Close()
	// Hash, and retry if the file changes while being read, so the manifest
	// never records a torn mix of two versions.
	for attempt := 0; ; attempt++ {
		before, err := f.Stat()
		if err != nil {
			return scanned{}, fmt.Errorf("snapshot: cannot stat %s: %w", rel, err)
		}
		if !before.Mode().IsRegular() {
			return scanned{}, nil // replaced by something else since Lstat
		}
		mode = ModeFile // the mode may have changed since Lstat, too
		if before.Mode().Perm()&0o100 != 0 {
			mode = ModeExec
		}
		stamp := stampOf(before)
		if hashHook != nil {
			hashHook(rel)
		}
		sum, n, err := hashReader(f, buf)
		if err != nil {
			return scanned{}, fmt.Errorf("snapshot: cannot read %s: %w", rel, fserr.WithoutPath(err))
		}
		after, err := f.Stat()
		if err != nil {
			return scanned{}, fmt.Errorf("snapshot: cannot stat %s: %w", rel, err)
		}
		if stampOf(after) == stamp && n == stamp.Size {
			if cache != nil {
				cache.store(rel, stamp, sum)
			}
			return scanned{kind: kindEntry, entry: Entry{Path: rel, Mode: mode, Size: n, Hash: hex.EncodeToString(sum[:])}}, nil
		}
		if attempt == 2 {
			return scanned{}, fmt.Errorf("snapshot: %s keeps changing while being read", rel)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return scanned{}, fmt.Errorf("snapshot: cannot read %s: %w", rel, fserr.WithoutPath(err))
		}
	}
}

// hashReader reads r to the end with buf (reused per worker, avoiding the
// allocation io.Copy would make per file).
func hashReader(r io.Reader, buf []byte) ([32]byte, int64, error) {
	h := sha256.New()
	var n int64
	for {
		k, err := r.Read(buf)
		if k > 0 {
			h.Write(buf[:k])
			n += int64(k)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return [32]byte{}, n, err
		}
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, n, nil
}
