package campaign

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/archive"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/fserr"
	"github.com/simswarm/simswarm/internal/safedir"
)

// deliver writes a finished run's files into dir and then frees the
// store of them.
func (c *Client) deliver(ctx context.Context, dir string, full *simswarm.RunRecord) error {
	if err := c.write(ctx, dir, full); err != nil {
		return err
	}
	if c.Opt.KeepResults {
		return nil
	}
	if err := c.release(ctx, dir, full); err != nil {
		// The files are in place; the store keeps a copy until gc.
		slog.Warn("free the store of fetched results", "run", full.Run, "err", err)
	}
	return nil
}

// release frees the store of a run's results once they are in dir: the
// archive is deleted and the record keeps only where its files went
// (LocalDir), as the record of a run written in place does. A run whose
// files later go missing from dir then runs again, as such a run does; a
// campaign elsewhere that needs the same run runs it too.
func (c *Client) release(ctx context.Context, dir string, full *simswarm.RunRecord) error {
	inline := false
	for _, f := range full.Files {
		inline = inline || len(f.Data) > 0
	}
	if full.Object == "" && !inline {
		return nil
	}
	delivered := *full
	delivered.Object, delivered.LocalDir = "", dir
	delivered.Files = make([]simswarm.File, len(full.Files))
	for i, f := range full.Files {
		delivered.Files[i] = simswarm.File{Name: f.Name, Size: f.Size}
	}
	// Only over the outcome read: nothing points at the archive once it
	// goes.
	replaced, err := c.Eng.ReplaceRun(ctx, full.Key, full.Finished, &delivered)
	if err != nil || !replaced {
		return err
	}
	if full.Object != "" {
		return c.Eng.DeleteObject(ctx, full.Object)
	}
	return nil
}

// write lays a finished run's files into dir.
func (c *Client) write(ctx context.Context, dir string, rec *simswarm.RunRecord) error {
	return land(ctx, c.Eng, &c.stages, dir, rec)
}

// land lays a finished run's files into dir through safedir, wherever the
// record says they are (an archive in the store, inline in the record, or
// written in place on this host by an embedded runner): all of them or
// none, nothing outside dir, no symlink created or followed, never over a
// file another run of the campaign put there. It is the one way result
// files reach a user's disk. Its stage comes from stages and goes back
// there, emptied, for the next run.
func land(ctx context.Context, eng *engine.Engine, stages *safedir.Pool, dir string, rec *simswarm.RunRecord) (err error) {
	st, err := stages.Get(dir, fmt.Sprintf("%s-%d", rec.Campaign, rec.Run))
	if err != nil {
		return err
	}
	defer func() { stages.Put(st, err == nil) }()
	switch {
	case rec.Object != "":
		obj, err := eng.OpenObject(ctx, rec.Object)
		if err != nil {
			return err
		}
		_, err = archive.Extract(obj, st, false)
		obj.Close()
		if err != nil {
			return err
		}
	case rec.LocalDir != "" && !inline(rec):
		for _, f := range rec.Files {
			if err := copyIn(st, rec.LocalDir, f.Name); err != nil {
				return err
			}
		}
	default:
		for _, f := range rec.Files {
			if int64(len(f.Data)) != f.Size {
				return fmt.Errorf("result %s: record holds %d of %d bytes", f.Name, len(f.Data), f.Size)
			}
			if _, err := st.Write(f.Name, bytes.NewReader(f.Data), 0o644, time.Time{}); err != nil {
				return err
			}
		}
	}
	// What lands is what the record lists, which is what the client later
	// checks for: an archive with other files is not this run's.
	got, want := st.Names(), make([]string, 0, len(rec.Files))
	for _, f := range rec.Files {
		n, err := safedir.CheckName(f.Name)
		if err != nil {
			return err
		}
		want = append(want, n)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return fmt.Errorf("results archive %s holds other files than its run record lists", rec.Object)
	}
	return st.CommitFor(rec.Campaign, rec.Run)
}

// copyIn stages a copy of the result file name of the results directory
// from, where a run on this host wrote it in place. The file is opened
// through from's own safedir: a name that leads through a link is refused.
func copyIn(st *safedir.Stage, from, name string) error {
	f, err := safedir.OpenFile(from, name)
	if err != nil {
		return fmt.Errorf("%s: the only copy of this run's files was in the results directory it ran for: %w", filepath.Join(from, filepath.FromSlash(name)), fserr.WithoutPath(err))
	}
	defer f.Close()
	_, err = st.Write(name, f, 0o644, time.Time{})
	return err
}

// sweepScratch removes what a killed client (or its runners) left in the
// results directory's scratch: half-written files of runs that never
// landed.
func sweepScratch(dir string) error {
	d, err := safedir.Open(dir)
	if err != nil {
		return fmt.Errorf("results directory %s: %w", dir, err)
	}
	defer d.Close()
	_, err = d.Sweep()
	return err
}
