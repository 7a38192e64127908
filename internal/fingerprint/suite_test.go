package fingerprint

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// inetSuites are INET 4.5.4's own suite files, kept in ../shared as data.
func inetSuites(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("..", "..", "..", "shared", "inet-fingerprint", "*.csv"))
	if len(files) == 0 {
		t.Skip("../shared/inet-fingerprint is absent: INET's suites are data the project does not ship")
	}
	return files
}

func TestINETSuitesRoundTrip(t *testing.T) {
	total := 0
	for _, f := range inetSuites(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Parse(filepath.Base(f), bytes.NewReader(data))
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		total += len(s.Tests)
		var out bytes.Buffer
		// Rewriting every test with the fingerprints it already has
		// must give the file back byte for byte.
		if err := s.WriteTo(&out, func(t *Test) []string { return t.Fingerprints }); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Errorf("%s: not written back byte for byte", f)
		}
	}
	// Test lines: not blank, not comments. Counted independently here.
	want := 0
	for _, f := range inetSuites(t) {
		data, _ := os.ReadFile(f)
		for _, l := range strings.Split(string(data), "\n") {
			l = strings.TrimSpace(l)
			if l != "" && !strings.HasPrefix(l, "#") {
				want++
			}
		}
	}
	if total != want || total < 900 {
		t.Errorf("parsed %d tests, the files have %d test lines", total, want)
	}
}

func TestLineShapes(t *testing.T) {
	src := strings.Join([]string{
		"# working directory, command line arguments, simulation time limit, fingerprint, expected result, tags",
		"/examples/ethernet/TenBaseT1S/, -f validation.ini -c PLCA -r 0, 10ms, 229b-36b8/~tNl, PASS,",
		"# /examples/commented/, -c X, 1s, 0000-0000/tplx, PASS,",
		"",
		"/examples/adhoc/qos/,  -f omnetpp.ini -c MacQos -r 1,   10s,  ed2f-2d62/tplx;8a06-c4b3/~tNl;2bec-1d6f/~tND, FAIL, wireless adhoc Ipv4",
		"/old/,  -f omnetpp.ini -c General,   100s,  87cf-952a/tplx",
		".,  -f two.ini -r '$a==1 && $b==\"x,y\"', , 3a79-5915/tplx, ERROR, EthernetCsmaMac # trailing, comment",
		"/examples/mpls/,  -c General -r 0,  100s,  0000-0000/tplx, ERROR,    # <!> Error in module, with commas",
	}, "\n") + "\n"
	s, err := Parse("x.csv", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Tests) != 5 {
		t.Fatalf("%d tests, want 5", len(s.Tests))
	}
	cases := []struct {
		wd, args, limit string
		fps             []string
		exp             Result
		tags            []string
		line            int
	}{
		{"examples/ethernet/TenBaseT1S", "-f validation.ini -c PLCA -r 0", "10ms", []string{"229b-36b8/~tNl"}, Pass, nil, 2},
		{"examples/adhoc/qos", "-f omnetpp.ini -c MacQos -r 1", "10s", []string{"ed2f-2d62/tplx", "8a06-c4b3/~tNl", "2bec-1d6f/~tND"}, Fail, []string{"wireless", "adhoc", "Ipv4"}, 5},
		{"old", "-f omnetpp.ini -c General", "100s", []string{"87cf-952a/tplx"}, Pass, nil, 6},
		{".", `-f two.ini -r '$a==1 && $b=="x,y"'`, "", []string{"3a79-5915/tplx"}, Error, []string{"EthernetCsmaMac"}, 7},
		{"examples/mpls", "-c General -r 0", "100s", []string{"0000-0000/tplx"}, Error, nil, 8},
	}
	for i, c := range cases {
		got := s.Tests[i]
		if got.WorkDir != c.wd || got.Args != c.args || got.SimTimeLimit != c.limit ||
			!reflect.DeepEqual(got.Fingerprints, c.fps) || got.Expected != c.exp ||
			!reflect.DeepEqual(got.Tags, c.tags) || got.Line != c.line {
			t.Errorf("test %d: got %+v", i, *got)
		}
	}
	argv, err := s.Tests[3].Argv()
	if err != nil || !reflect.DeepEqual(argv, []string{"-f", "two.ini", "-r", `$a==1 && $b=="x,y"`}) {
		t.Errorf("argv %q, %v", argv, err)
	}

	// An update replaces only the fingerprint field's bytes.
	var out bytes.Buffer
	err = s.WriteTo(&out, func(t *Test) []string {
		if t.Line == 5 {
			return []string{"aaaa-bbbb/tplx", "cccc-dddd/~tNl", "eeee-ffff/~tND"}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(src, "ed2f-2d62/tplx;8a06-c4b3/~tNl;2bec-1d6f/~tND", "aaaa-bbbb/tplx;cccc-dddd/~tNl;eeee-ffff/~tND", 1)
	if out.String() != want {
		t.Errorf("updated:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestBadLines(t *testing.T) {
	cases := map[string]string{
		"/a/, -c X, 10s":                                       "x.csv:2: 3 fields",
		"/a/, -c X, 10s, 1234-5678/tplx, MAYBE,":               `unknown expected result "MAYBE"`,
		"/../outside/, -c X, 10s, 1234-5678/tplx, PASS,":       "outside the project",
		"/a/../../b/, -c X, 10s, 1234-5678/tplx, PASS,":        "outside the project",
		"/a/, -c X, 10s, 12345678/tplx, PASS,":                 `malformed fingerprint "12345678/tplx"`,
		"/a/, -c X, 10s, 1234-5678, PASS,":                     "malformed fingerprint",
		"/a/, -c X, 10s, , PASS,":                              "malformed fingerprint",
		"/a/, -c 'X, 10s, 1234-5678/tplx, PASS,":               "unterminated ' quote",
		"/a/, -c X, ten, 1234-5678/tplx, PASS,":                "simulation time limit",
		", -c X, 10s, 1234-5678/tplx, PASS,":                   "empty working directory",
		"/a/, -c X, 10s, 1234-5678/tplx;1111-2222/tplx, PASS,": "ingredient set twice",
	}
	for line, want := range cases {
		_, err := Parse("x.csv", strings.NewReader("# header\n"+line+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "x.csv:2: ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want x.csv:2: ...%s", line, err, want)
		}
	}
	for _, src := range []string{"", "# only a comment\n\n", "\n"} {
		if _, err := Parse("e.csv", strings.NewReader(src)); err == nil || !strings.Contains(err.Error(), "no tests") {
			t.Errorf("%q: %v", src, err)
		}
	}
}

func TestSelection(t *testing.T) {
	s, err := Parse("x.csv", strings.NewReader(
		"/a/, -c One, 1s, 1234-5678/tplx, PASS, wireless ipv4\n/b/, -c Two, 1s, 1234-5678/tplx, PASS, wired\n"))
	if err != nil {
		t.Fatal(err)
	}
	sel, _ := NewSelection("Two", nil)
	if sel.Has(s.Tests[0]) || !sel.Has(s.Tests[1]) {
		t.Error("--match Two")
	}
	sel, _ = NewSelection("", []string{"wireless"})
	if !sel.Has(s.Tests[0]) || sel.Has(s.Tests[1]) {
		t.Error("--tags wireless")
	}
	// INET's fingerprinttest -m matches "/a/ -c One wireless ipv4".
	sel, _ = NewSelection("^/a/ .*wireless", nil)
	if !sel.Has(s.Tests[0]) || sel.Has(s.Tests[1]) {
		t.Error("--match as INET's -m")
	}
	if _, err := NewSelection("(", nil); err == nil || !strings.Contains(err.Error(), "--match") {
		t.Errorf("bad regexp: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("/a/, -c X -r 0, 10s, 1234-5678/tplx;abcd-ef01/~tNl, PASS, a b # c\n")
	f.Add(".,  -f x.ini -r '$a==\"1,2\"', , 3a79-5915/tplx, ERROR,\n")
	f.Add("/old/, -c G, 100s, 87cf-952a/tplx")
	f.Fuzz(func(t *testing.T, src string) {
		s, err := Parse("f.csv", strings.NewReader(src))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		var out bytes.Buffer
		if err := s.WriteTo(&out, func(t *Test) []string { return t.Fingerprints }); err != nil {
			t.Fatal(err)
		}
		if out.String() != src {
			t.Fatalf("round trip changed %q to %q", src, out.String())
		}
		for _, tt := range s.Tests {
			if strings.HasPrefix(tt.WorkDir, "..") || strings.HasPrefix(tt.WorkDir, "/") {
				t.Fatalf("workdir %q escapes", tt.WorkDir)
			}
		}
	})
}
