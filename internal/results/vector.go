package results

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// Block is one contiguous stretch of a vector's lines in its .vec file,
// as the .vci index lists it.
type Block struct {
	Offset, Length int64
	Count          int64
}

// Vector is a vector's index: where its data lies and its summary. Its
// data is read from the .vec only when asked for, block by block.
type Vector struct {
	File    string // the .vec
	ID      int64
	Columns string // data columns: E event number, T time, V value
	Blocks  []Block
	Count   int64
	Min     float64
	Max     float64
	Sum     float64
	SqrSum  float64

	item     *Item
	tcol     int // index of the time and value fields in a data line
	vcol     int
	nfields  int
	idPrefix []byte // "<id>" then a blank: every data line starts so

	// sqlite vectors read their data through a query instead.
	sqlite *sqliteVector
}

func newVector(file string, id int64, cols string) (*Vector, error) {
	v := &Vector{File: file, ID: id, Columns: cols, Min: math.Inf(1), Max: math.Inf(-1), tcol: -1, vcol: -1}
	for i, c := range cols {
		switch c {
		case 'T':
			v.tcol = i + 1
		case 'V':
			v.vcol = i + 1
		case 'E':
		default:
			return nil, fmt.Errorf("vector %d: unknown column %q in %q", id, c, cols)
		}
	}
	if v.vcol < 0 {
		return nil, fmt.Errorf("vector %d: columns %q have no value", id, cols)
	}
	v.nfields = len(cols) + 1
	v.idPrefix = []byte(fmt.Sprintf("%d", id))
	return v, nil
}

func (v *Vector) addBlock(b Block, min, max, sum, sqrsum float64) {
	v.Blocks = append(v.Blocks, b)
	v.Count += b.Count
	if b.Count > 0 {
		v.Min = math.Min(v.Min, min)
		v.Max = math.Max(v.Max, max)
	}
	v.Sum += sum
	v.SqrSum += sqrsum
}

func (v *Vector) finish() {
	if v.Count == 0 {
		v.Min, v.Max = math.NaN(), math.NaN()
	}
}

// Mean is the mean of the vector's values.
func (v *Vector) Mean() float64 {
	if v.Count == 0 {
		return math.NaN()
	}
	return v.Sum / float64(v.Count)
}

// Stddev is the sample standard deviation of the vector's values.
func (v *Vector) Stddev() float64 {
	if v.Count < 2 {
		return math.NaN()
	}
	n := float64(v.Count)
	return math.Sqrt(math.Max(0, (v.SqrSum-v.Sum*v.Sum/n)/(n-1)))
}

// Column selects what EachField hands out.
type Column int

const (
	ColTime Column = iota
	ColValue
)

// eachLine calls fn with every data line of the vector's blocks, and
// checks each block holds as many lines as the index says. Only one block
// reader's buffer is in memory at a time.
func (v *Vector) eachLine(fn func(line []byte, off int64) error) error {
	f, err := os.Open(v.File)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(nil, 256<<10)
	for _, b := range v.Blocks {
		br.Reset(io.NewSectionReader(f, b.Offset, b.Length))
		var seen int64
		for {
			line, err := br.ReadSlice('\n')
			if err == io.EOF && len(line) == 0 {
				break
			}
			if err != nil && err != io.EOF {
				return fmt.Errorf("%s: vector %d block at offset %d: %v", v.File, v.ID, b.Offset, err)
			}
			line = bytes.TrimRight(line, "\r\n")
			if len(line) == 0 {
				continue
			}
			if err := fn(line, b.Offset); err != nil {
				return err
			}
			seen++
		}
		if seen != b.Count {
			return fmt.Errorf("%s: vector %d: block at offset %d holds %d values, its index says %d (regenerate the .vci with opp_scavetool index)", v.File, v.ID, b.Offset, seen, b.Count)
		}
	}
	return nil
}

func (v *Vector) malformed(off int64) error {
	return fmt.Errorf("%s: vector %d: malformed data line in the block at offset %d (is the .vci stale? regenerate it with opp_scavetool index)", v.File, v.ID, off)
}

// EachField calls fn with the text of one column (time or value) of every
// data point, in order, as the file writes it: exporters that write text
// copy it without converting it to a float and back.
func (v *Vector) EachField(col Column, fn func(field []byte) error) error {
	if v.sqlite != nil {
		return v.sqlite.each(col, fn)
	}
	want := v.vcol
	if col == ColTime {
		want = v.tcol
		if want < 0 {
			return fmt.Errorf("%s: vector %d records no time", v.File, v.ID)
		}
	}
	return v.eachLine(func(line []byte, off int64) error {
		fld, ok := v.field(line, want)
		if !ok {
			return v.malformed(off)
		}
		return fn(fld)
	})
}

// field picks field n (0 is the vector id) of a data line, checking the id
// and the field count.
func (v *Vector) field(line []byte, n int) ([]byte, bool) {
	if !bytes.HasPrefix(line, v.idPrefix) || len(line) == len(v.idPrefix) || !blank(line[len(v.idPrefix)]) {
		return nil, false
	}
	var out []byte
	i, k := 0, 0
	for i < len(line) {
		for i < len(line) && blank(line[i]) {
			i++
		}
		if i >= len(line) {
			break
		}
		j := i
		for j < len(line) && !blank(line[j]) {
			j++
		}
		if k == n {
			out = line[i:j]
		}
		k++
		i = j
	}
	return out, k == v.nfields && len(out) > 0 && numeric(out)
}

func blank(c byte) bool { return c == ' ' || c == '\t' }

// numeric is a cheap check that a field can be a number as OMNeT++
// writes them (digits, sign, point, exponent, inf, nan).
func numeric(b []byte) bool {
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9', c == '.', c == '-', c == '+', c == 'e', c == 'E':
		case strings.IndexByte("infaINFA", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Points calls fn with every (time, value) pair, reading the data once.
func (v *Vector) Points(fn func(t, val float64) error) error {
	if v.sqlite != nil {
		return v.sqlite.points(fn)
	}
	if v.tcol < 0 {
		return fmt.Errorf("%s: vector %d records no time", v.File, v.ID)
	}
	return v.eachLine(func(line []byte, off int64) error {
		tf, ok1 := v.field(line, v.tcol)
		vf, ok2 := v.field(line, v.vcol)
		t, ok3 := parseNum(string(tf))
		x, ok4 := parseNum(string(vf))
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return v.malformed(off)
		}
		return fn(t, x)
	})
}
