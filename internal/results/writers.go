package results

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
)

// csvWriter writes RFC 4180 CSV. Cells are written as they stream: a
// vector's times are copied from the .vec straight into their cell.
type csvWriter struct {
	w   *bufio.Writer
	t   *Table
	buf []byte
}

func newCSVWriter(w io.Writer) *csvWriter { return &csvWriter{w: bufio.NewWriterSize(w, 256<<10)} }

func (c *csvWriter) header(t *Table) error {
	c.t = t
	for i, col := range t.cols {
		if i > 0 {
			c.w.WriteByte(',')
		}
		c.text(col.name)
	}
	_, err := c.w.WriteString("\n")
	return err
}

func (c *csvWriter) text(s string) {
	if !strings.ContainsAny(s, ",\"\r\n") {
		c.w.WriteString(s)
		return
	}
	c.w.WriteByte('"')
	c.w.WriteString(strings.ReplaceAll(s, `"`, `""`))
	c.w.WriteByte('"')
}

func (c *csvWriter) write(r *row) error {
	for i, col := range c.t.cols {
		if i > 0 {
			c.w.WriteByte(',')
		}
		v := col.get(r)
		switch v.kind {
		case kStr:
			c.text(v.s)
		case kNum:
			c.buf = appendFloat(c.buf[:0], v.f)
			c.w.Write(c.buf)
		case kInt:
			c.buf = fmt.Appendf(c.buf[:0], "%d", v.i)
			c.w.Write(c.buf)
		case kNums:
			// Lists are quoted, space-separated, as opp_scavetool writes them.
			c.w.WriteByte('"')
			for j, f := range v.fs {
				if j > 0 {
					c.w.WriteByte(' ')
				}
				c.buf = appendFloat(c.buf[:0], f)
				c.w.Write(c.buf)
			}
			c.w.WriteByte('"')
		case kVec:
			c.w.WriteByte('"')
			first := true
			err := v.vec.EachField(v.col, func(b []byte) error {
				if !first {
					c.w.WriteByte(' ')
				}
				first = false
				_, err := c.w.Write(b)
				return err
			})
			if err != nil {
				return err
			}
			c.w.WriteByte('"')
		}
	}
	_, err := c.w.WriteString("\n")
	return err
}

func (c *csvWriter) close() error { return c.w.Flush() }

// jsonWriter writes JSON lines: one object per row, absent cells left out.
// Infinities and NaN, which JSON has no numbers for, are the strings
// "inf", "-inf" and "nan".
type jsonWriter struct {
	w   *bufio.Writer
	t   *Table
	buf []byte
}

func newJSONWriter(w io.Writer) *jsonWriter { return &jsonWriter{w: bufio.NewWriterSize(w, 256<<10)} }

func (j *jsonWriter) header(t *Table) error { j.t = t; return nil }

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c < 0x20:
				b = fmt.Appendf(b, `\u%04x`, c)
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+w]...)
		}
		i += w
	}
	return append(b, '"')
}

func appendJSONNum(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		b = append(b, '"')
		b = appendFloat(b, f)
		return append(b, '"')
	}
	return appendFloat(b, f)
}

// jsonField turns a field as a .vec writes it into a JSON number.
func appendJSONField(b, field []byte) []byte {
	if len(field) > 0 && (field[0] >= '0' && field[0] <= '9' || field[0] == '-' && len(field) > 1 && field[1] >= '0' && field[1] <= '9') {
		if field[0] == '.' || (len(field) > 1 && field[0] == '-' && field[1] == '.') {
			return append(append(b, '0'), field...)
		}
		return append(b, field...)
	}
	b = append(b, '"')
	b = append(b, strings.ToLower(string(field))...)
	return append(b, '"')
}

func (j *jsonWriter) write(r *row) error {
	b := append(j.buf[:0], '{')
	first := true
	for _, col := range j.t.cols {
		v := col.get(r)
		if v.kind == kNone {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, col.name)
		b = append(b, ':')
		switch v.kind {
		case kStr:
			b = appendJSONString(b, v.s)
		case kNum:
			b = appendJSONNum(b, v.f)
		case kInt:
			b = fmt.Appendf(b, "%d", v.i)
		case kNums:
			b = append(b, '[')
			for k, f := range v.fs {
				if k > 0 {
					b = append(b, ',')
				}
				b = appendJSONNum(b, f)
			}
			b = append(b, ']')
		case kVec:
			// Stream the vector: what is buffered so far goes out first.
			if _, err := j.w.Write(append(b, '[')); err != nil {
				return err
			}
			b = b[:0]
			n := 0
			var fb []byte
			err := v.vec.EachField(v.col, func(field []byte) error {
				fb = fb[:0]
				if n > 0 {
					fb = append(fb, ',')
				}
				n++
				fb = appendJSONField(fb, field)
				_, err := j.w.Write(fb)
				return err
			})
			if err != nil {
				return err
			}
			b = append(b, ']')
		}
	}
	b = append(b, '}', '\n')
	j.buf = b
	_, err := j.w.Write(b)
	return err
}

func (j *jsonWriter) close() error { return j.w.Flush() }

// parquetWriter writes one Parquet file. Columns are optional (absent
// cells are nulls), lists are repeated doubles; the value column is split
// into value (a scalar's number) and value_text (a parameter's text), since
// a Parquet column has one type. A vector is written as several rows of at
// most vectorChunk points each, so that memory stays bounded however long
// the vector is, and row groups are cut by size for the same reason.
type parquetWriter struct {
	out    io.Writer
	w      *parquet.GenericWriter[any]
	t      *Table
	index  map[string]int // leaf column name -> column index
	leaves []pqLeaf       // in column index order
	rows   []parquet.Row  // small rows, batched
	row    parquet.Row    // reused for each row built
	bytes  int            // written since the last row group was cut
}

type pqLeaf struct {
	name string
	col  *column
	text bool // value_text
	typ  colType
}

const (
	vectorChunk   = 16 << 10
	parquetBuffer = 8 << 20 // bytes written into a row group before it is cut
)

func newParquetWriter(w io.Writer) *parquetWriter { return &parquetWriter{out: w} }

func (p *parquetWriter) header(t *Table) error {
	p.t = t
	g := parquet.Group{}
	byName := map[string]pqLeaf{}
	for i := range t.cols {
		c := &t.cols[i]
		switch c.typ {
		case cString:
			g[c.name] = parquet.Optional(parquet.String())
		case cFloat:
			g[c.name] = parquet.Optional(parquet.Leaf(parquet.DoubleType))
		case cInt:
			g[c.name] = parquet.Optional(parquet.Int(64))
		case cList, cVector:
			g[c.name] = parquet.Repeated(parquet.Leaf(parquet.DoubleType))
		case cValue:
			g[c.name] = parquet.Optional(parquet.Leaf(parquet.DoubleType))
			g[c.name+"_text"] = parquet.Optional(parquet.String())
			byName[c.name+"_text"] = pqLeaf{name: c.name + "_text", col: c, text: true, typ: cString}
		}
		byName[c.name] = pqLeaf{name: c.name, col: c, typ: c.typ}
	}
	schema := parquet.NewSchema("results", g)
	p.index = map[string]int{}
	for i, path := range schema.Columns() {
		l := byName[path[0]]
		p.leaves = append(p.leaves, l)
		p.index[l.name] = i
	}
	// Column pages wait for their row group in temporary files, not in
	// memory: a row group of long vectors is larger than the memory budget.
	cfg, err := parquet.NewWriterConfig(schema, parquet.Compression(&parquet.Snappy), parquet.PageBufferSize(256<<10),
		parquet.ColumnPageBuffers(parquet.NewFileBufferPool("", "simswarm-parquet-*")))
	if err != nil {
		return err
	}
	p.w = parquet.NewGenericWriter[any](p.out, cfg)
	return nil
}

func (p *parquetWriter) write(r *row) error {
	if v := r.it.Vector; v != nil && !r.chunked && p.hasVectorColumns() {
		// Long vectors become several rows.
		chunk := &row{it: r.it, prov: r.prov, chunked: true}
		err := v.Points(func(t, x float64) error {
			chunk.times = append(chunk.times, t)
			chunk.values = append(chunk.values, x)
			if len(chunk.times) == vectorChunk {
				if err := p.add(chunk); err != nil {
					return err
				}
				chunk.times, chunk.values = nil, nil
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(chunk.times) > 0 || v.Count == 0 {
			return p.add(chunk)
		}
		return nil
	}
	return p.add(r)
}

func (p *parquetWriter) hasVectorColumns() bool {
	_, ok := p.index["vectime"]
	return ok
}

func (p *parquetWriter) add(r *row) error {
	out := p.row[:0]
	for i, l := range p.leaves {
		v := l.col.get(r)
		switch {
		case l.col.typ == cValue && l.text:
			if v.kind == kStr {
				out = append(out, parquet.ByteArrayValue([]byte(v.s)).Level(0, 1, i))
				p.bytes += len(v.s)
			} else {
				out = append(out, parquet.Value{}.Level(0, 0, i))
			}
		case l.col.typ == cValue:
			if v.kind == kNum {
				out = append(out, parquet.DoubleValue(v.f).Level(0, 1, i))
			} else {
				out = append(out, parquet.Value{}.Level(0, 0, i))
			}
		case v.kind == kNone:
			out = append(out, parquet.Value{}.Level(0, 0, i))
		case l.typ == cString:
			out = append(out, parquet.ByteArrayValue([]byte(v.s)).Level(0, 1, i))
			p.bytes += len(v.s)
		case l.typ == cFloat:
			out = append(out, parquet.DoubleValue(v.f).Level(0, 1, i))
		case l.typ == cInt:
			out = append(out, parquet.Int64Value(v.i).Level(0, 1, i))
		case l.typ == cList || l.typ == cVector:
			if len(v.fs) == 0 {
				out = append(out, parquet.Value{}.Level(0, 0, i))
				break
			}
			for k, f := range v.fs {
				rep := 1
				if k == 0 {
					rep = 0
				}
				out = append(out, parquet.DoubleValue(f).Level(rep, 1, i))
			}
			p.bytes += 8 * len(v.fs)
		}
	}
	p.bytes += 8 * len(out)
	p.row = out
	// Rows are copied into the writer's column buffers: a long one is
	// handed over at once, short ones in batches.
	if len(out) > 256 {
		if err := p.flush(false); err != nil {
			return err
		}
		if _, err := p.w.WriteRows([]parquet.Row{out}); err != nil {
			return err
		}
	} else {
		p.rows = append(p.rows, out.Clone())
	}
	if len(p.rows) >= 1024 || p.bytes >= parquetBuffer {
		return p.flush(p.bytes >= parquetBuffer)
	}
	return nil
}

func (p *parquetWriter) flush(group bool) error {
	if len(p.rows) > 0 {
		if _, err := p.w.WriteRows(p.rows); err != nil {
			return err
		}
		p.rows = p.rows[:0]
	}
	if group {
		p.bytes = 0
		return p.w.Flush()
	}
	return nil
}

func (p *parquetWriter) close() error {
	if p.w == nil {
		return nil
	}
	if err := p.flush(false); err != nil {
		return err
	}
	return p.w.Close()
}
