package omnetpp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestResultRunNumberCaptured(t *testing.T) {
	for _, name := range []string{
		"PureAlohaExperiment-numHosts=10,iaMean=1-#0.sca",
		"PureAlohaExperiment-numHosts=10,iaMean=1-#0.vci",
	} {
		n, ok := ResultRunNumber(bytes.NewReader(captured(t, name)))
		if !ok || n != 0 {
			t.Errorf("%s: got %d, %v; want 0, true", name, n, ok)
		}
	}
}

// countingReader records how much was read, to show the header limit holds.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestResultRunNumber(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want int
		ok   bool
	}{
		{"version 2", "version 2\nrun Exp-12-20240101\nattr configname Exp\nattr runnumber 12\n\nscalar . x 1\n", 12, true},
		{"crlf and quoted", "version 3\r\nrun r\r\nattr runnumber \"7\"\r\n", 7, true},
		{"after itervars and params", "version 3\nrun r\nitervar a 1\nconfig x 1\npar n p 1\nattr runnumber 3\n", 3, true},
		{"vci first line", "file 1 2\nversion 3\nrun r\nattr runnumber 4\n", 4, true},
		{"header ends first", "version 3\nrun r\nscalar . x 1\nattr runnumber 5\n", 0, false},
		{"vector attr is not the run's", "version 3\nvector 0 m s ETV\nattr runnumber 5\n", 0, false},
		{"no run number", "version 3\nrun r\nattr configname X\n", 0, false},
		{"bad value", "version 3\nattr runnumber -1\n", 0, false},
		{"sqlite", "SQLite format 3\x00\x10\x00", 0, false},
		{"empty", "", 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, ok := ResultRunNumber(strings.NewReader(c.in))
			if n != c.want || ok != c.ok {
				t.Fatalf("got %d, %v; want %d, %v", n, ok, c.want, c.ok)
			}
		})
	}

	if _, ok := ResultRunNumber(failingReader{}); ok {
		t.Error("read error gave a run number")
	}

	// A header whose run number lies past 64 KiB is not found, and no more
	// than that is read even from a huge file.
	var big strings.Builder
	big.WriteString("version 3\nrun r\n")
	for big.Len() < 70<<10 {
		big.WriteString("config **.x " + strings.Repeat("y", 100) + "\n")
	}
	big.WriteString("attr runnumber 1\n")
	big.WriteString(strings.Repeat("vector 1 a b ETV\n", 100000))
	cr := &countingReader{r: strings.NewReader(big.String())}
	if _, ok := ResultRunNumber(cr); ok {
		t.Error("run number beyond 64 KiB found")
	}
	if cr.n > 64<<10 {
		t.Errorf("read %d bytes, want at most 64 KiB", cr.n)
	}

	// A number cut by the 64 KiB limit must not be misread as a shorter one.
	prefix := "version 3\nrun " + strings.Repeat("r", 64<<10-len("version 3\nrun \n")-len("attr runnumber 1")) + "\n"
	cut := prefix + "attr runnumber 12\n"
	if n, ok := ResultRunNumber(strings.NewReader(cut)); ok {
		t.Errorf("cut line read as run %d", n)
	}
}
