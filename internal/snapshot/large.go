package snapshot

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/simswarm/simswarm/internal/atomicfile"
)

// LargeFile is the size from which Large calls a snapshot file large: every
// campaign of a new snapshot uploads it, every runner host fetches it.
const LargeFile = 50 << 20

// Large returns the files of m over limit that are not build outputs (an
// executable, a shared library or an archive left by a local build is
// expected and named as such by its first bytes), which the user has not
// been told about yet. memo (a file, "" for none) remembers what was told,
// by content hash, so each such file is named once, not on every run.
func Large(root string, m *Manifest, limit int64, memo string) []Entry {
	told := map[string]bool{}
	if memo != "" {
		if f, err := os.Open(memo); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				told[sc.Text()] = true
			}
			f.Close()
		}
	}
	var out []Entry
	for _, e := range m.Entries {
		if e.Hash == "" || e.Size <= limit || told[e.Hash+" "+e.Path] || buildOutput(filepath.Join(root, filepath.FromSlash(e.Path))) {
			continue
		}
		out = append(out, e)
		told[e.Hash+" "+e.Path] = true
	}
	if len(out) > 0 && memo != "" {
		lines := make([]string, 0, len(told))
		for k := range told {
			lines = append(lines, k)
		}
		sort.Strings(lines)
		_ = atomicfile.WriteFile(memo, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	}
	return out
}

// buildOutput tells a compiler's or linker's output by its magic number.
func buildOutput(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 8)
	n, _ := f.Read(head)
	head = head[:n]
	for _, magic := range [][]byte{
		[]byte("\x7fELF"),                                  // Linux executables, .so, .o
		[]byte("!<arch>\n"),                                // .a
		{0xcf, 0xfa, 0xed, 0xfe}, {0xce, 0xfa, 0xed, 0xfe}, // Mach-O
		[]byte("MZ"), // Windows executables
	} {
		if bytes.HasPrefix(head, magic) {
			return true
		}
	}
	return false
}
