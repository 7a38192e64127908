package results

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// exportFuzzed writes the inputs as files, exports them, and checks what
// any export must be: an error that names the file, or CSV whose every row
// has the header's columns.
func exportFuzzed(t *testing.T, files []string, vectors bool) {
	var buf bytes.Buffer
	_, err := Export(context.Background(), &buf, files, ExportOptions{Format: FormatCSV, Options: Options{Vectors: vectors}})
	if err != nil {
		var fe *FileError
		if !errors.As(err, &fe) && !bytes.Contains([]byte(err.Error()), []byte(filepath.Dir(files[0]))) {
			t.Fatalf("error names no file: %v", err)
		}
		if bytes.ContainsRune([]byte(err.Error()), '\n') {
			t.Fatalf("error is not one line: %q", err)
		}
		return
	}
	r := csv.NewReader(&buf)
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("export is not CSV: %v\n%s", err, buf.String())
	}
	if len(recs) == 0 {
		t.Fatal("no header")
	}
}

func seedSca(f *testing.F) []byte {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "omnetpp-output", capturedSca))
	if err != nil {
		b = []byte("version 3\nrun r\nattr repetition 0\nitervar n 1\n\nscalar m s 1.5\nattr unit s\nstatistic m h\nfield count 2\nfield mean 1\nbin\t-inf\t0\nbin\t0\t2\nbin\t1\t0\npar m p \"\\\"x\\\"\"\n")
	}
	return b
}

// FuzzSca: no .sca content makes the reader panic, hang or export
// malformed CSV, and a histogram always has one value fewer than edges.
func FuzzSca(f *testing.F) {
	good := seedSca(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("version 3\nrun r\nstatistic m h\nfield count 1\nbin 0 1\nbin 0 2\n"))
	f.Add([]byte("version 3\nrun \"unterminated\nscalar a b nan\n"))
	f.Add([]byte("version 3\nrun r\nscalar \"a b\" \"c\\x41\" -inf\nattr x \"\\\"\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f.sca")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		err := ReadFile(context.Background(), p, Options{}, func(it *Item) error {
			if h := it.Hist; h != nil && len(h.Edges) > 0 && len(h.Values) != len(h.Edges)-1 {
				return fmt.Errorf("histogram with %d edges and %d values", len(h.Edges), len(h.Values))
			}
			return nil
		})
		var fe *FileError
		if err != nil && !errors.As(err, &fe) {
			t.Fatalf("not a FileError: %v", err)
		}
		exportFuzzed(t, []string{p}, false)
	})
}

// FuzzVec: any .vec/.vci pair either exports as CSV or fails with a
// one-line error.
func FuzzVec(f *testing.F) {
	vec := "version 3\nrun r\nvector 0 m v ETV\n0\t1\t0.5\t3\n0\t2\t1\t4\n"
	off := len("version 3\nrun r\nvector 0 m v ETV\n")
	vci := fmt.Sprintf("file %d 0\nversion 3\nrun r\nvector 0 m v ETV\nattr unit s\n0\t%d %d 1 2 0.5 1 2 3 4 7 25\n", len(vec), off, len(vec)-off)
	f.Add([]byte(vec), []byte(vci))
	f.Add([]byte(vec), []byte(vci[:len(vci)-5]))
	f.Add([]byte("version 3\nrun r\nvector 0 m v TV\n0\t0.5\t3\n"), []byte("version 3\nrun r\nvector 0 m v TV\n0\t33 10 0 0 0 0 1 3 3 3 9\n"))
	f.Fuzz(func(t *testing.T, vecData, vciData []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "f.vec")
		os.WriteFile(p, vecData, 0o644)
		os.WriteFile(filepath.Join(dir, "f.vci"), vciData, 0o644)
		exportFuzzed(t, []string{p}, true)
	})
}
