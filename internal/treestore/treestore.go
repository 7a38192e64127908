// Package treestore is the one place that knows how trees live in the
// engine's object store: a snapshot is a manifest (stored last, so that its
// presence promises the rest), one object per file content, and for a big
// tree one pack of them all; a build's outputs are one artifact archive.
// Clients upload through it, builders and runners lay trees out through
// it, and gc asks it which objects a snapshot or an artifact keeps.
package treestore

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/archive"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/snapshot"
	"golang.org/x/sync/errgroup"
)

// Objects is what the tree store needs of the engine's object store
// (*engine.Engine has it).
type Objects interface {
	HasObject(ctx context.Context, name string) (bool, error)
	GetBytes(ctx context.Context, name string) ([]byte, error)
	GetObject(ctx context.Context, name string, w io.Writer) error
	OpenObject(ctx context.Context, name string) (io.ReadCloser, error)
	PutObject(ctx context.Context, name string, r io.Reader) error
	PutBytes(ctx context.Context, name string, b []byte) error
}

// Store reads and writes trees in an engine's object store.
type Store struct{ Objects }

// New is the tree store of an engine.
func New(o Objects) Store { return Store{o} }

// uploaders bounds the files uploaded at once.
const uploaders = 8

// Upload stores the tree at root, scanned as man, under man's key: the
// file contents the store lacks, a pack for a big tree, and the manifest
// last. stored is how many files it stored now; -1 when the store had the
// snapshot already.
func (s Store) Upload(ctx context.Context, root string, man *snapshot.Manifest) (stored int, err error) {
	key := man.Key()
	if has, err := s.HasObject(ctx, engine.SnapshotObject(key)); err != nil {
		return 0, err
	} else if has {
		return -1, nil
	}
	paths := map[string]string{}
	for _, e := range man.Entries {
		if e.Hash != "" {
			paths[e.Hash] = e.Path
		}
	}
	hashes := man.Blobs()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(uploaders)
	var put atomic.Int64
	for _, h := range hashes {
		g.Go(func() error {
			ok, err := s.putFile(gctx, h, filepath.Join(root, filepath.FromSlash(paths[h])))
			if ok {
				put.Add(1)
			}
			return err
		})
	}
	err = g.Wait()
	stored = int(put.Load())
	if err != nil {
		return stored, err
	}
	// A big tree also travels as one pack, so that a host without any of
	// it reads one stream instead of a file at a time.
	if len(hashes) >= snapshot.PackMin {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(snapshot.WritePack(pw, root, man)) }()
		err := s.PutObject(ctx, engine.PackObject(key), pr)
		pr.CloseWithError(err)
		if err != nil {
			return stored, fmt.Errorf("store its pack: %w", err)
		}
	}
	if err := s.PutBytes(ctx, engine.SnapshotObject(key), man.Encode()); err != nil {
		return stored, fmt.Errorf("store its manifest: %w", err)
	}
	return stored, nil
}

// putFile stores one file the store lacks; stored says it was stored now.
func (s Store) putFile(ctx context.Context, hash, path string) (stored bool, err error) {
	name := engine.FileObject(hash)
	if has, err := s.HasObject(ctx, name); err != nil || has {
		return false, err
	}
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	return true, s.PutObject(ctx, name, f)
}

// Manifest reads the manifest of snapshot key.
func (s Store) Manifest(ctx context.Context, key string) (*snapshot.Manifest, error) {
	raw, err := s.GetBytes(ctx, engine.SnapshotObject(key))
	if err != nil {
		return nil, fmt.Errorf("fetch snapshot %s: %w", simswarm.Short(key), err)
	}
	man, err := snapshot.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", simswarm.Short(key), err)
	}
	return man, nil
}

// FetchFile writes the content of a file of a snapshot, by its hash.
func (s Store) FetchFile(ctx context.Context, hash string, w io.Writer) error {
	return s.GetObject(ctx, engine.FileObject(hash), w)
}

// Materialize brings dir to the snapshot man incrementally, fetching each
// content it lacks one file at a time (snapshot.Materialize).
func (s Store) Materialize(ctx context.Context, dir string, man *snapshot.Manifest) error {
	return snapshot.Materialize(ctx, dir, man, s.FetchFile)
}

// OpenPack opens the pack of snapshot key; found is false for a tree too
// small to have one (or one gc took).
func (s Store) OpenPack(ctx context.Context, key string) (pack io.ReadCloser, found bool, err error) {
	if has, err := s.HasObject(ctx, engine.PackObject(key)); err != nil || !has {
		return nil, false, err
	}
	obj, err := s.OpenObject(ctx, engine.PackObject(key))
	if err != nil {
		return nil, false, fmt.Errorf("fetch the pack of snapshot %s: %w", simswarm.Short(key), err)
	}
	return obj, true, nil
}

// HasArtifact says whether the artifact art is stored.
func (s Store) HasArtifact(ctx context.Context, art string) (bool, error) {
	return s.HasObject(ctx, engine.ArtifactObject(art))
}

// PutArtifact stores a build's outputs, an archive read from r, as art.
func (s Store) PutArtifact(ctx context.Context, art string, r io.Reader) error {
	return s.PutObject(ctx, engine.ArtifactObject(art), r)
}

// Unpack fetches the artifact art and unpacks it into dir, returning its
// bytes.
func (s Store) Unpack(ctx context.Context, art, dir string) (int64, error) {
	obj, err := s.OpenObject(ctx, engine.ArtifactObject(art))
	if err != nil {
		return 0, fmt.Errorf("fetch artifact %s: %w", simswarm.Short(art), err)
	}
	defer obj.Close()
	entries, err := archive.Unpack(obj, dir)
	if err != nil {
		return 0, fmt.Errorf("unpack artifact %s: %w", simswarm.Short(art), err)
	}
	var n int64
	for _, e := range entries {
		n += e.Size
	}
	return n, nil
}

// Keep adds to keep the names of every object that snapshot key needs:
// its manifest, its pack and its files. A snapshot no longer stored adds
// its manifest's name alone.
func (s Store) Keep(ctx context.Context, key string, keep map[string]bool) error {
	keep[engine.SnapshotObject(key)] = true
	keep[engine.PackObject(key)] = true
	raw, err := s.GetBytes(ctx, engine.SnapshotObject(key))
	if err != nil {
		return nil // gone already: nothing more to keep for it
	}
	man, err := snapshot.Decode(raw)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", simswarm.Short(key), err)
	}
	for _, h := range man.Blobs() {
		keep[engine.FileObject(h)] = true
	}
	return nil
}

// KeepArtifact adds the name of artifact art to keep.
func KeepArtifact(art string, keep map[string]bool) { keep[engine.ArtifactObject(art)] = true }
