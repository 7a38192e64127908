package runner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/archive"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/snapshot"
	"golang.org/x/sys/unix"
)

// treeCache materialises each (snapshot, artifact) pair once per host: the
// first slot to ask fetches, the others wait for it; a file lock extends that
// to several runner processes sharing the cache directory.
type treeCache struct {
	dir string
	eng *engine.Engine
	log *slog.Logger

	mu    sync.Mutex
	trees map[string]*tree
}

type tree struct {
	once sync.Once
	path string
	err  error
}

const readyMark = ".simswarm-ready"

// get returns the directory holding the snapshot with the artifact laid over it.
func (c *treeCache) get(ctx context.Context, snap, art string) (string, error) {
	key := simswarm.Short(snap) + "-" + simswarm.Short(art)
	c.mu.Lock()
	if c.trees == nil {
		c.trees = map[string]*tree{}
	}
	t := c.trees[key]
	if t == nil {
		t = &tree{path: filepath.Join(c.dir, "trees", key)}
		c.trees[key] = t
	}
	c.mu.Unlock()
	t.once.Do(func() { t.err = c.materialise(ctx, t.path, snap, art) })
	if t.err != nil {
		// Let a later job try again: the failure may have been passing.
		c.mu.Lock()
		if c.trees[key] == t {
			delete(c.trees, key)
		}
		c.mu.Unlock()
	}
	return t.path, t.err
}

func (c *treeCache) materialise(ctx context.Context, dir, snap, art string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(dir+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("tree lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("tree lock: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, readyMark)); err == nil {
		return nil
	}
	raw, err := c.eng.GetBytes(ctx, engine.SnapshotObject(snap))
	if err != nil {
		return fmt.Errorf("fetch snapshot %s: %w", simswarm.Short(snap), err)
	}
	man, err := snapshot.Decode(raw)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", simswarm.Short(snap), err)
	}
	fetch := func(ctx context.Context, hash string, w io.Writer) error {
		return c.eng.GetObject(ctx, engine.FileObject(hash), w)
	}
	if err := snapshot.Materialize(ctx, dir, man, fetch); err != nil {
		return fmt.Errorf("materialise snapshot %s: %w", simswarm.Short(snap), err)
	}
	obj, err := c.eng.Blobs.Get(ctx, engine.ArtifactObject(art))
	if err != nil {
		return fmt.Errorf("fetch artifact %s: %w", simswarm.Short(art), err)
	}
	entries, err := archive.Unpack(obj, dir)
	obj.Close()
	if err != nil {
		return fmt.Errorf("unpack artifact %s: %w", simswarm.Short(art), err)
	}
	var bytes int64
	for _, e := range entries {
		bytes += e.Size
	}
	c.log.Info("tree ready", "snapshot", simswarm.Short(snap), "artifact", simswarm.Short(art), "files", len(man.Entries), "artifact_bytes", bytes)
	return os.WriteFile(filepath.Join(dir, readyMark), nil, 0o644)
}
