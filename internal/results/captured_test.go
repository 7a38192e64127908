package results

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

const capturedSca = "PureAlohaExperiment-numHosts=10,iaMean=1-#0.sca"
const capturedVci = "PureAlohaExperiment-numHosts=10,iaMean=1-#0.vci"

func readAll(t *testing.T, file string, opt Options) []*Item {
	t.Helper()
	var items []*Item
	if err := ReadFile(context.Background(), file, opt, func(it *Item) error { items = append(items, it); return nil }); err != nil {
		t.Fatalf("ReadFile(%s): %v", file, err)
	}
	return items
}

func find(items []*Item, typ, module, name string) *Item {
	for _, it := range items {
		if it.Type == typ && it.Module == module && it.Name == name {
			return it
		}
	}
	return nil
}

// The real .sca of aloha run 0 (OMNeT++ 6.1), read item by item: values
// checked against the file's own lines.
func TestCapturedSca(t *testing.T) {
	items := readAll(t, capturedFile(t, capturedSca), Options{})
	run := items[0].Run
	if run.ID != "PureAlohaExperiment-0-20261121-23:02:00-32488" || run.Repetition() != "0" || run.RunNumber() != 0 {
		t.Errorf("run %q repetition %q number %d", run.ID, run.Repetition(), run.RunNumber())
	}
	if v, _ := run.Itervar("numHosts"); v != "10" {
		t.Errorf("itervar numHosts = %q", v)
	}
	if v, _ := run.Itervar("iaMean"); v != "1" {
		t.Errorf("itervar iaMean = %q", v)
	}
	if run.Attr("iterationvars") != "$numHosts=10, $iaMean=1" || len(run.Config) == 0 || run.Config[0] != (Attr{"result-dir", "results"}) {
		t.Errorf("attrs/config: %q %v", run.Attr("iterationvars"), run.Config[:1])
	}
	counts := map[string]int{}
	for _, it := range items {
		counts[it.Type]++
		if it.Run != run {
			t.Fatal("a second run in a one-run file")
		}
	}
	if counts[TypeScalar] != 7 || counts[TypeHistogram] != 2 || counts[TypeParameter] != 118 {
		t.Errorf("items by type: %v (the file has 7 scalars, 2 histograms, 118 parameters)", counts)
	}
	if d := find(items, TypeScalar, "Aloha.server", "duration"); d == nil || d.Value != 600 {
		t.Errorf("duration: %+v", d)
	}
	h := find(items, TypeHistogram, "Aloha.server", "collisionMultiplicity:histogram")
	if h == nil {
		t.Fatal("no collisionMultiplicity histogram")
	}
	s := h.Stats
	if s.Count != 1331 || s.SumWeights != 1331 || s.Mean != 3.2599549211119 || s.Stddev != 1.640661795065 || s.Min != 2 || s.Max != 12 || s.Sum != 4339 || s.SqrSum != 17725 {
		t.Errorf("stats %+v", s)
	}
	if len(h.Hist.Edges) != 14 || h.Hist.Edges[0] != 0 || h.Hist.Edges[13] != 13 || len(h.Hist.Values) != 13 || h.Hist.Values[2] != 586 || h.Hist.Underflows != 0 || h.Hist.Overflows != 0 {
		t.Errorf("bins %+v", h.Hist)
	}
	if h.Attr("title") != "collision multiplicity" || h.Attr("source") != "collision" {
		t.Errorf("histogram attrs %v", h.Attrs)
	}
	p := find(items, TypeParameter, "Aloha.server", "typename")
	if p == nil || p.Text != `"Server"` {
		t.Errorf("typename parameter %+v", p)
	}
	if x := find(items, TypeParameter, "Aloha.server", "x"); x == nil || x.Text != "548.814m" || x.Attr("unit") != "m" {
		t.Errorf("x parameter %+v", x)
	}
	var sum float64
	for _, v := range h.Hist.Values {
		sum += v
	}
	if sum+h.Hist.Underflows+h.Hist.Overflows != float64(s.Count) {
		t.Errorf("bins hold %v values, count says %d", sum, s.Count)
	}
}

// The real .vci of the same run: vector declarations, attributes and
// blocks as the index lists them.
func TestCapturedVci(t *testing.T) {
	f, err := os.Open(capturedFile(t, capturedVci))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vecs []*Item
	err = readText(f.Name(), f, "run0.vec", func(it *Item) error { vecs = append(vecs, it); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(vecs) != 11 {
		t.Fatalf("%d vectors, the index declares 11", len(vecs))
	}
	v := vecs[0]
	if v.Module != "Aloha.server" || v.Name != "serverChannelState:vector" || v.Vector.Columns != "ETV" || v.Attr("title") != "Channel state" {
		t.Errorf("vector 0: %s %s %s %v", v.Module, v.Name, v.Vector.Columns, v.Attrs)
	}
	vec := v.Vector
	if len(vec.Blocks) != 1 || vec.Blocks[0] != (Block{Offset: 2785, Length: 200342, Count: 7679}) || vec.Min != 0 || vec.Max != 2 || vec.Sum != 8353 {
		t.Errorf("vector 0 index: %+v", vec)
	}
	if last := vecs[10]; last.Module != "Aloha.host[9]" || last.Vector.Count != 1069 || last.Vector.File != "run0.vec" {
		t.Errorf("vector 10: %s count %d file %s", last.Module, last.Vector.Count, last.Vector.File)
	}
}

// Parquet and JSON lines carry the same items as CSV; read back with the
// Parquet library and encoding/json.
func TestFormatsAgree(t *testing.T) {
	sca := capturedFile(t, capturedSca)
	var pq, js bytes.Buffer
	if _, err := Export(context.Background(), &pq, []string{sca}, ExportOptions{Format: FormatParquet}); err != nil {
		t.Fatal(err)
	}
	if _, err := Export(context.Background(), &js, []string{sca}, ExportOptions{Format: FormatJSON}); err != nil {
		t.Fatal(err)
	}
	type rec struct {
		Type      string    `parquet:"type,optional" json:"type"`
		Module    string    `parquet:"module,optional" json:"module"`
		Name      string    `parquet:"name,optional" json:"name"`
		Value     *float64  `parquet:"value,optional" json:"-"`
		ValueText *string   `parquet:"value_text,optional" json:"-"`
		Count     *int64    `parquet:"count,optional" json:"count"`
		Stddev    *float64  `parquet:"stddev,optional" json:"stddev"`
		Binedges  []float64 `parquet:"binedges,list" json:"binedges"`
		NumHosts  string    `parquet:"numHosts,optional" json:"numHosts"`
		Rep       string    `parquet:"repetition,optional" json:"repetition"`
	}
	rows, err := parquet.Read[rec](bytes.NewReader(pq.Bytes()), int64(pq.Len()))
	if err != nil {
		t.Fatalf("read back Parquet: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(js.String()), "\n")
	if len(rows) != 127 || len(lines) != 127 {
		t.Fatalf("%d Parquet rows, %d JSON lines; the file has 127 items", len(rows), len(lines))
	}
	for i, line := range lines {
		var j rec
		var raw map[string]any
		if err := json.Unmarshal([]byte(line), &j); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		json.Unmarshal([]byte(line), &raw)
		p := rows[i]
		if p.Type != j.Type || p.Module != j.Module || p.Name != j.Name || p.NumHosts != "10" || j.NumHosts != "10" || p.Rep != "0" {
			t.Fatalf("row %d: parquet %+v json %+v", i, p, j)
		}
		switch j.Type {
		case "scalar":
			if p.Value == nil || raw["value"] != *p.Value {
				t.Errorf("row %d: value parquet %v json %v", i, p.Value, raw["value"])
			}
		case "param":
			if p.ValueText == nil || raw["value"] != *p.ValueText || p.Value != nil {
				t.Errorf("row %d: parameter text parquet %v json %v", i, p.ValueText, raw["value"])
			}
		case "histogram":
			if *p.Count != *j.Count || *p.Stddev != *j.Stddev || len(p.Binedges) != len(j.Binedges) || len(p.Binedges) < 2 {
				t.Errorf("row %d: histogram parquet %v %v %d json %v %v %d", i, *p.Count, *p.Stddev, len(p.Binedges), *j.Count, *j.Stddev, len(j.Binedges))
			}
		}
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Bad inputs are one-line errors naming the file (and line); with
// KeepGoing the other files' rows are still exported.
func TestBadInputs(t *testing.T) {
	good, err := os.ReadFile(capturedFile(t, capturedSca))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cut := bytes.Index(good, []byte("scalar Aloha.server collisionLength:mean")) + 20
	truncated := writeFile(t, dir, "truncated.sca", string(good[:cut]))
	lineOfCut := bytes.Count(good[:cut], []byte("\n")) + 1
	cases := []struct {
		name, file, want string
		opt              Options
	}{
		{"truncated", truncated, truncated + ":" + strconv.Itoa(lineOfCut) + ": file is truncated", Options{}},
		{"vec without vci", writeFile(t, dir, "a.vec", "version 3\n"), "a.vec: no index a.vci beside it: create it with opp_scavetool index", Options{Vectors: true}},
		{"unknown version", writeFile(t, dir, "v9.sca", "version 9\nrun x\n"), "v9.sca:1: unknown result file version \"9\"", Options{}},
		{"version 2", writeFile(t, dir, "v2.sca", "version 2\nrun x\n"), "v2.sca:1: result file version 2 (OMNeT++ 5 or older) is not supported", Options{}},
		{"not a result file", writeFile(t, dir, "text.sca", "hello\n"), "text.sca:1: not an OMNeT++ result file", Options{}},
		{"empty", writeFile(t, dir, "empty.sca", ""), "empty.sca: empty file", Options{}},
		{"bad scalar", writeFile(t, dir, "bad.sca", "version 3\nrun r\n\nscalar m n x1\n"), `bad.sca:4: scalar m n: "x1" is not a number`, Options{}},
		{"statistic without count", writeFile(t, dir, "nocount.sca", "version 3\nrun r\nstatistic m s\nfield mean 1\n"), "nocount.sca:3: statistic m s has no count field", Options{}},
		{"stale vci", writeFile(t, dir, "b.vec", "version 3\n"), "b.vci:1: stale index", Options{Vectors: true}},
	}
	writeFile(t, dir, "b.vci", "file 999 0\nversion 3\n")
	for _, c := range cases {
		_, err := ReadHeader(c.file, c.opt)
		if err == nil {
			err = ReadFile(context.Background(), c.file, c.opt, func(*Item) error { return nil })
		}
		var fe *FileError
		if !errors.As(err, &fe) {
			t.Errorf("%s: error %v is not a FileError", c.name, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %q, want one line containing %q", c.name, err, c.want)
		}
	}

	// --keep-going: the good file's rows are exported, the bad one named.
	gooddir := t.TempDir()
	ok := writeFile(t, gooddir, "good.sca", string(good))
	bad := writeFile(t, gooddir, "zbad.sca", string(good[:cut]))
	var buf bytes.Buffer
	if _, err := Export(context.Background(), &buf, []string{ok, bad}, ExportOptions{Format: FormatCSV}); err == nil || !strings.Contains(err.Error(), "zbad.sca") {
		t.Errorf("without KeepGoing: %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("a failed export wrote %d bytes", buf.Len())
	}
	rep, err := Export(context.Background(), &buf, []string{ok, bad}, ExportOptions{Format: FormatCSV, KeepGoing: true})
	if err != nil || len(rep.Failed) != 1 || !strings.Contains(rep.Failed[0].Error(), "zbad.sca") || rep.Files != 1 || rep.Rows != 127 {
		t.Errorf("KeepGoing: err %v report %+v", err, rep)
	}
	if n := strings.Count(buf.String(), "\n"); n != 128 {
		t.Errorf("KeepGoing exported %d lines, want header + 127", n)
	}
	if _, err := Find(t.TempDir(), false); !errors.Is(err, ErrNoFiles) {
		t.Errorf("empty directory: %v", err)
	}
}

// A summary over the 2 repetitions of every aloha combination.
func TestSummaryOnAloha(t *testing.T) {
	opp := omnetppDir(t)
	dir := runAloha(t, opp)
	files, _ := Find(dir, false)
	groups, err := Summarize(context.Background(), files, Options{Filter: mustFilter(t, "channelUtilization:last")})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 21 {
		t.Fatalf("%d groups, want 21 combinations of numHosts and iaMean", len(groups))
	}
	// Recompute one group by hand from its two files.
	g := groups[0]
	var vals []float64
	for _, f := range files {
		for _, it := range readAll(t, f, Options{}) {
			n, _ := it.Run.Itervar("numHosts")
			m, _ := it.Run.Itervar("iaMean")
			gn, _ := lookup(g.Vars, "numHosts")
			gm, _ := lookup(g.Vars, "iaMean")
			if it.Type == TypeScalar && it.Name == "channelUtilization:last" && n == gn && m == gm {
				vals = append(vals, it.Value)
			}
		}
	}
	if len(vals) != 2 || g.N != 2 {
		t.Fatalf("group %v: n=%d, found %d values", g.Vars, g.N, len(vals))
	}
	mean := (vals[0] + vals[1]) / 2
	sd := math.Abs(vals[0]-vals[1]) / math.Sqrt2
	hw := 12.706204736 * sd / math.Sqrt2
	if math.Abs(g.Mean-mean) > 1e-15 || math.Abs(g.Stddev-sd) > 1e-12 || math.Abs(g.CI95-hw) > 1e-9 {
		t.Errorf("group %+v, want mean %v sd %v ci %v", g, mean, sd, hw)
	}
}
