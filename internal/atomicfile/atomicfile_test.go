package atomicfile

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// smallDisk mounts a tmpfs of size bytes and fills it, so that the next
// page a file needs is refused with ENOSPC.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes a file until the disk is full.
func fill(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// TestAppendLineDiskFull: a line that meets a full disk half way is cut
// back: the file keeps its last complete state, and once there is room the
// next line starts on a line of its own.
func TestAppendLineDiskFull(t *testing.T) {
	dir := smallDisk(t, "64k")
	path := filepath.Join(dir, "log.jsonl")
	// The file's page is full but for 10 bytes: the next line's first 10
	// bytes fit, the rest needs a page the disk does not have.
	first := strings.Repeat("x", 4096-10-1) + "\n"
	if err := AppendLine(path, []byte(first), 0o644); err != nil {
		t.Fatal(err)
	}
	fill(t, dir)
	line := []byte(`{"key":"` + strings.Repeat("k", 100) + `"}` + "\n")
	err := AppendLine(path, line, 0o644)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append on a full disk: %v, want ENOSPC", err)
	}
	if b, _ := os.ReadFile(path); string(b) != first {
		t.Fatalf("after the failed append the file holds %d bytes (%q at the end), want the %d it had", len(b), tail(b), len(first))
	}
	os.Remove(filepath.Join(dir, "filler"))
	if err := AppendLine(path, line, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != first+string(line) {
		t.Fatalf("with room again the file ends %q", tail(b))
	}
}

// TestAppendLineTornTail: a torn last line (a crash mid-write) is cut off
// before the next line, which would otherwise continue it.
func TestAppendLineTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	os.WriteFile(path, []byte("one\ntwo\n{\"half"), 0o644)
	if err := AppendLine(path, []byte("three\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "one\ntwo\nthree\n" {
		t.Fatalf("got %q", b)
	}
	os.WriteFile(path, []byte("no newline at all"), 0o644)
	if err := AppendLine(path, []byte("first\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "first\n" {
		t.Fatalf("got %q", b)
	}
	if err := AppendLine(path, []byte("no newline"), 0o644); err == nil {
		t.Fatal("a line without its newline was appended")
	}
}

// TestWriteFileDiskFull: a rewrite that meets a full disk leaves the old
// file whole and no temporary file behind.
func TestWriteFileDiskFull(t *testing.T) {
	dir := smallDisk(t, "64k")
	path := filepath.Join(dir, "history.json")
	old := []byte(`{"walls":{"a":1}}`)
	if err := WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	fill(t, dir)
	if err := WriteFile(path, bytes.Repeat([]byte("y"), 100000), 0o644); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("rewrite on a full disk: %v, want ENOSPC", err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, old) {
		t.Fatalf("the old file was damaged: %q", tail(b))
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("left behind: %v", ents)
	}
	os.Remove(filepath.Join(dir, "filler"))
	if err := WriteFile(path, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want the old file's 0600", fi.Mode().Perm())
	}
}

func tail(b []byte) []byte {
	if len(b) > 40 {
		return b[len(b)-40:]
	}
	return b
}
