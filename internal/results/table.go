package results

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// Formats an export can be written in.
const (
	FormatCSV     = "csv"
	FormatJSON    = "json" // JSON lines: one object per row
	FormatParquet = "parquet"
)

// Formats lists the formats, for messages.
var Formats = []string{FormatCSV, FormatJSON, FormatParquet}

// CheckFormat refuses a format this package cannot write.
func CheckFormat(f string) error {
	for _, k := range Formats {
		if f == k {
			return nil
		}
	}
	return fmt.Errorf("unknown format %q: use csv, json or parquet", f)
}

// colType is what a column holds, for typed formats.
type colType uint8

const (
	cString colType = iota
	cFloat
	cInt
	cList   // []float64
	cVector // a vector's times or values, streamed
	cValue  // a scalar's number or a parameter's text (CSV-R's value column)
)

type cellKind uint8

const (
	kNone cellKind = iota
	kStr
	kNum
	kInt
	kNums
	kVec
)

type cell struct {
	kind cellKind
	s    string
	f    float64
	i    int64
	fs   []float64
	vec  *Vector
	col  Column
}

func str(s string) cell {
	if s == "" {
		return cell{}
	}
	return cell{kind: kStr, s: s}
}
func num(f float64) cell { return cell{kind: kNum, f: f} }

// row is one item with what is joined to it.
type row struct {
	it   *Item
	prov *Provenance
	// vecChunk, when set, replaces a vector's streamed columns with these
	// points (Parquet writes long vectors as several rows).
	times, values []float64
	chunked       bool
	group         *Group   // a summary row
	tmpl          *tmplRow // a record of a template simulator's file
}

type column struct {
	name string
	typ  colType
	get  func(*row) cell
}

// fixedColumns are opp_scavetool's CSV-R columns (less attrname and
// attrvalue: result attributes are not rows here) and the unit.
func fixedColumns(vectors bool) []column {
	stat := func(f func(*Stats) float64, vf func(*Vector) float64) func(*row) cell {
		return func(r *row) cell {
			if s := r.it.Stats; s != nil {
				return num(f(s))
			}
			if v := r.it.Vector; v != nil && vf != nil {
				return num(vf(v))
			}
			return cell{}
		}
	}
	hist := func(f func(*Histogram) float64) func(*row) cell {
		return func(r *row) cell {
			if h := r.it.Hist; h != nil {
				return num(f(h))
			}
			return cell{}
		}
	}
	cols := []column{
		{"run", cString, func(r *row) cell { return str(r.it.Run.ID) }},
		{"type", cString, func(r *row) cell {
			if r.it.Type == TypeParameter {
				return str("param") // as CSV-R writes it; the filter says "parameter"
			}
			return str(r.it.Type)
		}},
		{"module", cString, func(r *row) cell { return str(r.it.Module) }},
		{"name", cString, func(r *row) cell { return str(r.it.Name) }},
		{"value", cValue, func(r *row) cell {
			switch r.it.Type {
			case TypeScalar:
				return num(r.it.Value)
			case TypeParameter:
				return cell{kind: kStr, s: r.it.Text}
			}
			return cell{}
		}},
		{"count", cInt, func(r *row) cell {
			if s := r.it.Stats; s != nil {
				return cell{kind: kInt, i: s.Count}
			}
			if v := r.it.Vector; v != nil {
				return cell{kind: kInt, i: v.Count}
			}
			return cell{}
		}},
		{"sumweights", cFloat, stat(func(s *Stats) float64 { return s.SumWeights }, nil)},
		{"mean", cFloat, stat(func(s *Stats) float64 { return s.Mean }, (*Vector).Mean)},
		{"stddev", cFloat, stat(func(s *Stats) float64 { return s.Stddev }, (*Vector).Stddev)},
		{"min", cFloat, stat(func(s *Stats) float64 { return s.Min }, func(v *Vector) float64 { return v.Min })},
		{"max", cFloat, stat(func(s *Stats) float64 { return s.Max }, func(v *Vector) float64 { return v.Max })},
		{"underflows", cFloat, hist(func(h *Histogram) float64 { return h.Underflows })},
		{"overflows", cFloat, hist(func(h *Histogram) float64 { return h.Overflows })},
		{"binedges", cList, func(r *row) cell {
			if h := r.it.Hist; h != nil {
				return cell{kind: kNums, fs: h.Edges}
			}
			return cell{}
		}},
		{"binvalues", cList, func(r *row) cell {
			if h := r.it.Hist; h != nil {
				return cell{kind: kNums, fs: h.Values}
			}
			return cell{}
		}},
	}
	if vectors {
		vec := func(c Column) func(*row) cell {
			return func(r *row) cell {
				if r.chunked {
					if c == ColTime {
						return cell{kind: kNums, fs: r.times}
					}
					return cell{kind: kNums, fs: r.values}
				}
				if v := r.it.Vector; v != nil {
					return cell{kind: kVec, vec: v, col: c}
				}
				return cell{}
			}
		}
		cols = append(cols, column{"vectime", cVector, vec(ColTime)}, column{"vecvalue", cVector, vec(ColValue)})
	}
	cols = append(cols, column{"unit", cString, func(r *row) cell { return str(r.it.Attr("unit")) }})
	return cols
}

// Table is the layout of an export: fixed columns, one per iteration
// variable, repetition, and provenance when asked for.
type Table struct {
	cols []column
}

// Columns names the table's columns in order.
func (t *Table) Columns() []string {
	out := make([]string, len(t.cols))
	for i, c := range t.cols {
		out[i] = c.name
	}
	return out
}

func newTable(itervars []string, vectors, provenance bool) *Table {
	t := &Table{cols: fixedColumns(vectors)}
	taken := map[string]bool{}
	for _, c := range t.cols {
		taken[c.name] = true
	}
	for _, name := range itervars {
		col := name
		if taken[col] || col == "repetition" {
			col = "itervar:" + name
		}
		taken[col] = true
		t.cols = append(t.cols, column{col, cString, func(r *row) cell {
			v, _ := r.it.Run.Itervar(name)
			return str(v)
		}})
	}
	t.cols = append(t.cols, column{"repetition", cString, func(r *row) cell { return str(r.it.Run.Repetition()) }})
	if provenance {
		t.cols = append(t.cols, provenanceColumns()...)
	}
	return t
}

// ExportOptions say what to export and how.
type ExportOptions struct {
	Options
	Format string
	// Provenance joins each run's provenance record (from the results
	// directory's provenance file) as columns.
	Provenance *ProvenanceIndex
	// KeepGoing exports the other files' rows when a file is bad; the
	// errors are still returned.
	KeepGoing bool
	// Summary writes, instead of the rows, one row per (iteration
	// variables, module, name) with n, mean, stddev and the 95 %
	// confidence half-width over repetitions.
	Summary bool
}

// Report says what an export did.
type Report struct {
	Files  int      // files read
	Rows   int64    // rows written
	Failed []error  // files that could not be read (with KeepGoing)
	Notes  []string // what was skipped without failing (torn provenance records)
}

// Err joins the failures.
func (r *Report) Err() error { return errors.Join(r.Failed...) }

type rowWriter interface {
	header(t *Table) error
	write(r *row) error
	close() error
}

func newRowWriter(format string, w io.Writer) (rowWriter, error) {
	switch format {
	case FormatCSV, "":
		return newCSVWriter(w), nil
	case FormatJSON:
		return newJSONWriter(w), nil
	case FormatParquet:
		return newParquetWriter(w), nil
	}
	return nil, CheckFormat(format)
}

// Export writes the items of files to w as one table. The files are read
// twice: once for their headers (the iteration variables make columns, and
// a bad file is found before anything is written), then for their items.
func Export(ctx context.Context, w io.Writer, files []string, opt ExportOptions) (*Report, error) {
	rep := &Report{}
	if err := CheckFormat(opt.Format); err != nil {
		return rep, err
	}
	itervars, good, err := headers(files, opt.Options, opt.KeepGoing, rep)
	if err != nil {
		return rep, err
	}
	if opt.Summary {
		return rep, summarize(ctx, w, good, opt, rep)
	}
	t := newTable(itervars, opt.Vectors, opt.Provenance != nil)
	rw, err := newRowWriter(opt.Format, w)
	if err != nil {
		return rep, err
	}
	if err := rw.header(t); err != nil {
		return rep, err
	}
	for _, f := range good {
		var prov *Provenance
		if opt.Provenance != nil {
			prov = opt.Provenance.Lookup(f)
		}
		err := ReadFile(ctx, f, opt.Options, func(it *Item) error {
			rep.Rows++
			return rw.write(&row{it: it, prov: prov})
		})
		if err != nil {
			var fe *FileError
			if !opt.KeepGoing || !errors.As(err, &fe) {
				return rep, err
			}
			rep.Failed = append(rep.Failed, err)
			continue
		}
		rep.Files++
	}
	return rep, rw.close()
}

func summarize(ctx context.Context, w io.Writer, files []string, opt ExportOptions, rep *Report) error {
	s := NewSummarizer()
	for _, f := range files {
		err := Scalars(ctx, []string{f}, opt.Options, func(it *Item) error {
			rep.Rows++
			s.Add(it.Run, it.Module, it.Name, it.Value)
			return nil
		})
		if err != nil {
			var fe *FileError
			if !opt.KeepGoing || !errors.As(err, &fe) {
				return err
			}
			rep.Failed = append(rep.Failed, err)
			continue
		}
		rep.Files++
	}
	return WriteSummary(w, opt.Format, s.Groups())
}

// headers reads every file's header and returns the iteration variables
// in order of first appearance, and the files that are readable.
func headers(files []string, opt Options, keepGoing bool, rep *Report) ([]string, []string, error) {
	var names []string
	seen := map[string]bool{}
	var good []string
	for _, f := range files {
		if len(f) > 4 && f[len(f)-4:] == ".vec" && !opt.Vectors {
			continue
		}
		h, err := ReadHeader(f, opt)
		if err != nil {
			if !keepGoing {
				return nil, nil, err
			}
			rep.Failed = append(rep.Failed, err)
			continue
		}
		good = append(good, f)
		for _, r := range h.Runs {
			for _, a := range r.Itervars {
				if !seen[a.Name] {
					seen[a.Name] = true
					names = append(names, a.Name)
				}
			}
		}
	}
	return names, good, nil
}

// appendFloat writes a number the way OMNeT++ does (inf, -inf, nan), in
// plain decimal where that is short, with the fewest digits that read
// back as the same float64.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "nan"...)
	case math.IsInf(f, 1):
		return append(b, "inf"...)
	case math.IsInf(f, -1):
		return append(b, "-inf"...)
	}
	if a := math.Abs(f); a == 0 || (a >= 1e-4 && a < 1e15) {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}
