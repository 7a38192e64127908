package runner

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/archive"
	"github.com/simswarm/simswarm/internal/engine"
)

// inlineLimit is the size up to which a run's files travel inside its record
// rather than as an object: one write instead of several for the many small
// .sca files of a typical campaign.
const inlineLimit = 256 << 10

// collect gathers the result files of a single-run process: everything in
// its result directory is its own.
func (r *Runner) collect(ctx context.Context, j *job, resDir, console string, from, to int64, rec *simswarm.RunRecord) {
	var files []string
	_ = filepath.WalkDir(resDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(resDir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	r.collectFiles(ctx, j, resDir, files, console, from, to, rec)
}

// collectFiles stores a run's files and its console output (as opp_runall
// keeps a .out per run) and notes them in the record. to < 0 takes the
// console output whole.
func (r *Runner) collectFiles(ctx context.Context, j *job, resDir string, files []string, console string, from, to int64, rec *simswarm.RunRecord) {
	out := outName(j.Command, j.Run, files)
	if err := copyRange(console, filepath.Join(resDir, filepath.FromSlash(out)), from, to); err != nil {
		r.Log.Warn("runner: keep console output", "run", j.Run, "err", err)
	} else {
		files = append(files, out)
	}
	if err := r.store(ctx, j, resDir, files, rec); err != nil {
		rec.State = simswarm.RunFailed
		rec.Reason = "storing results: " + err.Error()
	}
}

func (r *Runner) store(ctx context.Context, j *job, resDir string, files []string, rec *simswarm.RunRecord) error {
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
		for _, f := range rec.Files {
			dst := filepath.Join(j.Local, filepath.FromSlash(f.Name))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := os.Rename(filepath.Join(resDir, filepath.FromSlash(f.Name)), dst); err != nil {
				return fmt.Errorf("move %s into %s: %w", f.Name, j.Local, err)
			}
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
