// Package layout lays out, on a builder or a runner, the projects a
// project uses beside it: each one's snapshot and artifact at the place
// it has relative to the others on the user's disk. Builders and runners
// share it, so a tree looks the same wherever it is built or run.
package layout

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/treestore"
)

// Place returns dir/l.Place (dir itself without a layout), refusing a
// place that leaves dir.
func Place(dir string, l *simswarm.Layout) (string, error) {
	if l == nil || l.Place == "" || l.Place == "." {
		return dir, nil
	}
	return sub(dir, l.Place)
}

func sub(dir, rel string) (string, error) {
	clean := path.Clean(rel)
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("layout: place %q leaves the tree", rel)
	}
	return filepath.Join(dir, filepath.FromSlash(clean)), nil
}

// usedMark records, in a used project's directory, which snapshot and
// artifact were laid there, so a workspace that already holds them is
// left alone: unchanged files keep their mtimes, and make does not relink
// the project that uses them.
const usedMark = ".simswarm-used.json"

// Uses lays every project l uses into dir: its snapshot (incrementally, as
// snapshot.Materialize does) with its artifact unpacked over it. A used
// project already laid out from the same snapshot and artifact is kept.
// progress, when set, is told about each project laid out.
func Uses(ctx context.Context, st treestore.Store, dir string, l *simswarm.Layout, progress func(u simswarm.Use, files int, bytes int64)) error {
	if l == nil {
		return nil
	}
	for _, u := range l.Uses {
		d, err := sub(dir, u.Dir)
		if err != nil {
			return err
		}
		want, _ := json.Marshal(struct{ Snapshot, Artifact string }{u.Snapshot, u.Artifact})
		if have, err := os.ReadFile(filepath.Join(d, usedMark)); err == nil && string(have) == string(want) {
			continue
		}
		_ = os.Remove(filepath.Join(d, usedMark))
		man, err := st.Manifest(ctx, u.Snapshot)
		if err != nil {
			return fmt.Errorf("%s: %w", u.Project, err)
		}
		if err := st.Materialize(ctx, d, man); err != nil {
			return fmt.Errorf("lay out %s at %s: %w", u.Project, u.Dir, err)
		}
		n, err := st.Unpack(ctx, u.Artifact, d)
		if err != nil {
			return fmt.Errorf("lay out %s at %s: %w", u.Project, u.Dir, err)
		}
		if err := os.WriteFile(filepath.Join(d, usedMark), want, 0o644); err != nil {
			return err
		}
		if progress != nil {
			progress(u, len(man.Entries), n)
		}
	}
	return nil
}

// Marker names the file Uses keeps in each used project's directory; a
// build's outputs leave it out.
func Marker() string { return usedMark }
