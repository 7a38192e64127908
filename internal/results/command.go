package results

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/simswarm/simswarm/internal/scavefilter"
)

// Request is what `simswarm results` was asked.
type Request struct {
	Dir        string   // the results directory
	Templates  []string // simswarm.toml's [results] files; empty for OMNeT++ result files
	Format     string
	Output     string // file to write; "" or "-" for Stdout
	Filter     string
	Vectors    bool
	Summary    bool
	Provenance bool
	KeepGoing  bool
	Stdout     io.Writer
}

// UsageError is a request that cannot be carried out as given (exit 2
// before anything is read).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Do carries out a request. An output file is written beside its final
// name and renamed into place only when the export is complete (or when
// KeepGoing exported what it could), so a failed export never replaces a
// good file.
func Do(ctx context.Context, req Request) (*Report, error) {
	if req.Format == "" {
		req.Format = FormatCSV
	}
	if err := CheckFormat(req.Format); err != nil {
		return nil, &UsageError{err}
	}
	opt := ExportOptions{Format: req.Format, KeepGoing: req.KeepGoing, Summary: req.Summary,
		Options: Options{Vectors: req.Vectors}}
	if req.Filter != "" {
		if len(req.Templates) > 0 {
			return nil, &UsageError{errors.New("--filter selects OMNeT++ result items; the files of simswarm.toml's [results] have none")}
		}
		f, err := scavefilter.Parse(req.Filter)
		if err != nil {
			return nil, &UsageError{err}
		}
		opt.Filter = f
	}
	var files []string
	var err error
	if len(req.Templates) > 0 {
		files, err = FindTemplateFiles(req.Dir, req.Templates)
	} else {
		files, err = Find(req.Dir, req.Vectors)
	}
	if err != nil {
		return nil, err
	}
	if req.Provenance {
		if opt.Provenance, err = LoadProvenance(req.Dir); err != nil {
			return nil, err
		}
	}
	out, commit, abort, err := output(req)
	if err != nil {
		return nil, err
	}
	var rep *Report
	if len(req.Templates) > 0 {
		rep, err = ExportTemplate(ctx, out, req.Dir, files, opt)
	} else {
		rep, err = Export(ctx, out, files, opt)
	}
	if err != nil {
		abort()
		return rep, err
	}
	if err := commit(); err != nil {
		return rep, err
	}
	if opt.Provenance != nil && opt.Provenance.Note != "" {
		rep.Notes = append(rep.Notes, opt.Provenance.Note)
	}
	return rep, rep.Err()
}

func output(req Request) (io.Writer, func() error, func(), error) {
	if req.Output == "" || req.Output == "-" {
		return req.Stdout, func() error { return nil }, func() {}, nil
	}
	dir := filepath.Dir(req.Output)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(req.Output)+".tmp-*")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("output %s: %w", req.Output, unwrapPath(err))
	}
	commit := func() error {
		// CreateTemp makes the file private; an export is an ordinary file.
		_ = tmp.Chmod(0o644)
		if err := tmp.Close(); err != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("output %s: %w", req.Output, err)
		}
		if err := os.Rename(tmp.Name(), req.Output); err != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("output %s: %w", req.Output, err)
		}
		return nil
	}
	abort := func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}
	return tmp, commit, abort, nil
}
