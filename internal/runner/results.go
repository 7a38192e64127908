package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/archive"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/safedir"
)

// inlineLimit is the size up to which a run's files travel inside its record
// rather than as an object: one write instead of several for the many small
// .sca files of a typical campaign.
const inlineLimit = 256 << 10

// collect gathers the result files of a single-run process: everything in
// its result directory is its own.
func (r *Runner) collect(ctx context.Context, j *job, stage *safedir.Stage, console string, from, to int64, rec *simswarm.RunRecord) {
	resDir := filepath.Join(stage.Path(), "results")
	var files []string
	_ = filepath.WalkDir(resDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(resDir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	r.collectFiles(ctx, j, stage, files, console, from, to, rec)
}

// collectFiles stores a run's files and its console output (as opp_runall
// keeps a .out per run) and notes them in the record. to < 0 takes the
// console output whole.
func (r *Runner) collectFiles(ctx context.Context, j *job, stage *safedir.Stage, files []string, console string, from, to int64, rec *simswarm.RunRecord) {
	resDir := filepath.Join(stage.Path(), "results")
	out := outName(j.Command, j.Run, files)
	if err := copyRange(console, filepath.Join(resDir, filepath.FromSlash(out)), from, to); err != nil {
		if safedir.IsDiskFull(err) {
			// A run without its output is not a success to keep.
			rec.State = simswarm.RunFailed
			rec.Reason = fmt.Sprintf("keeping the console output in %s: %v", r.writesInto(j), safedir.ErrDiskFull)
			return
		}
		r.Log.Warn("runner: keep console output", "run", j.Run, "err", err)
	} else {
		files = append(files, out)
	}
	if err := r.store(ctx, j, stage, files, rec); err != nil {
		rec.State = simswarm.RunFailed
		rec.Reason = "storing results: " + err.Error()
		// Nothing of them is stored: the record must not promise any.
		rec.Object, rec.Files = "", nil
	}
}

func (r *Runner) store(ctx context.Context, j *job, stage *safedir.Stage, files []string, rec *simswarm.RunRecord) error {
	resDir := filepath.Join(stage.Path(), "results")
	var total int64
	rec.Files = rec.Files[:0]
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(resDir, filepath.FromSlash(f)))
		if err != nil {
			return err
		}
		rec.Files = append(rec.Files, simswarm.File{Name: f, Size: fi.Size()})
		total += fi.Size()
	}
	switch {
	case r.local(j):
		// The stage lies inside j.Local: the run's files land by rename,
		// together, through safedir like every file a run writes there.
		for _, f := range rec.Files {
			if err := stage.Adopt("results/"+f.Name, f.Name); err != nil {
				return err
			}
		}
		if err := stage.CommitFor(j.Campaign, j.Run); err != nil {
			var claimed *safedir.ClaimError
			if errors.As(err, &claimed) {
				return err
			}
			return fmt.Errorf("move results into %s: %w", j.Local, err)
		}
		rec.LocalDir = j.Local
	case total <= inlineLimit:
		for i := range rec.Files {
			b, err := os.ReadFile(filepath.Join(resDir, filepath.FromSlash(rec.Files[i].Name)))
			if err != nil {
				return err
			}
			rec.Files[i].Data = b
		}
	default:
		pr, pw := io.Pipe()
		go func() {
			_, err := archive.Pack(pw, resDir, files)
			pw.CloseWithError(err)
		}()
		rec.Object = engine.ResultObject(j.Key)
		if err := r.Eng.PutObject(ctx, rec.Object, pr); err != nil {
			pr.CloseWithError(err)
			return err
		}
	}
	return nil
}

// copyRange copies bytes [from,to) of src into a new file dst (to < 0: to
// the end). Whole files are moved instead of copied.
func copyRange(src, dst string, from, to int64) error {
	if from == 0 && to < 0 {
		return os.Rename(src, dst)
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := in.Seek(from, io.SeekStart); err != nil {
		out.Close()
		return err
	}
	var r io.Reader = in
	if to >= 0 {
		r = io.LimitReader(in, to-from)
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
