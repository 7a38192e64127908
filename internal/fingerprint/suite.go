// Package fingerprint reads and writes fingerprint test suites in INET's CSV
// format and turns what a simulation printed into a verdict.
//
// A suite has one test per line:
//
//	# working directory, command line arguments, simulation time limit, fingerprint, expected result, tags
//	/examples/ethernet/TenBaseT1S/, -f validation.ini -c PLCA -r 0, 10ms, 229b-36b8/~tNl, PASS,
//
// The files are edited by hand and kept aligned with spaces, so a suite is
// kept as its raw lines: rewriting one with new fingerprints replaces only the
// bytes of the fingerprint field, and a suite in which nothing changed is
// written back byte for byte.
package fingerprint

import (
	"bufio"
	"bytes"
	"fmt"
	"github.com/simswarm/simswarm/internal/shellwords"
	"io"
	"path"
	"regexp"
	"strings"
)

// Result is what a test is expected to do or did: its fingerprints match
// (PASS), differ (FAIL), or the simulation did not end normally (ERROR).
type Result string

// The results a suite names.
const (
	Pass  Result = "PASS"
	Fail  Result = "FAIL"
	Error Result = "ERROR"
)

// Test is one line of a suite that names a test.
type Test struct {
	File string // the suite's path, for messages
	Line int    // 1-based
	// WorkDir is relative to the project root, cleaned and without a
	// leading slash ("." for the root itself).
	WorkDir      string
	Dir          string // the working directory as written ("/examples/ethernet/lans/")
	Args         string // the arguments as written, quotes included
	SimTimeLimit string // "" where the field is empty
	Fingerprints []string
	Expected     Result
	Tags         []string

	line  int // index into Suite.lines
	fpOff int // byte range of the fingerprint field's text within the line
	fpEnd int
}

// ID names a test in tables and messages the way a user finds it again:
// the working directory and the arguments.
func (t *Test) ID() string {
	return t.WorkDir + " " + t.Args
}

// Where is "file:line" of the test.
func (t *Test) Where() string {
	return fmt.Sprintf("%s:%d", t.File, t.Line)
}

// Argv splits Args into words as a shell would for the quoting these files
// use: single and double quotes group, backslash escapes outside single
// quotes.
func (t *Test) Argv() ([]string, error) {
	return shellwords.Split(t.Args)
}

// Suite is a parsed suite file.
type Suite struct {
	Path  string
	Tests []*Test
	lines []string // raw, each with its line ending
}

// ingredientsRE is OMNeT++'s fingerprint form: 4+4 hex digits and the
// ingredient letters of its calculator, which INET extends with ~-filters.
var fingerprintRE = regexp.MustCompile(`^[0-9a-fA-F]{4}-[0-9a-fA-F]{4}/[A-Za-z~]+$`)

// Parse reads a suite. name is used in messages. Errors name the file and
// line.
func Parse(name string, r io.Reader) (*Suite, error) {
	s := &Suite{Path: name}
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		raw, err := br.ReadString('\n')
		if raw != "" {
			s.lines = append(s.lines, raw)
			t, perr := parseLine(name, n, raw)
			if perr != nil {
				return nil, perr
			}
			if t != nil {
				t.line = len(s.lines) - 1
				s.Tests = append(s.Tests, t)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
	}
	if len(s.Tests) == 0 {
		return nil, fmt.Errorf("%s: no tests in the suite (every line is empty or a comment)", name)
	}
	return s, nil
}

// field is one comma-separated field of a line, trimmed, with its position.
type field struct {
	text     string
	off, end int
}

// splitFields cuts a line at commas outside quotes, stopping at a '#'
// outside quotes (the rest is a comment). Positions are byte offsets of the
// trimmed text.
func splitFields(line string) (fields []field, err error) {
	var quote byte
	start := 0
	emit := func(end int) {
		off, e := start, end
		for off < e && isSpace(line[off]) {
			off++
		}
		for e > off && isSpace(line[e-1]) {
			e--
		}
		fields = append(fields, field{line[off:e], off, e})
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == ',':
			emit(i)
			start = i + 1
		case c == '#':
			emit(i)
			return fields, nil
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	emit(len(line))
	return fields, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func parseLine(file string, n int, raw string) (*Test, error) {
	text := strings.TrimSpace(raw)
	if text == "" || strings.HasPrefix(text, "#") {
		return nil, nil
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s:%d: %s", file, n, fmt.Sprintf(format, a...))
	}
	fields, err := splitFields(raw)
	if err != nil {
		return nil, bad("%v", err)
	}
	// A trailing comma leaves an empty last field ("..., PASS,"): the tags.
	// Old suites have four fields and no expected result (PASS).
	if len(fields) != 4 && len(fields) != 5 && len(fields) != 6 {
		return nil, bad("%d fields, want 6 (working directory, arguments, simulation time limit, fingerprint, expected result, tags) or the old 4", len(fields))
	}
	t := &Test{File: file, Line: n, Expected: Pass}
	wd := fields[0].text
	if wd == "" {
		return nil, bad("empty working directory")
	}
	clean := path.Clean("/" + strings.TrimPrefix(wd, "/"))
	if rel := strings.TrimPrefix(wd, "/"); strings.HasPrefix(path.Clean(rel), "..") || path.IsAbs(path.Clean(rel)) {
		return nil, bad("working directory %q is outside the project", wd)
	}
	t.Dir = wd
	t.WorkDir = strings.TrimPrefix(clean, "/")
	if t.WorkDir == "" {
		t.WorkDir = "."
	}
	t.Args = fields[1].text
	if _, err := shellwords.Split(t.Args); err != nil {
		return nil, bad("arguments: %v", err)
	}
	t.SimTimeLimit = fields[2].text
	if t.SimTimeLimit != "" && !simTimeRE.MatchString(t.SimTimeLimit) {
		return nil, bad("simulation time limit %q is not a time such as 10s or 100ms", t.SimTimeLimit)
	}
	fp := fields[3]
	t.fpOff, t.fpEnd = fp.off, fp.end
	for _, f := range strings.Split(fp.text, ";") {
		f = strings.TrimSpace(f)
		if !fingerprintRE.MatchString(f) {
			return nil, bad("malformed fingerprint %q: want 4+4 hex digits and ingredients, e.g. 229b-36b8/tplx", f)
		}
		t.Fingerprints = append(t.Fingerprints, f)
	}
	if !sameIngredientsOnce(t.Fingerprints) {
		return nil, bad("fingerprint %q names an ingredient set twice", fp.text)
	}
	if len(fields) >= 5 {
		switch r := Result(fields[4].text); r {
		case Pass, Fail, Error:
			t.Expected = r
		default:
			return nil, bad("unknown expected result %q: want PASS, FAIL or ERROR", fields[4].text)
		}
	}
	if len(fields) == 6 && fields[5].text != "" {
		t.Tags = strings.Fields(fields[5].text)
	}
	return t, nil
}

var simTimeRE = regexp.MustCompile(`^-?[0-9.]+(e[-+]?[0-9]+)?\s*(s|ms|us|ns|ps|fs|as|m|min|h|d)?$`)

func sameIngredientsOnce(fps []string) bool {
	seen := map[string]bool{}
	for _, f := range fps {
		_, ing, _ := strings.Cut(f, "/")
		if seen[ing] {
			return false
		}
		seen[ing] = true
	}
	return true
}

// Ingredients is the ingredient set of a fingerprint ("tplx" of
// "229b-36b8/tplx").
func Ingredients(fp string) string {
	_, ing, _ := strings.Cut(fp, "/")
	return ing
}

// WriteTo writes the suite with each test's fingerprint field replaced by
// what update returns for it; tests for which update returns nil keep their
// line as it was. Everything else (comments, spacing, order, line endings)
// is written as read.
func (s *Suite) WriteTo(w io.Writer, update func(*Test) []string) error {
	byLine := make(map[int]*Test, len(s.Tests))
	for _, t := range s.Tests {
		byLine[t.line] = t
	}
	bw := bufio.NewWriter(w)
	for i, raw := range s.lines {
		if t, ok := byLine[i]; ok && update != nil {
			if fps := update(t); fps != nil {
				raw = raw[:t.fpOff] + strings.Join(fps, ";") + raw[t.fpEnd:]
			}
		}
		if _, err := bw.WriteString(raw); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Subset writes a header line and the given tests' lines: INET's FAILED
// and ERROR files ("# Failures:", "# Errors:" first, as INET's tool writes
// them).
func (s *Suite) Subset(w io.Writer, header string, tests []*Test, update func(*Test) []string) error {
	var buf bytes.Buffer
	buf.WriteString(header + "\n")
	for _, t := range tests {
		raw := s.lines[t.line]
		if update != nil {
			if fps := update(t); fps != nil {
				raw = raw[:t.fpOff] + strings.Join(fps, ";") + raw[t.fpEnd:]
			}
		}
		if !strings.HasSuffix(raw, "\n") {
			raw += "\n"
		}
		buf.WriteString(raw)
	}
	_, err := w.Write(buf.Bytes())
	return err
}
