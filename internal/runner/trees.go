package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/simswarm/simswarm"

	"github.com/simswarm/simswarm/internal/layout"
	"github.com/simswarm/simswarm/internal/snapshot"
	"github.com/simswarm/simswarm/internal/treestore"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// treeCache materialises each (snapshot, artifact) pair once per host: the
// first slot to ask fetches, the others wait for it; a file lock extends that
// to several runner processes sharing the cache directory. Trees in use are
// held with a shared lock, so that eviction, which takes it exclusively,
// never removes a tree under a running simulation.
type treeCache struct {
	dir   string
	store treestore.Store
	log   *slog.Logger
	max   int64 // bytes; 0: no bound

	mu    sync.Mutex
	trees map[string]*tree
}

type tree struct {
	once sync.Once
	path string
	err  error
}

const readyMark = ".simswarm-ready"

// get returns the directory holding the snapshot with the artifact laid
// over it, and a release to call when the process using it has ended.
//
// With a layout (a project that uses others) the tree holds every project
// at its place; the artifact's key covers the projects it was built with,
// so the tree's key stays (snapshot, artifact).
func (c *treeCache) get(ctx context.Context, snap, art string, l *simswarm.Layout) (string, func(), error) {
	key := simswarm.Short(snap) + "-" + simswarm.Short(art)
	// A tree another runner process evicted since we last used it is
	// materialised again; three rounds are plenty for that race.
	for range 3 {
		t := c.entry(key)
		t.once.Do(func() { t.err = c.materialise(ctx, t.path, snap, art, l) })
		if t.err != nil {
			c.forget(key, t) // the failure may have been passing
			return "", nil, t.err
		}
		use, err := os.OpenFile(t.path+".use", os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return "", nil, fmt.Errorf("tree lock: %w", err)
		}
		if err := unix.Flock(int(use.Fd()), unix.LOCK_SH); err != nil {
			use.Close()
			return "", nil, fmt.Errorf("tree lock: %w", err)
		}
		ready := filepath.Join(t.path, readyMark)
		if _, err := os.Stat(ready); err == nil {
			now := time.Now()
			_ = os.Chtimes(ready, now, now) // least recently used goes first
			return t.path, func() { use.Close() }, nil
		}
		use.Close()
		c.forget(key, t)
	}
	return "", nil, fmt.Errorf("tree %s keeps being evicted: the cache bound is too small for the runs in progress", key)
}

func (c *treeCache) entry(key string) *tree {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.trees == nil {
		c.trees = map[string]*tree{}
	}
	t := c.trees[key]
	if t == nil {
		t = &tree{path: filepath.Join(c.dir, "trees", key)}
		c.trees[key] = t
	}
	return t
}

func (c *treeCache) forget(key string, t *tree) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.trees[key] == t {
		delete(c.trees, key)
	}
}

// evict removes least recently used trees nobody uses until the cache fits
// its bound again.
func (c *treeCache) evict(keep string) {
	if c.max <= 0 {
		return
	}
	type entry struct {
		path string
		used time.Time
		size int64
	}
	var all []entry
	var total int64
	dirs, _ := os.ReadDir(filepath.Join(c.dir, "trees"))
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		p := filepath.Join(c.dir, "trees", d.Name())
		fi, err := os.Stat(filepath.Join(p, readyMark))
		if err != nil {
			continue
		}
		e := entry{path: p, used: fi.ModTime(), size: dirSize(p)}
		total += e.size
		if p != keep {
			all = append(all, e)
		}
	}
	sort.Slice(all, func(a, b int) bool { return all[a].used.Before(all[b].used) })
	for _, e := range all {
		if total <= c.max {
			return
		}
		use, err := os.OpenFile(e.path+".use", os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			continue
		}
		if unix.Flock(int(use.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			use.Close() // in use
			continue
		}
		_ = os.Remove(filepath.Join(e.path, readyMark))
		if err := os.RemoveAll(e.path); err == nil {
			total -= e.size
			c.log.Info("evicted tree", "tree", filepath.Base(e.path), "bytes", e.size)
		}
		use.Close()
	}
}

func (c *treeCache) materialise(ctx context.Context, tree, snap, art string, l *simswarm.Layout) error {
	dir, err := layout.Place(tree, l)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(tree), 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(tree+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("tree lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("tree lock: %w", err)
	}
	if _, err := os.Stat(filepath.Join(tree, readyMark)); err == nil {
		return nil
	}
	started := time.Now()
	if err := layout.Uses(ctx, c.store, tree, l, func(u simswarm.Use, files int, bytes int64) {
		c.log.Info("used project ready", "project", u.Project, "dir", u.Dir, "files", files, "artifact_bytes", bytes)
	}); err != nil {
		return err
	}
	man, err := c.store.Manifest(ctx, snap)
	if err != nil {
		return err
	}
	unlockBlobs, err := c.lockBlobs(unix.LOCK_SH)
	if err != nil {
		return err
	}
	got, err := c.layOut(ctx, snap, man, dir)
	unlockBlobs()
	if err != nil {
		return fmt.Errorf("materialise snapshot %s: %w", simswarm.Short(snap), err)
	}
	bytes, err := c.store.Unpack(ctx, art, dir)
	if err != nil {
		return err
	}
	c.log.Info("tree ready", "snapshot", simswarm.Short(snap), "artifact", simswarm.Short(art), "files", len(man.Entries),
		"source_bytes", man.TotalSize(), "fetched_files", got.files, "fetched_bytes", got.bytes, "pack", got.pack,
		"artifact_bytes", bytes, "seconds", time.Since(started).Seconds())
	if err := os.WriteFile(filepath.Join(tree, readyMark), nil, 0o644); err != nil {
		return err
	}
	c.evict(tree)
	c.pruneBlobs()
	return nil
}

// lockBlobs holds the blob cache: shared while a tree takes files from it,
// exclusively to empty it.
func (c *treeCache) lockBlobs(how int) (func(), error) {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(c.dir, "blobs.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("blob cache lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("blob cache lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// pruneBlobs empties the blob cache when it takes more than a quarter of
// the cache bound and no tree is being laid out from it: trees hold their
// own copies, so the cost is fetching again what a new snapshot shares
// with an old one.
func (c *treeCache) pruneBlobs() {
	if c.max <= 0 || dirSize(c.blobs().Dir) <= c.max/4 {
		return
	}
	unlock, err := c.lockBlobs(unix.LOCK_EX | unix.LOCK_NB)
	if err != nil {
		return // in use
	}
	defer unlock()
	if err := os.RemoveAll(c.blobs().Dir); err == nil {
		c.log.Info("emptied the blob cache")
	}
}

// blobs is the host's cache of source file contents, shared by its trees.
func (c *treeCache) blobs() snapshot.BlobCache {
	return snapshot.BlobCache{Dir: filepath.Join(c.dir, "blobs")}
}

type fetched struct {
	files int
	bytes int64
	pack  bool
}

// layOut lays the snapshot out in dir, fetching what the host's blob cache
// lacks: as the snapshot's pack (one stream) when most of a big tree is
// missing, which is every tree's first time on a host, written straight
// into the tree (and linked into the cache from there); else one file at a
// time into the cache, which is a rerun after a few files changed. What the
// pack did not bring comes from the cache.
func (c *treeCache) layOut(ctx context.Context, snap string, man *snapshot.Manifest, dir string) (fetched, error) {
	bc := c.blobs()
	missing, bytes := bc.Missing(man)
	got := fetched{files: len(missing), bytes: bytes}
	if len(missing) >= snapshot.PackMin && 2*len(missing) >= len(man.Blobs()) {
		obj, has, err := c.store.OpenPack(ctx, snap)
		if err != nil {
			return got, err
		}
		if has {
			c.log.Info("fetching sources", "snapshot", simswarm.Short(snap), "files", len(missing), "bytes", bytes, "pack", true)
			_, complete, err := snapshot.MaterializePack(ctx, dir, man, obj, bc)
			obj.Close()
			if err != nil {
				return got, fmt.Errorf("fetch snapshot %s: %w", simswarm.Short(snap), err)
			}
			got.pack = true
			if complete {
				return got, nil
			}
		}
	}
	for round := 0; ; round++ {
		if err := c.fetchFiles(ctx, snap, man, !got.pack || round > 0); err != nil {
			return got, err
		}
		err := snapshot.Materialize(ctx, dir, man, bc.Fetch)
		var bad *snapshot.CorruptError
		if err == nil || round == 2 || !errors.As(err, &bad) {
			return got, err
		}
		// The entry is the file of the tree it came with (MaterializePack),
		// and a run there wrote into it: fetch the content again.
		c.log.Warn("cached source content changed on disk, fetching it again", "snapshot", simswarm.Short(snap), "path", bad.Path, "hash", bad.Hash)
		if err := bc.Remove(bad.Hash); err != nil {
			return got, fmt.Errorf("blob cache: %w", err)
		}
		got.files++
	}
}

// fetchFiles brings the contents of a snapshot the blob cache lacks into
// it, one object each.
func (c *treeCache) fetchFiles(ctx context.Context, snap string, man *snapshot.Manifest, say bool) error {
	bc := c.blobs()
	missing, bytes := bc.Missing(man)
	if len(missing) == 0 {
		return nil
	}
	if say {
		c.log.Info("fetching sources", "snapshot", simswarm.Short(snap), "files", len(missing), "bytes", bytes, "pack", false)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, h := range missing {
		g.Go(func() error {
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(c.store.FetchFile(gctx, h, pw)) }()
			err := bc.Put(h, pr)
			pr.CloseWithError(err)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("fetch snapshot %s: %w", simswarm.Short(snap), err)
	}
	return nil
}
