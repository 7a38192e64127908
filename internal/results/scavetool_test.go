package results

import (
	"bytes"
	"context"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// result is one row of either export, keyed the way a user matches them:
// by the run's iteration variables and repetition, module and name.
type result struct {
	value                          string
	count, mean, stddev, min, max  string
	vectime, vecvalue, binedges    string
	binvalues, underflows, overflo string
}

func readCSV(t *testing.T, b []byte) ([]string, [][]string) {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("export is not CSV: %v", err)
	}
	if len(recs) == 0 {
		t.Fatal("empty CSV")
	}
	return recs[0], recs[1:]
}

func colIndex(t *testing.T, header []string) map[string]int {
	idx := map[string]int{}
	for i, h := range header {
		idx[h] = i
	}
	return idx
}

// scavetoolResults reads opp_scavetool's CSV-R export into results keyed by
// (type, iteration variables, repetition, module, name).
func scavetoolResults(t *testing.T, b []byte) map[string]result {
	header, rows := readCSV(t, b)
	c := colIndex(t, header)
	get := func(r []string, name string) string {
		if i, ok := c[name]; ok {
			return r[i]
		}
		return ""
	}
	vars := map[string][]string{}
	rep := map[string]string{}
	for _, r := range rows {
		switch get(r, "type") {
		case "itervar":
			vars[r[c["run"]]] = append(vars[r[c["run"]]], get(r, "attrname")+"="+get(r, "attrvalue"))
		case "runattr":
			if get(r, "attrname") == "repetition" {
				rep[r[c["run"]]] = get(r, "attrvalue")
			}
		}
	}
	out := map[string]result{}
	for _, r := range rows {
		typ := get(r, "type")
		switch typ {
		case "scalar", "statistic", "histogram", "param", "vector":
		default:
			continue
		}
		run := get(r, "run")
		v := append([]string(nil), vars[run]...)
		sort.Strings(v)
		k := strings.Join([]string{typ, strings.Join(v, ","), rep[run], get(r, "module"), get(r, "name")}, "|")
		out[k] = result{value: get(r, "value"), count: get(r, "count"), mean: get(r, "mean"), stddev: get(r, "stddev"),
			min: get(r, "min"), max: get(r, "max"), vectime: get(r, "vectime"), vecvalue: get(r, "vecvalue"),
			binedges: get(r, "binedges"), binvalues: get(r, "binvalues"), underflows: get(r, "underflows"), overflo: get(r, "overflows")}
	}
	return out
}

// ourResults reads simswarm's export, whose iteration variables are columns.
func ourResults(t *testing.T, b []byte, itervars ...string) map[string]result {
	header, rows := readCSV(t, b)
	c := colIndex(t, header)
	for _, v := range append(itervars, "repetition") {
		if _, ok := c[v]; !ok {
			t.Fatalf("export has no %s column: %v", v, header)
		}
	}
	get := func(r []string, name string) string {
		if i, ok := c[name]; ok {
			return r[i]
		}
		return ""
	}
	out := map[string]result{}
	for _, r := range rows {
		var v []string
		for _, iv := range itervars {
			v = append(v, iv+"="+get(r, iv))
		}
		sort.Strings(v)
		k := strings.Join([]string{get(r, "type"), strings.Join(v, ","), get(r, "repetition"), get(r, "module"), get(r, "name")}, "|")
		if _, dup := out[k]; dup {
			t.Fatalf("two rows for %s", k)
		}
		out[k] = result{value: get(r, "value"), count: get(r, "count"), mean: get(r, "mean"), stddev: get(r, "stddev"),
			min: get(r, "min"), max: get(r, "max"), vectime: get(r, "vectime"), vecvalue: get(r, "vecvalue"),
			binedges: get(r, "binedges"), binvalues: get(r, "binvalues"), underflows: get(r, "underflows"), overflo: get(r, "overflows")}
	}
	return out
}

func sameNumber(a, b string, rel float64) bool {
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	if err1 != nil || err2 != nil {
		return a == b
	}
	if x == y || (math.IsNaN(x) && math.IsNaN(y)) {
		return true
	}
	return math.Abs(x-y) <= rel*math.Max(math.Abs(x), math.Abs(y))
}

func sameNumbers(a, b string, rel float64) bool {
	fa, fb := strings.Fields(a), strings.Fields(b)
	if len(fa) != len(fb) {
		return false
	}
	for i := range fa {
		if !sameNumber(fa[i], fb[i], rel) {
			return false
		}
	}
	return true
}

// compareExports checks every item of the reference against ours. Numbers
// the file stores must agree to within rel (0 for text files, whose numbers
// both tools copy; opp_scavetool prints a SQLite file's doubles with 14
// significant digits); numbers opp_scavetool derives (a statistic's mean
// and standard deviation, from the sums) to within 1e-12 as well.
func compareExports(t *testing.T, ref, ours map[string]result, rel float64) {
	t.Helper()
	counts := map[string]int{}
	for k, want := range ref {
		got, ok := ours[k]
		if !ok {
			t.Errorf("%s: in opp_scavetool's export, not in ours", k)
			continue
		}
		typ := k[:strings.IndexByte(k, '|')]
		counts[typ]++
		switch typ {
		case "scalar":
			if !sameNumber(got.value, want.value, rel) {
				t.Errorf("%s: value %s, opp_scavetool says %s", k, got.value, want.value)
			}
		case "param":
			if got.value != want.value {
				t.Errorf("%s: value %q, opp_scavetool says %q", k, got.value, want.value)
			}
		case "statistic", "histogram":
			if got.count != want.count {
				t.Errorf("%s: count %s, opp_scavetool says %s", k, got.count, want.count)
			}
			for _, f := range [][3]string{{"min", got.min, want.min}, {"max", got.max, want.max}} {
				if !sameNumber(f[1], f[2], rel) {
					t.Errorf("%s: %s %s, opp_scavetool says %s", k, f[0], f[1], f[2])
				}
			}
			// opp_scavetool recomputes mean and standard deviation from the
			// sums; the file holds the ones the simulation computed.
			if !sameNumber(got.mean, want.mean, max(rel, 1e-12)) {
				t.Errorf("%s: mean %s, opp_scavetool says %s", k, got.mean, want.mean)
			}
			if !sameNumber(got.stddev, want.stddev, max(rel, 1e-12)) {
				t.Errorf("%s: stddev %s, opp_scavetool says %s", k, got.stddev, want.stddev)
			}
			if typ == "histogram" {
				if !sameNumbers(got.binedges, want.binedges, rel) || !sameNumbers(got.binvalues, want.binvalues, rel) ||
					!sameNumber(got.underflows, want.underflows, rel) || !sameNumber(got.overflo, want.overflo, rel) {
					t.Errorf("%s: bins differ:\n ours   %s | %s | %s %s\n theirs %s | %s | %s %s", k, got.binedges, got.binvalues, got.underflows, got.overflo,
						want.binedges, want.binvalues, want.underflows, want.overflo)
				}
			}
		case "vector":
			if !sameNumbers(got.vectime, want.vectime, rel) || !sameNumbers(got.vecvalue, want.vecvalue, rel) {
				t.Errorf("%s: vector data differs (%d vs %d times)", k, len(strings.Fields(got.vectime)), len(strings.Fields(want.vectime)))
			}
		}
	}
	for k := range ours {
		if _, ok := ref[k]; !ok {
			t.Errorf("%s: in our export, not in opp_scavetool's", k)
		}
	}
	t.Logf("compared with opp_scavetool: %v", counts)
}

func exportCSV(t *testing.T, files []string, opt ExportOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	opt.Format = FormatCSV
	rep, err := Export(context.Background(), &buf, files, opt)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	if rep.Files == 0 || rep.Rows == 0 {
		t.Fatalf("Export read %d files, wrote %d rows", rep.Files, rep.Rows)
	}
	return buf.Bytes()
}

// TestEqualsScavetoolOnAloha is the acceptance test: every
// scalar, statistic and histogram (and parameter) of aloha's
// PureAlohaExperiment, exported by simswarm, equals opp_scavetool's CSV-R
// export of the same files, matched by iteration variables, repetition,
// module and name.
func TestEqualsScavetoolOnAloha(t *testing.T) {
	opp := omnetppDir(t)
	dir := runAloha(t, opp)
	files, err := Find(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 42 {
		t.Fatalf("aloha wrote %d .sca files, want 42", len(files))
	}
	ref := filepath.Join(t.TempDir(), "ref.csv")
	scavetool(t, opp, append([]string{"export", "-F", "CSV-R", "-o", ref}, files...)...)
	want, err := os.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	theirs := scavetoolResults(t, want)
	ours := ourResults(t, exportCSV(t, files, ExportOptions{}), "numHosts", "iaMean")
	if len(theirs) < 42*7 {
		t.Fatalf("opp_scavetool exported only %d items", len(theirs))
	}
	compareExports(t, theirs, ours, 0)
}

// Vectors, read through the .vci, equal opp_scavetool's vectime/vecvalue.
func TestVectorsEqualScavetool(t *testing.T) {
	opp := omnetppDir(t)
	dir := runAloha(t, opp)
	files, _ := filepath.Glob(filepath.Join(dir, "*iaMean=1-#*.vec"))
	if len(files) != 6 {
		t.Fatalf("found %d vector files, want 6", len(files))
	}
	ref := filepath.Join(t.TempDir(), "ref.csv")
	scavetool(t, opp, append([]string{"export", "-F", "CSV-R", "-o", ref}, files...)...)
	want, _ := os.ReadFile(ref)
	ours := ourResults(t, exportCSV(t, files, ExportOptions{Options: Options{Vectors: true}}), "numHosts", "iaMean")
	compareExports(t, scavetoolResults(t, want), ours, 0)
}

// OMNeT++'s SQLite result files, written by the simulation itself, read
// the same as opp_scavetool reads them.
func TestSQLiteEqualsScavetool(t *testing.T) {
	opp := omnetppDir(t)
	dir := runAloha(t, opp, "--outputscalarmanager-class=omnetpp::envir::SqliteOutputScalarManager",
		"--outputvectormanager-class=omnetpp::envir::SqliteOutputVectorManager")
	var files []string
	for _, pat := range []string{"*iaMean=3-#*.sca", "*iaMean=3-#*.vec"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		files = append(files, m...)
	}
	if len(files) != 12 {
		t.Fatalf("found %d files, want 12", len(files))
	}
	head, _ := os.ReadFile(files[0])
	if !bytes.HasPrefix(head, sqliteMagic) {
		t.Fatalf("%s is not a SQLite file", files[0])
	}
	ref := filepath.Join(t.TempDir(), "ref.csv")
	scavetool(t, opp, append([]string{"export", "-F", "CSV-R", "-o", ref}, files...)...)
	want, _ := os.ReadFile(ref)
	ours := ourResults(t, exportCSV(t, files, ExportOptions{Options: Options{Vectors: true}}), "numHosts", "iaMean")
	compareExports(t, scavetoolResults(t, want), ours, 1e-13)
}

// The filter selects what opp_scavetool's -f selects.
func TestFilterEqualsScavetool(t *testing.T) {
	opp := omnetppDir(t)
	dir := runAloha(t, opp)
	files, _ := Find(dir, false)
	for _, expr := range []string{
		`channelUtilization:last AND itervar:numHosts =~ {10..15}`,
		`module =~ "Aloha.host[2..3]" OR (type =~ histogram AND NOT name =~ *Multiplicity*)`,
		`runattr:repetition =~ 1 AND config:sim-time-limit =~ 5min AND attr:source =~ *collision*`,
	} {
		ref := filepath.Join(t.TempDir(), "ref.csv")
		scavetool(t, opp, append([]string{"export", "-F", "CSV-R", "-f", expr, "-o", ref}, files...)...)
		want, _ := os.ReadFile(ref)
		theirs := scavetoolResults(t, want)
		if len(theirs) == 0 {
			t.Fatalf("%s: opp_scavetool selects nothing; the test would prove nothing", expr)
		}
		f := mustFilter(t, expr)
		var buf bytes.Buffer
		if _, err := Export(context.Background(), &buf, files, ExportOptions{Format: FormatCSV, Options: Options{Filter: f}}); err != nil {
			t.Fatal(err)
		}
		ours := ourResults(t, buf.Bytes(), "numHosts", "iaMean")
		if len(ours) != len(theirs) {
			t.Errorf("%s: %d items, opp_scavetool %d", expr, len(ours), len(theirs))
		}
		compareExports(t, theirs, ours, 0)
	}
}
