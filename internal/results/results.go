// Package results reads simulation result files as data: OMNeT++'s text
// result files (format version 3: .sca, and .vec through its .vci index),
// OMNeT++'s SQLite result files, and the CSV or JSON files a template
// simulator writes. It filters them with opp_scavetool's filter syntax,
// exports them as one tidy table (CSV, JSON lines, Parquet) with a column per
// iteration variable, joins each run's provenance, and summarises scalars
// over repetitions with Student-t confidence intervals.
//
// Files are streamed: a reader holds one result item (one histogram, one
// vector's index) at a time, never a whole file, so memory stays flat
// whatever the size of the files.
//
// The entry points for other packages are Walk (every item of some files),
// Scalars (scalars per run, with iteration variables) and Summarize.
package results

import (
	"fmt"
	"strconv"
)

// Item types, named as opp_scavetool's CSV-R export names them.
const (
	TypeScalar    = "scalar"
	TypeStatistic = "statistic"
	TypeHistogram = "histogram"
	TypeParameter = "parameter"
	TypeVector    = "vector"
)

// Attr is a name and value, in the order the file gives them.
type Attr struct{ Name, Value string }

// Run is one simulation run as its result files describe it.
type Run struct {
	ID       string // e.g. PureAlohaExperiment-0-20261121-23:02:00-32488
	Attrs    []Attr // run attributes: configname, runnumber, repetition, ...
	Itervars []Attr // iteration variables, without repetition
	Config   []Attr // configuration entries, in order
}

func lookup(as []Attr, name string) (string, bool) {
	for _, a := range as {
		if a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

// Attr returns a run attribute.
func (r *Run) Attr(name string) string { v, _ := lookup(r.Attrs, name); return v }

// Itervar returns an iteration variable's value.
func (r *Run) Itervar(name string) (string, bool) { return lookup(r.Itervars, name) }

// Repetition is the run's repetition number, as its `repetition` attribute says.
func (r *Run) Repetition() string { return r.Attr("repetition") }

// RunNumber is the run's number, or -1 when the file does not say.
func (r *Run) RunNumber() int {
	n, err := strconv.Atoi(r.Attr("runnumber"))
	if err != nil {
		return -1
	}
	return n
}

// Stats are the fields of a statistic or histogram.
type Stats struct {
	Count      int64
	SumWeights float64 // the count for an unweighted statistic
	Mean       float64
	Stddev     float64
	Min, Max   float64
	Sum        float64
	SqrSum     float64
	Weighted   bool
}

// Histogram holds a histogram's bins: Values[i] counts [Edges[i], Edges[i+1]).
type Histogram struct {
	Edges      []float64
	Values     []float64
	Underflows float64
	Overflows  float64
}

// Item is one result: a scalar, statistic, histogram, parameter or vector.
type Item struct {
	File   string // the result file it came from, as given
	Line   int    // where it is declared (text files)
	Run    *Run
	Type   string
	Module string
	Name   string
	Attrs  []Attr // result attributes (unit, title, recordingmode, ...)
	Value  float64
	Text   string // a parameter's value, as the ini file gave it
	Stats  *Stats
	Hist   *Histogram
	Vector *Vector
}

// Attr returns a result attribute.
func (it *Item) Attr(name string) string { v, _ := lookup(it.Attrs, name); return v }

// Field gives the filter's view of an item (scavefilter.Item).
func (it *Item) Field(name string) (string, bool) {
	switch name {
	case "file":
		return it.File, true
	case "run":
		return it.Run.ID, true
	case "type":
		return it.Type, true
	case "module":
		return it.Module, true
	case "name":
		return it.Name, true
	}
	for _, p := range [...]struct {
		prefix string
		from   func() []Attr
	}{
		{"runattr:", func() []Attr { return it.Run.Attrs }},
		{"itervar:", func() []Attr { return it.Run.Itervars }},
		{"config:", func() []Attr { return it.Run.Config }},
		{"attr:", func() []Attr { return it.Attrs }},
	} {
		if len(name) > len(p.prefix) && name[:len(p.prefix)] == p.prefix {
			return lookup(p.from(), name[len(p.prefix):])
		}
	}
	return "", false
}

// FileError is a problem in a result file, with the line where it was
// found (0 when it concerns the file as a whole).
type FileError struct {
	File string
	Line int
	Msg  string
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

func fileErr(file string, line int, format string, a ...any) *FileError {
	return &FileError{File: file, Line: line, Msg: fmt.Sprintf(format, a...)}
}
