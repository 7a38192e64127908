package results

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
)

// maxLine bounds one line of a text result file; a longer one means the
// file is not what it claims to be.
const maxLine = 16 << 20

// lineReader hands out the lines of a text result file one at a time.
type lineReader struct {
	file string
	br   *bufio.Reader
	line int
	long []byte   // a line longer than the buffer, assembled
	toks []string // reused between lines
	// incomplete is set when the last line had no newline: a file cut
	// short while it was being written or copied.
	incomplete bool
}

func newLineReader(file string, r io.Reader) *lineReader {
	return &lineReader{file: file, br: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line without its newline; io.EOF at the end.
func (lr *lineReader) next() ([]byte, error) {
	lr.long = lr.long[:0]
	for {
		b, err := lr.br.ReadSlice('\n')
		switch {
		case err == nil:
			lr.line++
			if len(lr.long) > 0 {
				lr.long = append(lr.long, b...)
				b = lr.long
			}
			b = b[:len(b)-1]
			if n := len(b); n > 0 && b[n-1] == '\r' {
				b = b[:n-1]
			}
			return b, nil
		case errors.Is(err, bufio.ErrBufferFull):
			lr.long = append(lr.long, b...)
			if len(lr.long) > maxLine {
				return nil, fileErr(lr.file, lr.line+1, "line longer than %d MiB", maxLine>>20)
			}
		case errors.Is(err, io.EOF):
			if len(b) > 0 || len(lr.long) > 0 {
				lr.line++
				lr.incomplete = true
				return nil, fileErr(lr.file, lr.line, "file is truncated: its last line is incomplete")
			}
			return nil, io.EOF
		default:
			return nil, fileErr(lr.file, lr.line+1, "read: %v", err)
		}
	}
}

// tokens splits a line into OMNeT++'s fields: separated by blanks, a field
// in double quotes may hold blanks and C-style escapes.
func (lr *lineReader) tokens(b []byte) ([]string, error) {
	toks := lr.toks[:0]
	i := 0
	for {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
			i++
		}
		if i >= len(b) {
			break
		}
		if b[i] != '"' {
			j := i
			for j < len(b) && b[j] != ' ' && b[j] != '\t' {
				j++
			}
			toks = append(toks, string(b[i:j]))
			i = j
			continue
		}
		var s strings.Builder
		j := i + 1
		closed := false
		for j < len(b) {
			c := b[j]
			if c == '"' {
				closed = true
				j++
				break
			}
			if c == '\\' && j+1 < len(b) {
				j++
				switch e := b[j]; e {
				case 'n':
					s.WriteByte('\n')
				case 't':
					s.WriteByte('\t')
				case 'r':
					s.WriteByte('\r')
				case 'b':
					s.WriteByte('\b')
				case 'f':
					s.WriteByte('\f')
				case 'v':
					s.WriteByte('\v')
				case '0':
					s.WriteByte(0)
				case 'x':
					if j+2 < len(b) {
						if v, err := strconv.ParseUint(string(b[j+1:j+3]), 16, 8); err == nil {
							s.WriteByte(byte(v))
							j += 2
							break
						}
					}
					s.WriteByte(e)
				default:
					s.WriteByte(e)
				}
				j++
				continue
			}
			s.WriteByte(c)
			j++
		}
		if !closed {
			return nil, fileErr(lr.file, lr.line, "unterminated quoted string")
		}
		toks = append(toks, s.String())
		i = j
	}
	lr.toks = toks
	return toks, nil
}

// parseNum reads a number as OMNeT++ writes it, infinities and NaN included.
func parseNum(s string) (float64, bool) {
	v, err := strconv.ParseFloat(s, 64)
	if err == nil {
		return v, true
	}
	switch strings.ToLower(s) {
	case "-nan", "+nan":
		return math.NaN(), true
	}
	var ne *strconv.NumError
	if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
		return v, true // ±Inf or 0 for out-of-range literals, as C's strtod
	}
	return 0, false
}

// supportedVersion is the text format this package reads (OMNeT++ 6).
const supportedVersion = "3"

func checkVersion(file string, line int, toks []string) error {
	if len(toks) != 2 {
		return fileErr(file, line, "malformed version line")
	}
	if toks[1] == supportedVersion {
		return nil
	}
	if toks[1] == "2" {
		return fileErr(file, line, "result file version 2 (OMNeT++ 5 or older) is not supported: convert it with opp_scavetool export -F OmnetppScalarFile (or OmnetppVectorFile)")
	}
	return fileErr(file, line, "unknown result file version %q: simswarm reads version %s (OMNeT++ 6)", toks[1], supportedVersion)
}

// textParser turns the lines of a .sca (or the header and declarations of
// a .vci) into items.
type textParser struct {
	lr      *lineReader
	emit    func(*Item) error
	run     *Run
	pending *Item
	version bool
	// vci: vectors declared, by id, in declaration order; data blocks
	// attach to them. Items are emitted at the end.
	vci     bool
	vectors []*Item
	byID    map[int64]*Vector
	vecFile string
}

func (p *textParser) flush() error {
	it := p.pending
	p.pending = nil
	if it == nil {
		return nil
	}
	if it.Stats != nil {
		if err := finishStats(it); err != nil {
			return err
		}
	}
	return p.emit(it)
}

func finishStats(it *Item) error {
	s := it.Stats
	if s.Count < 0 {
		return fileErr(it.File, it.Line, "statistic %s %s has no count field", it.Module, it.Name)
	}
	if !s.Weighted {
		s.SumWeights = float64(s.Count)
	}
	if h := it.Hist; h != nil {
		it.Type = TypeHistogram
		// The last bin collects what lies at or above the last edge.
		if n := len(h.Values); n > 0 {
			h.Overflows = h.Values[n-1]
			h.Values = h.Values[:n-1]
		}
	}
	return nil
}

func (p *textParser) item(typ string, toks []string, want int) (*Item, error) {
	if len(toks) < want {
		return nil, fileErr(p.lr.file, p.lr.line, "malformed %s line: expected %d fields, found %d", toks[0], want, len(toks))
	}
	if p.run == nil {
		return nil, fileErr(p.lr.file, p.lr.line, "%s before the run line", toks[0])
	}
	if err := p.flush(); err != nil {
		return nil, err
	}
	return &Item{File: p.lr.file, Line: p.lr.line, Run: p.run, Type: typ, Module: toks[1], Name: toks[2]}, nil
}

func (p *textParser) line(b []byte) error {
	lr := p.lr
	if p.vci && len(b) > 0 && b[0] >= '0' && b[0] <= '9' {
		return p.block(b)
	}
	toks, err := lr.tokens(b)
	if err != nil {
		return err
	}
	if len(toks) == 0 {
		return nil
	}
	kw := toks[0]
	if !p.version {
		switch {
		case kw == "version":
			if err := checkVersion(lr.file, lr.line, toks); err != nil {
				return err
			}
			p.version = true
			return nil
		case kw == "file" && p.vci && lr.line == 1:
			return nil // size and mtime of the .vec: checked by the opener
		default:
			return fileErr(lr.file, lr.line, "not an OMNeT++ result file: it does not begin with a version line")
		}
	}
	switch kw {
	case "run":
		if len(toks) != 2 {
			return fileErr(lr.file, lr.line, "malformed run line")
		}
		if err := p.flush(); err != nil {
			return err
		}
		p.run = &Run{ID: toks[1]}
	case "attr", "itervar", "config":
		if len(toks) != 3 {
			return fileErr(lr.file, lr.line, "malformed %s line: expected a name and a value", kw)
		}
		if p.run == nil {
			return fileErr(lr.file, lr.line, "%s before the run line", kw)
		}
		a := Attr{toks[1], toks[2]}
		switch {
		case kw == "attr" && p.pending != nil:
			p.pending.Attrs = append(p.pending.Attrs, a)
		case kw == "attr" && p.lastVector() != nil:
			v := p.lastVector()
			v.Attrs = append(v.Attrs, a)
		case kw == "attr":
			p.run.Attrs = append(p.run.Attrs, a)
		case kw == "itervar":
			p.run.Itervars = append(p.run.Itervars, a)
		default:
			p.run.Config = append(p.run.Config, a)
		}
	case "par":
		it, err := p.item(TypeParameter, toks, 4)
		if err != nil {
			return err
		}
		it.Text = toks[3]
		p.pending = it
	case "scalar":
		it, err := p.item(TypeScalar, toks, 4)
		if err != nil {
			return err
		}
		v, ok := parseNum(toks[3])
		if !ok {
			return fileErr(lr.file, lr.line, "scalar %s %s: %q is not a number", toks[1], toks[2], toks[3])
		}
		it.Value = v
		p.pending = it
	case "statistic":
		it, err := p.item(TypeStatistic, toks, 3)
		if err != nil {
			return err
		}
		it.Stats = &Stats{Count: -1, Mean: math.NaN(), Stddev: math.NaN(), Min: math.NaN(), Max: math.NaN()}
		p.pending = it
	case "field":
		it := p.pending
		if it == nil || it.Stats == nil {
			return fileErr(lr.file, lr.line, "field line outside a statistic")
		}
		if len(toks) != 3 {
			return fileErr(lr.file, lr.line, "malformed field line")
		}
		v, ok := parseNum(toks[2])
		if !ok {
			return fileErr(lr.file, lr.line, "field %s: %q is not a number", toks[1], toks[2])
		}
		s := it.Stats
		switch toks[1] {
		case "count":
			if v < 0 || v != math.Trunc(v) {
				return fileErr(lr.file, lr.line, "field count: %q is not a count", toks[2])
			}
			s.Count = int64(v)
		case "mean":
			s.Mean = v
		case "stddev":
			s.Stddev = v
		case "min":
			s.Min = v
		case "max":
			s.Max = v
		case "sum":
			s.Sum = v
		case "sqrsum":
			s.SqrSum = v
		case "weights", "sumweights":
			s.Weighted, s.SumWeights = true, v
		case "weightedSum":
			s.Weighted, s.Sum = true, v
		case "weightedSqrSum":
			s.Weighted, s.SqrSum = true, v
		}
	case "bin":
		it := p.pending
		if it == nil || it.Stats == nil {
			return fileErr(lr.file, lr.line, "bin line outside a statistic")
		}
		if len(toks) != 3 {
			return fileErr(lr.file, lr.line, "malformed bin line")
		}
		edge, ok1 := parseNum(toks[1])
		val, ok2 := parseNum(toks[2])
		if !ok1 || !ok2 {
			return fileErr(lr.file, lr.line, "bin: not a number")
		}
		if it.Hist == nil {
			it.Hist = &Histogram{}
		}
		h := it.Hist
		if math.IsInf(edge, -1) {
			h.Underflows = val
			break
		}
		if n := len(h.Edges); n > 0 && !(edge > h.Edges[n-1]) {
			return fileErr(lr.file, lr.line, "bin edges must increase")
		}
		h.Edges = append(h.Edges, edge)
		h.Values = append(h.Values, val)
	case "vector":
		if !p.vci {
			return fileErr(lr.file, lr.line, "vector declaration in a scalar file")
		}
		if len(toks) < 4 || len(toks) > 5 {
			return fileErr(lr.file, lr.line, "malformed vector line")
		}
		if p.run == nil {
			return fileErr(lr.file, lr.line, "vector before the run line")
		}
		id, err := strconv.ParseInt(toks[1], 10, 64)
		if err != nil || id < 0 {
			return fileErr(lr.file, lr.line, "vector id %q is not a number", toks[1])
		}
		if p.byID[id] != nil {
			return fileErr(lr.file, lr.line, "vector %d declared twice", id)
		}
		cols := "TV"
		if len(toks) == 5 {
			cols = toks[4]
		}
		vec, err := newVector(p.vecFile, id, cols)
		if err != nil {
			return fileErr(lr.file, lr.line, "%v", err)
		}
		it := &Item{File: p.vecFile, Line: lr.line, Run: p.run, Type: TypeVector, Module: toks[2], Name: toks[3], Vector: vec}
		vec.item = it
		p.byID[id] = vec
		p.vectors = append(p.vectors, it)
	default:
		return fileErr(lr.file, lr.line, "unknown line kind %q", kw)
	}
	return nil
}

func (p *textParser) lastVector() *Item {
	if !p.vci || len(p.vectors) == 0 {
		return nil
	}
	return p.vectors[len(p.vectors)-1]
}

// block reads an index line: vector id, offset, length, first and last
// event, first and last time, count, min, max, sum, sum of squares.
func (p *textParser) block(b []byte) error {
	lr := p.lr
	f := bytes.Fields(b)
	if len(f) != 12 {
		return fileErr(lr.file, lr.line, "malformed index line: expected 12 fields, found %d", len(f))
	}
	id, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil {
		return fileErr(lr.file, lr.line, "malformed index line: vector id %q", f[0])
	}
	vec := p.byID[id]
	if vec == nil {
		return fileErr(lr.file, lr.line, "index block of undeclared vector %d", id)
	}
	var blk Block
	off, err1 := strconv.ParseInt(string(f[1]), 10, 64)
	n, err2 := strconv.ParseInt(string(f[2]), 10, 64)
	cnt, err3 := strconv.ParseInt(string(f[7]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || off < 0 || n < 0 || cnt < 0 {
		return fileErr(lr.file, lr.line, "malformed index line: offset, length and count must be non-negative integers")
	}
	blk.Offset, blk.Length, blk.Count = off, n, cnt
	var nums [4]float64
	for i, k := range []int{8, 9, 10, 11} {
		v, ok := parseNum(string(f[k]))
		if !ok {
			return fileErr(lr.file, lr.line, "malformed index line: %q is not a number", f[k])
		}
		nums[i] = v
	}
	vec.addBlock(blk, nums[0], nums[1], nums[2], nums[3])
	return nil
}

// readText parses a text result file from r. For a .vci (vecFile names
// its .vec) vector items are emitted after the whole index is read, since
// a vector's blocks are listed at the end.
func readText(file string, r io.Reader, vecFile string, emit func(*Item) error) error {
	p := &textParser{lr: newLineReader(file, r), emit: emit, vci: vecFile != "", vecFile: vecFile, byID: map[int64]*Vector{}}
	for {
		b, err := p.lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := p.line(b); err != nil {
			return err
		}
	}
	if !p.version {
		return fileErr(file, 0, "empty file: not an OMNeT++ result file")
	}
	if err := p.flush(); err != nil {
		return err
	}
	for _, it := range p.vectors {
		it.Vector.finish()
		if err := emit(it); err != nil {
			return err
		}
	}
	return nil
}
