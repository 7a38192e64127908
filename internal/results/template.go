package results

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// A template simulator (simswarm.toml's [run] command: ns-3, any program)
// writes result files of its own, named in simswarm.toml's [results]
// section. Each is a CSV file with a header row or JSON (an array of
// objects, one object, or one object per line). They are concatenated
// into one table whose first columns say which run wrote each row: its
// number, its variables and repetition (from the provenance file, since the
// files themselves do not know), and the file.

// FindTemplateFiles lists the files under dir that match the globs
// (relative to dir; a glob without a slash matches a file's name at any
// depth).
func FindTemplateFiles(dir string, globs []string) ([]string, error) {
	for _, g := range globs {
		if _, err := path.Match(g, ""); err != nil {
			return nil, fmt.Errorf("[results] files: bad pattern %q: %v", g, err)
		}
	}
	var out []string
	err := walkFiles(dir, func(p string) {
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == ProvenanceFile {
			return
		}
		for _, g := range globs {
			target := rel
			if !strings.Contains(g, "/") {
				target = path.Base(rel)
			}
			if ok, _ := path.Match(g, target); ok {
				out = append(out, p)
				break
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("results directory %s: %w", dir, unwrapPath(err))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w matching simswarm.toml's [results] files %q in it", dir, ErrNoFiles, strings.Join(globs, ", "))
	}
	sort.Strings(out)
	return out, nil
}

// tmplRow is one record of a template result file.
type tmplRow struct {
	prov   *Provenance
	file   string
	values map[string]string
}

// eachRecord reads a CSV or JSON result file record by record.
func eachRecord(file string, fn func(keys []string, m map[string]string) error) error {
	f, err := os.Open(file)
	if err != nil {
		return fileErr(file, 0, "%v", unwrapPath(err))
	}
	defer f.Close()
	if strings.HasSuffix(strings.ToLower(file), ".csv") {
		return eachCSV(file, f, fn)
	}
	return eachJSON(file, f, fn)
}

func eachCSV(file string, r io.Reader, fn func([]string, map[string]string) error) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return fileErr(file, 1, "empty CSV file: a header row is needed")
	}
	if err != nil {
		return csvErr(file, err)
	}
	header = append([]string(nil), header...)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return csvErr(file, err)
		}
		m := make(map[string]string, len(header))
		for i, h := range header {
			m[h] = rec[i]
		}
		if err := fn(header, m); err != nil {
			return err
		}
	}
}

func csvErr(file string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fileErr(file, pe.Line, "%v", pe.Err)
	}
	return fileErr(file, 0, "%v", err)
}

func eachJSON(file string, r io.Reader, fn func([]string, map[string]string) error) error {
	br := bufio.NewReader(r)
	dec := json.NewDecoder(br)
	dec.UseNumber()
	first, err := firstByte(br)
	if err != nil {
		return fileErr(file, 0, "empty JSON file")
	}
	// Objects are read token by token to keep their keys in order: the
	// table's columns follow the file's.
	one := func() error {
		t, err := dec.Token()
		if err != nil {
			return jsonErr(file, dec, err)
		}
		if d, ok := t.(json.Delim); !ok || d != '{' {
			return fileErr(file, 0, "not JSON objects (at byte %d): found %v", dec.InputOffset(), t)
		}
		var keys []string
		m := map[string]string{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return jsonErr(file, dec, err)
			}
			k, _ := kt.(string)
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return jsonErr(file, dec, err)
			}
			var s string
			switch {
			case json.Unmarshal(v, &s) == nil:
			case string(v) == "null":
				continue
			default:
				s = string(bytes.TrimSpace(v))
			}
			if _, dup := m[k]; !dup {
				keys = append(keys, k)
			}
			m[k] = s
		}
		if _, err := dec.Token(); err != nil {
			return jsonErr(file, dec, err)
		}
		return fn(keys, m)
	}
	if first == '[' {
		if _, err := dec.Token(); err != nil {
			return jsonErr(file, dec, err)
		}
		for dec.More() {
			if err := one(); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return jsonErr(file, dec, err)
		}
		return nil
	}
	for {
		if err := one(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func firstByte(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.Peek(1)
		if err != nil {
			return 0, err
		}
		if b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t' {
			br.ReadByte()
			continue
		}
		return b[0], nil
	}
}

func jsonErr(file string, dec *json.Decoder, err error) error {
	if errors.Is(err, io.EOF) {
		return err
	}
	return fileErr(file, 0, "not JSON objects (at byte %d): %v", dec.InputOffset(), err)
}

// ExportTemplate writes the template result files as one table.
func ExportTemplate(ctx context.Context, w io.Writer, dir string, files []string, opt ExportOptions) (*Report, error) {
	rep := &Report{}
	if err := CheckFormat(opt.Format); err != nil {
		return rep, err
	}
	prov := opt.Provenance
	if prov == nil {
		var err error
		if prov, err = LoadProvenance(dir); err != nil {
			return rep, err
		}
	}
	// First pass: every file's columns and whether each is numeric, and a
	// provenance record for every file.
	var vars, cols []string
	seenVar, seenCol := map[string]bool{}, map[string]bool{}
	numeric := map[string]bool{}
	var good []string
	provOf := map[string]*Provenance{}
	for _, f := range files {
		p := prov.Lookup(f)
		if p == nil {
			err := fileErr(f, 0, "no run of this results directory wrote it (%s names no such file): its run's variables are unknown", ProvenanceFile)
			if !opt.KeepGoing {
				return rep, err
			}
			rep.Failed = append(rep.Failed, err)
			continue
		}
		err := eachRecord(f, func(keys []string, m map[string]string) error {
			for _, k := range keys {
				v := m[k]
				if !seenCol[k] {
					seenCol[k] = true
					cols = append(cols, k)
					numeric[k] = true
				}
				if v != "" {
					if _, err := strconv.ParseFloat(v, 64); err != nil {
						numeric[k] = false
					}
				}
			}
			return ctx.Err()
		})
		if err != nil {
			if !opt.KeepGoing {
				return rep, err
			}
			rep.Failed = append(rep.Failed, err)
			continue
		}
		provOf[f] = p
		good = append(good, f)
		for _, a := range p.Vars {
			if a.Name != "repetition" && !seenVar[a.Name] {
				seenVar[a.Name] = true
				vars = append(vars, a.Name)
			}
		}
	}
	t := &Table{}
	taken := map[string]bool{"run": true, "repetition": true, "file": true}
	t.cols = append(t.cols, column{"run", cInt, func(r *row) cell { return cell{kind: kInt, i: int64(r.tmpl.prov.Run)} }})
	for _, v := range vars {
		taken[v] = true
		t.cols = append(t.cols, column{v, cString, func(r *row) cell {
			s, _ := lookup(r.tmpl.prov.Vars, v)
			return str(s)
		}})
	}
	t.cols = append(t.cols,
		column{"repetition", cString, func(r *row) cell { s, _ := lookup(r.tmpl.prov.Vars, "repetition"); return str(s) }},
		column{"file", cString, func(r *row) cell {
			rel, err := filepath.Rel(dir, r.tmpl.file)
			if err != nil {
				return str(r.tmpl.file)
			}
			return str(filepath.ToSlash(rel))
		}})
	for _, c := range cols {
		name := c
		if taken[name] {
			name = "data:" + c
		}
		typ := cString
		if numeric[c] {
			typ = cFloat
		}
		t.cols = append(t.cols, column{name, typ, func(r *row) cell {
			s, ok := r.tmpl.values[c]
			if !ok || s == "" {
				return cell{}
			}
			if typ == cFloat {
				f, _ := strconv.ParseFloat(s, 64)
				return num(f)
			}
			return str(s)
		}})
	}
	if opt.Provenance != nil {
		t.cols = append(t.cols, provenanceColumns()...)
	}
	var rw rowWriter
	var sum *Summarizer
	if opt.Summary {
		sum = NewSummarizer()
	} else {
		var err error
		if rw, err = newRowWriter(opt.Format, w); err != nil {
			return rep, err
		}
		if err := rw.header(t); err != nil {
			return rep, err
		}
	}
	for _, f := range good {
		p := provOf[f]
		run := &Run{}
		for _, a := range p.Vars {
			if a.Name != "repetition" {
				run.Itervars = append(run.Itervars, a)
			}
		}
		err := eachRecord(f, func(_ []string, m map[string]string) error {
			rep.Rows++
			if sum != nil {
				for _, c := range cols {
					if v, ok := m[c]; ok && v != "" && numeric[c] {
						x, _ := strconv.ParseFloat(v, 64)
						sum.Add(run, "", c, x)
					}
				}
				return nil
			}
			r := &row{tmpl: &tmplRow{prov: p, file: f, values: m}, prov: p}
			if opt.Provenance == nil {
				r.prov = nil
			}
			return rw.write(r)
		})
		if err != nil {
			if !opt.KeepGoing {
				return rep, err
			}
			rep.Failed = append(rep.Failed, err)
			continue
		}
		rep.Files++
	}
	if sum != nil {
		return rep, WriteSummary(w, opt.Format, sum.Groups())
	}
	return rep, rw.close()
}

// TemplateRecords calls fn with every record of a template result file
// (a CSV row, a JSON object): its keys in order and their values as text.
func TemplateRecords(file string, fn func(keys []string, values map[string]string) error) error {
	return eachRecord(file, fn)
}
