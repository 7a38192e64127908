package campaign

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/archive"
	"github.com/simswarm/simswarm/internal/safedir"
)

// write lays a finished run's files into dir through safedir: all of them
// or none, nothing outside dir, no symlink created or followed. A run
// whose files are refused fails with the reason.
func (c *Client) write(ctx context.Context, dir string, rec *simswarm.RunRecord) error {
	d, err := safedir.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	st, err := d.Stage(fmt.Sprintf("%s-%d", rec.Campaign, rec.Run))
	if err != nil {
		return err
	}
	defer st.Remove()
	if rec.Object != "" {
		obj, err := c.Eng.Blobs.Get(ctx, rec.Object)
		if err != nil {
			return fmt.Errorf("fetch %s: %w", rec.Object, err)
		}
		_, err = archive.Extract(obj, st, false)
		obj.Close()
		if err != nil {
			return err
		}
	} else {
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
	return st.Commit()
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
