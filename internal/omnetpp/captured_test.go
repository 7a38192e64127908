package omnetpp

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// capturedDir holds real OMNeT++ 6.1 / INET 4.5 output; the repository sits
// beside shared/ both in development and in CI.
const capturedDir = "../../../shared/omnetpp-output"

func haveCaptured() bool {
	st, err := os.Stat(capturedDir)
	return err == nil && st.IsDir()
}

// captured returns the contents of one captured file, skipping the test when
// the captured output is not there at all.
func captured(t testing.TB, name string) []byte {
	t.Helper()
	if !haveCaptured() {
		t.Skipf("captured OMNeT++ output not found at %s (expected beside the repository); skipping", capturedDir)
	}
	data, err := os.ReadFile(filepath.Join(capturedDir, name))
	if err != nil {
		t.Fatalf("captured case missing: %v", err)
	}
	return data
}

// splitExit separates a trailing "exit=N" line from the stdout it was
// captured with (the filter case stores both in one file).
func splitExit(t testing.TB, data []byte) ([]byte, int) {
	t.Helper()
	trimmed := bytes.TrimRight(data, "\n")
	i := bytes.LastIndexByte(trimmed, '\n')
	last := trimmed[i+1:]
	code, ok := bytes.CutPrefix(last, []byte("exit="))
	if !ok {
		t.Fatalf("no exit=N line at the end of %q", data)
	}
	n, err := strconv.Atoi(string(code))
	if err != nil {
		t.Fatalf("bad exit line %q", last)
	}
	return data[:i+1], n
}

func exitCode(t testing.TB, name string) int {
	t.Helper()
	_, n := splitExit(t, captured(t, name+".exit"))
	return n
}
