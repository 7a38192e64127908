package archive

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

func write(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is subject to umask
		t.Fatal(err)
	}
}

// TestPackUnpackRoundTrip packs a tree with plain and executable files,
// nested directories and symlinks (relative, absolute, dangling) and
// checks that unpacking restores each as it was.
func TestPackUnpackRoundTrip(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "a.txt"), "alpha\n", 0o644)
	write(t, filepath.Join(src, "bin", "sim"), "#!/bin/sh\necho hi\n", 0o755)
	write(t, filepath.Join(src, "deep", "er", "est", "x.sca"), strings.Repeat("scalar 1\n", 5000), 0o600)
	write(t, filepath.Join(src, "empty"), "", 0o644)
	links := map[string]string{"link": "a.txt", "bin/up": "../deep/er", "dangling": "nowhere/at/all", "abs": "/etc/hostname"}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(src, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(src, "a.txt"), old, old); err != nil {
		t.Fatal(err)
	}
	regular := map[string]os.FileMode{"a.txt": 0o644, "bin/sim": 0o755, "deep/er/est/x.sca": 0o600, "empty": 0o644}
	// Names in no particular order; a directory name in the list is
	// skipped (only files are packed).
	names := []string{"link", "deep/er/est/x.sca", "bin/sim", "a.txt", "dangling", "bin/up", "empty", "abs", "deep"}

	var buf bytes.Buffer
	n, err := Pack(&buf, src, names)
	if err != nil {
		t.Fatal(err)
	}
	var wantBytes int64
	for name := range regular {
		fi, _ := os.Stat(filepath.Join(src, name))
		wantBytes += fi.Size()
	}
	if n != wantBytes {
		t.Errorf("Pack wrote %d content bytes, want %d", n, wantBytes)
	}

	dst := filepath.Join(t.TempDir(), "not", "yet")
	entries, err := Unpack(bytes.NewReader(buf.Bytes()), dst)
	if err != nil {
		t.Fatal(err)
	}
	// Entries are the regular files, in the sorted order Pack wrote them.
	wantEntries := []Entry{{"a.txt", 6}, {"bin/sim", 18}, {"deep/er/est/x.sca", 45000}, {"empty", 0}}
	if !reflect.DeepEqual(entries, wantEntries) {
		t.Errorf("entries = %v, want %v", entries, wantEntries)
	}
	for name, mode := range regular {
		want, _ := os.ReadFile(filepath.Join(src, name))
		p := filepath.Join(dst, filepath.FromSlash(name))
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: content differs (err %v)", name, err)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		// Unpack adds owner-write so that a later unpack can replace it.
		if fi.Mode().Perm() != mode|0o200 || !fi.Mode().IsRegular() {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), mode|0o200)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dst, "bin", "sim")); fi.Mode()&0o111 != 0o111 {
		t.Errorf("exec bit lost: %v", fi.Mode())
	}
	if fi, _ := os.Stat(filepath.Join(dst, "a.txt")); !fi.ModTime().Equal(old) {
		t.Errorf("mtime %v, want %v", fi.ModTime(), old)
	}
	for name, target := range links {
		got, err := os.Readlink(filepath.Join(dst, filepath.FromSlash(name)))
		if err != nil || got != target {
			t.Errorf("symlink %s -> %q (err %v), want -> %q", name, got, err, target)
		}
	}
	if _, err := os.Lstat(filepath.Join(dst, "deep", "er", "est")); err != nil {
		t.Errorf("nested directories not created: %v", err)
	}

	// Equal trees pack alike, whatever order the names come in.
	var again bytes.Buffer
	rev := append([]string(nil), names...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	if _, err := Pack(&again, src, rev); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Error("packing the same tree twice gave different streams")
	}
}

// TestUnpackReplaces: unpacking over an earlier version replaces files,
// including read-only ones and a symlink in the file's place (the new file
// replaces the link, it is not written through it).
func TestUnpackReplaces(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "f"), "new", 0o444)
	write(t, filepath.Join(src, "l"), "new link place", 0o644)
	var buf bytes.Buffer
	if _, err := Pack(&buf, src, []string{"f", "l"}); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	outside := filepath.Join(t.TempDir(), "victim")
	write(t, outside, "untouched", 0o644)
	write(t, filepath.Join(dst, "f"), "old", 0o444)
	if err := os.Symlink(outside, filepath.Join(dst, "l")); err != nil {
		t.Fatal(err)
	}
	if _, err := Unpack(&buf, dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "f")); string(b) != "new" {
		t.Errorf("f = %q", b)
	}
	if fi, _ := os.Lstat(filepath.Join(dst, "l")); !fi.Mode().IsRegular() {
		t.Errorf("l is %v, want a regular file", fi.Mode())
	}
	if b, _ := os.ReadFile(outside); string(b) != "untouched" {
		t.Errorf("write went through the symlink: victim = %q", b)
	}
}

// entry is one hand-made tar entry, for archives Pack would never write.
type entry struct {
	name, link, body string
}

func craft(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if e.link != "" {
			hdr = &tar.Header{Name: e.name, Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: e.link}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestUnpackRejectsEscapes: each hostile archive must fail, and nothing
// may appear outside the target directory. The target is a subdirectory of
// a parent the test watches, so "../x" would land somewhere visible.
func TestUnpackRejectsEscapes(t *testing.T) {
	cases := []struct {
		name    string
		entries func(outside string) []entry
	}{
		{"dotdot", func(string) []entry { return []entry{{name: "../x", body: "evil"}} }},
		{"nested dotdot", func(string) []entry { return []entry{{name: "a/../../x", body: "evil"}} }},
		{"dotdot symlink name", func(string) []entry { return []entry{{name: "../x", link: "/etc"}} }},
		{"absolute", func(o string) []entry { return []entry{{name: filepath.Join(o, "x"), body: "evil"}} }},
		{"through planted symlink", func(o string) []entry {
			return []entry{{name: "evil", link: o}, {name: "evil/x", body: "evil"}}
		}},
		{"through planted relative symlink", func(string) []entry {
			return []entry{{name: "d/evil", link: "../../outside"}, {name: "d/evil/x", body: "evil"}}
		}},
		{"new directory through planted symlink", func(o string) []entry {
			return []entry{{name: "evil", link: o}, {name: "evil/sub/x", body: "evil"}}
		}},
		{"symlink through planted symlink", func(o string) []entry {
			return []entry{{name: "evil", link: o}, {name: "evil/x", link: "/etc/passwd"}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			outside := filepath.Join(parent, "outside")
			dst := filepath.Join(parent, "dst")
			for _, d := range []string{outside, dst} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Unpack(bytes.NewReader(craft(t, tc.entries(outside)...)), dst)
			if err == nil || !strings.Contains(err.Error(), "unsafe path") {
				t.Errorf("Unpack: err = %v, want an unsafe path error", err)
			}
			for _, dir := range []string{parent, outside} {
				ents, _ := os.ReadDir(dir)
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				want := []string{}
				if dir == parent {
					want = []string{"dst", "outside"}
				}
				if strings.Join(names, ",") != strings.Join(want, ",") {
					t.Errorf("%s holds %q after a rejected archive, want %q", dir, names, want)
				}
			}
		})
	}
}

func TestUnpackGarbage(t *testing.T) {
	if _, err := Unpack(strings.NewReader("this is not zstd"), t.TempDir()); err == nil {
		t.Error("Unpack accepted garbage")
	}
}
