package results

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/simswarm/simswarm/internal/scavefilter"
)

// Options say what to read.
type Options struct {
	// Vectors reads .vec files (through their .vci index); without it they
	// are left alone, however large.
	Vectors bool
	// Filter keeps the items it matches; nil keeps all.
	Filter *scavefilter.Filter
}

// ErrNoFiles is wrapped by Find's error for a directory without result files.
var ErrNoFiles = errors.New("no result files")

// scratchDir is where runners on this host write before files are moved
// into the results directory: not results yet.
const scratchDir = ".simswarm-scratch"

// Find lists the OMNeT++ result files under dir (.sca, and .vec when
// vectors is set), sorted by path.
func Find(dir string, vectors bool) ([]string, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("results directory %s: %w", dir, unwrapPath(err))
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("results directory %s is not a directory", dir)
	}
	var out []string
	err = walkFiles(dir, func(p string) {
		switch filepath.Ext(p) {
		case ".sca":
			out = append(out, p)
		case ".vec":
			if vectors {
				out = append(out, p)
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("results directory %s: %w", dir, err)
	}
	if len(out) == 0 {
		what := ".sca"
		if vectors {
			what = ".sca or .vec"
		}
		return nil, fmt.Errorf("%s: %w (%s) in it", dir, ErrNoFiles, what)
	}
	sort.Strings(out)
	return out, nil
}

// walkFiles calls fn with every file under dir, leaving out the scratch
// directory runners write into before files are results.
func walkFiles(dir string, fn func(path string)) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && d.Name() == scratchDir:
			return filepath.SkipDir
		case !d.IsDir():
			fn(p)
		}
		return nil
	})
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

var sqliteMagic = []byte("SQLite format 3\x00")

func isSQLite(f *os.File) (bool, error) {
	head := make([]byte, len(sqliteMagic))
	n, err := io.ReadFull(f, head)
	if _, serr := f.Seek(0, io.SeekStart); serr != nil {
		return false, serr
	}
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return false, err
	}
	return bytes.Equal(head[:n], sqliteMagic), nil
}

// Header is what a file says about its runs before its items: enough to
// lay out a table's columns, and a check that the whole file is readable
// as far as that can be told without parsing it.
type Header struct {
	Runs []*Run
}

// ReadHeader reads the runs of a result file, checking on the way that it
// is a result file of a known version, that a text file is complete (its
// last line ends), and that a .vec has a current .vci index.
func ReadHeader(file string, opt Options) (*Header, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fileErr(file, 0, "%v", unwrapPath(err))
	}
	defer f.Close()
	sq, err := isSQLite(f)
	if err != nil {
		return nil, fileErr(file, 0, "read: %v", err)
	}
	if sq {
		return sqliteHeader(file)
	}
	src, name := io.Reader(f), file
	if strings.HasSuffix(file, ".vec") {
		idx, err := openIndex(file, f)
		if err != nil {
			return nil, err
		}
		defer idx.Close()
		src, name = idx, idx.Name()
	}
	h := &Header{}
	lr := newLineReader(name, src)
	version := false
	var run *Run
	for {
		b, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		kw, rest, _ := bytes.Cut(b, []byte(" "))
		switch string(kw) {
		case "version":
			toks, err := lr.tokens(b)
			if err != nil {
				return nil, err
			}
			if err := checkVersion(name, lr.line, toks); err != nil {
				return nil, err
			}
			version = true
		case "run", "itervar", "attr":
			if !version {
				return nil, fileErr(name, lr.line, "not an OMNeT++ result file: it does not begin with a version line")
			}
			if string(kw) == "attr" && (run == nil || !bytes.HasPrefix(rest, []byte("repetition "))) {
				continue
			}
			toks, err := lr.tokens(b)
			if err != nil {
				return nil, err
			}
			switch {
			case toks[0] == "run" && len(toks) == 2:
				run = &Run{ID: toks[1]}
				h.Runs = append(h.Runs, run)
			case toks[0] == "itervar" && len(toks) == 3 && run != nil:
				run.Itervars = append(run.Itervars, Attr{toks[1], toks[2]})
			case toks[0] == "attr" && len(toks) == 3:
				run.Attrs = append(run.Attrs, Attr{toks[1], toks[2]})
			}
		case "file":
		default:
			if !version && len(bytes.TrimSpace(b)) > 0 {
				return nil, fileErr(name, lr.line, "not an OMNeT++ result file: it does not begin with a version line")
			}
		}
	}
	if !version {
		return nil, fileErr(name, 0, "empty file: not an OMNeT++ result file")
	}
	return h, nil
}

// index is an open .vci.
type index struct {
	*os.File
}

// openIndex opens the .vci of a .vec and checks it describes the .vec as
// it is now (the size its first line records).
func openIndex(vecFile string, vec *os.File) (*index, error) {
	vci := strings.TrimSuffix(vecFile, ".vec") + ".vci"
	f, err := os.Open(vci)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fileErr(vecFile, 0, "no index %s beside it: create it with opp_scavetool index %s", filepath.Base(vci), vecFile)
	}
	if err != nil {
		return nil, fileErr(vci, 0, "%v", unwrapPath(err))
	}
	fi, err := vec.Stat()
	if err != nil {
		f.Close()
		return nil, fileErr(vecFile, 0, "%v", err)
	}
	line := make([]byte, 128)
	n, _ := io.ReadFull(f, line)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fileErr(vci, 0, "%v", err)
	}
	first, _, _ := bytes.Cut(line[:n], []byte("\n"))
	fields := bytes.Fields(first)
	if len(fields) >= 2 && string(fields[0]) == "file" {
		size, err := strconv.ParseInt(string(fields[1]), 10, 64)
		if err != nil {
			f.Close()
			return nil, fileErr(vci, 1, "malformed file line")
		}
		if size != fi.Size() {
			f.Close()
			return nil, fileErr(vci, 1, "stale index: it describes a .vec of %d bytes, %s has %d: regenerate it with opp_scavetool index %s", size, filepath.Base(vecFile), fi.Size(), vecFile)
		}
	}
	return &index{f}, nil
}

// ReadFile calls fn with every item of a result file that passes the
// filter, in file order. A .vec is read through its .vci (its vectors
// come with their index; the data is read when a Vector is asked for it);
// it is skipped unless opt.Vectors is set.
func ReadFile(ctx context.Context, file string, opt Options, fn func(*Item) error) error {
	isVec := strings.HasSuffix(file, ".vec")
	if isVec && !opt.Vectors {
		return nil
	}
	f, err := os.Open(file)
	if err != nil {
		return fileErr(file, 0, "%v", unwrapPath(err))
	}
	defer f.Close()
	emit := func(it *Item) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !opt.Filter.Match(it) {
			return nil
		}
		return fn(it)
	}
	sq, err := isSQLite(f)
	if err != nil {
		return fileErr(file, 0, "read: %v", err)
	}
	if sq {
		return readSQLite(ctx, file, opt, emit)
	}
	if isVec {
		idx, err := openIndex(file, f)
		if err != nil {
			return err
		}
		defer idx.Close()
		return readText(idx.Name(), idx, file, emit)
	}
	return readText(file, f, "", emit)
}

// Walk reads several files in order with ReadFile.
func Walk(ctx context.Context, files []string, opt Options, fn func(*Item) error) error {
	for _, f := range files {
		if err := ReadFile(ctx, f, opt, fn); err != nil {
			return err
		}
	}
	return nil
}

// ReadSca reads a text scalar file from r (name is used in errors and as
// the items' File): for scalar files that are not on disk, such as the
// inline result files of a run record.
func ReadSca(name string, r io.Reader, opt Options, fn func(*Item) error) error {
	return readText(name, r, "", func(it *Item) error {
		if !opt.Filter.Match(it) {
			return nil
		}
		return fn(it)
	})
}
