package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestLarge: a big data file is named once; a big library a local build
// left, and small files, never; the same file changed is named again.
func TestLarge(t *testing.T) {
	root := t.TempDir()
	big := func(name, head string) {
		f, err := os.Create(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(head)
		f.Truncate(LargeFile + 1) // sparse: costs no disk
		f.Close()
	}
	big("trace.pcap", "pcap")
	big("libsim.so", "\x7fELF")
	os.WriteFile(filepath.Join(root, "small.ini"), []byte("[General]\n"), 0o644)
	memo := filepath.Join(t.TempDir(), "warned")
	scan := func() *Manifest {
		m, err := Scan(context.Background(), root, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	got := Large(root, scan(), LargeFile, memo)
	if len(got) != 1 || got[0].Path != "trace.pcap" {
		t.Fatalf("Large = %+v, want trace.pcap alone", got)
	}
	if got := Large(root, scan(), LargeFile, memo); len(got) != 0 {
		t.Errorf("named again: %+v", got)
	}
	big("trace.pcap", "pcap, another capture")
	if got := Large(root, scan(), LargeFile, memo); len(got) != 1 {
		t.Errorf("a changed file is not named: %+v", got)
	}
}
