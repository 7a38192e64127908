package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// put writes rel under root with the given content and permissions,
// creating directories.
func put(t testing.TB, root, rel, content string, perm os.FileMode) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // umask
		t.Fatal(err)
	}
}

func symlink(t testing.TB, root, rel, target string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func read(t testing.TB, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func exists(root, rel string) bool {
	_, err := os.Lstat(filepath.Join(root, filepath.FromSlash(rel)))
	return err == nil
}

func mustScan(t testing.TB, root string, opts Options) *Manifest {
	t.Helper()
	m, err := Scan(context.Background(), root, opts)
	if err != nil {
		t.Fatalf("Scan(%s): %v", root, err)
	}
	return m
}

// paths lists a manifest's paths.
func paths(m *Manifest) []string {
	var ps []string
	for _, e := range m.Entries {
		ps = append(ps, e.Path)
	}
	return ps
}

func entry(m *Manifest, p string) (Entry, bool) {
	for _, e := range m.Entries {
		if e.Path == p {
			return e, true
		}
	}
	return Entry{}, false
}

// isolateGit keeps git from finding a repository above dir (the test's temp
// directory might sit inside one) and isolates git from the user's config.
func isolateGit(t testing.TB, dir string) {
	t.Helper()
	t.Setenv("GIT_CEILING_DIRECTORIES", filepath.Dir(dir))
	cfg := filepath.Join(t.TempDir(), "gitconfig")
	if err := os.WriteFile(cfg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_CONFIG_GLOBAL", cfg)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	t.Setenv("GIT_AUTHOR_NAME", "test")
	t.Setenv("GIT_AUTHOR_EMAIL", "test@example.com")
	t.Setenv("GIT_COMMITTER_NAME", "test")
	t.Setenv("GIT_COMMITTER_EMAIL", "test@example.com")
}

func needGit(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
}

func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// memStore is an in-memory blob store standing in for the caller's object
// store, which lives in another package.
type memStore struct {
	mu      sync.Mutex
	blobs   map[string][]byte
	fetches map[string]int
}

func newStore() *memStore {
	return &memStore{blobs: map[string][]byte{}, fetches: map[string]int{}}
}

// add stores the blobs of every regular file of m, read from root.
func (s *memStore) add(t testing.TB, root string, m *Manifest) {
	t.Helper()
	for _, e := range m.Entries {
		if e.Mode == ModeSymlink {
			continue
		}
		b := []byte(read(t, root, e.Path))
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != e.Hash {
			t.Fatalf("%s changed since the scan", e.Path)
		}
		s.mu.Lock()
		s.blobs[e.Hash] = b
		s.mu.Unlock()
	}
}

func (s *memStore) fetch(ctx context.Context, hash string, w io.Writer) error {
	s.mu.Lock()
	b, ok := s.blobs[hash]
	s.fetches[hash]++
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("no blob %s", hash)
	}
	_, err := io.Copy(w, bytes.NewReader(b))
	return err
}

func (s *memStore) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.fetches {
		n += c
	}
	return n
}
