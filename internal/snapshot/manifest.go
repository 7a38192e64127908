// Package snapshot turns a project's source tree into a canonical,
// content-addressed manifest and turns a manifest back into files.
//
// A manifest lists files only (regular, executable, symlink); empty
// directories and modification times are deliberately not part of it, so the
// key depends on nothing but paths, content, the executable bit and symlink
// targets. File contents ("blobs") are stored by the caller, one per sha256;
// this package only produces manifests (Scan) and consumes blobs (Materialize).
package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Entry modes.
const (
	ModeFile    = "f" // regular file
	ModeExec    = "x" // regular file with the owner's executable bit
	ModeSymlink = "l" // symbolic link, recorded, never followed
)

// Entry is one file of a snapshot.
type Entry struct {
	Path string `json:"p"`           // slash-separated, relative to the root, no "./"
	Mode string `json:"m"`           // "f" regular, "x" executable, "l" symlink
	Size int64  `json:"s,omitempty"` // content length (regular files)
	Hash string `json:"h,omitempty"` // lowercase hex sha256 of the content (regular files)
	Link string `json:"l,omitempty"` // symlink target (symlinks)
}

// Manifest is the canonical description of a source tree.
type Manifest struct {
	Entries []Entry `json:"entries"` // sorted by Path
}

// Key is the hex sha256 of the canonical encoding (Encode); it is stable
// across machines because the encoding depends on the entries alone.
func (m *Manifest) Key() string {
	sum := sha256.Sum256(m.Encode())
	return hex.EncodeToString(sum[:])
}

// Encode returns the canonical JSON encoding: entries sorted by path, fields in
// declaration order, no insignificant whitespace. encoding/json is
// deterministic for a struct, so the same entries always give the same bytes.
func (m *Manifest) Encode() []byte {
	entries := m.Entries
	// A hand-built manifest might not be sorted; sort a copy so the key
	// still depends only on the set of entries, never on their order.
	if !slices.IsSortedFunc(entries, compareEntries) {
		entries = slices.Clone(entries)
		slices.SortStableFunc(entries, compareEntries)
	}
	if entries == nil {
		entries = []Entry{} // "[]", not "null": one encoding for the empty tree
	}
	b, err := json.Marshal(Manifest{Entries: entries})
	if err != nil {
		// Marshalling plain strings and ints cannot fail.
		panic("snapshot: encoding manifest: " + err.Error())
	}
	return b
}

func compareEntries(a, b Entry) int { return strings.Compare(a.Path, b.Path) }

// Decode parses and validates a manifest: entries sorted by path without
// duplicates, every path relative and inside the root, no entry nested under
// another entry (which would mean writing through a file or a symlink), valid
// modes, sizes and hashes. A manifest that passes cannot make Materialize write
// outside its directory.
func Decode(b []byte) (*Manifest, error) {
	if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("snapshot: manifest is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	// Unknown fields are refused rather than dropped: dropping them would
	// silently change what the manifest means.
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("snapshot: decoding manifest: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("snapshot: decoding manifest: trailing data after the JSON object")
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// validate checks the invariants documented on Decode.
func (m *Manifest) validate() error {
	seen := make(map[string]bool, len(m.Entries))
	for i, e := range m.Entries {
		if err := checkPath(e.Path); err != nil {
			return fmt.Errorf("snapshot: manifest entry %d: %w", i, err)
		}
		if i > 0 {
			prev := m.Entries[i-1].Path
			if prev == e.Path {
				return fmt.Errorf("snapshot: manifest lists %q twice", e.Path)
			}
			if prev > e.Path {
				return fmt.Errorf("snapshot: manifest is not sorted: %q comes after %q", e.Path, prev)
			}
		}
		switch e.Mode {
		case ModeFile, ModeExec:
			if !validHash(e.Hash) {
				return fmt.Errorf("snapshot: manifest entry %q: hash %q is not a lowercase hex sha256", e.Path, e.Hash)
			}
			if e.Size < 0 {
				return fmt.Errorf("snapshot: manifest entry %q: negative size %d", e.Path, e.Size)
			}
			if e.Link != "" {
				return fmt.Errorf("snapshot: manifest entry %q: a regular file has no link target", e.Path)
			}
		case ModeSymlink:
			if e.Link == "" || strings.ContainsRune(e.Link, 0) {
				return fmt.Errorf("snapshot: manifest entry %q: symlink target is empty or contains NUL", e.Path)
			}
			if e.Hash != "" || e.Size != 0 {
				return fmt.Errorf("snapshot: manifest entry %q: a symlink has no hash or size", e.Path)
			}
		default:
			return fmt.Errorf("snapshot: manifest entry %q: unknown mode %q (want f, x or l)", e.Path, e.Mode)
		}
		seen[e.Path] = true
	}
	// An entry below another entry ("a" and "a/b") cannot exist on disk: "a"
	// would have to be a directory. If "a" is a symlink, writing "a/b" would go
	// through it, possibly out of the tree.
	for _, e := range m.Entries {
		for p := e.Path; ; {
			i := strings.LastIndexByte(p, '/')
			if i < 0 {
				break
			}
			p = p[:i]
			if seen[p] {
				return fmt.Errorf("snapshot: manifest entry %q lies below entry %q, which is not a directory", e.Path, p)
			}
		}
	}
	return nil
}

// checkPath accepts the paths Scan produces: slash-separated, relative,
// clean, valid UTF-8 (so JSON carries them unchanged).
func checkPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty path")
	case !utf8.ValidString(p):
		return fmt.Errorf("path %q is not valid UTF-8", p)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("path %q contains NUL", p)
	case p[0] == '/':
		return fmt.Errorf("path %q is absolute", p)
	}
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "":
			return fmt.Errorf("path %q has an empty component", p)
		case ".":
			return fmt.Errorf("path %q has a \".\" component", p)
		case "..":
			return fmt.Errorf("path %q escapes the root with \"..\"", p)
		}
	}
	return nil
}

func validHash(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Blobs returns the distinct content hashes of the regular files, sorted:
// what a store must hold to materialize the manifest.
func (m *Manifest) Blobs() []string {
	set := make(map[string]struct{})
	for _, e := range m.Entries {
		if e.Hash != "" {
			set[e.Hash] = struct{}{}
		}
	}
	out := make([]string, 0, len(set))
	for h := range set {
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}

// TotalSize is the sum of the regular files' sizes (duplicates counted each
// time: it is the size of the tree on disk, not of the distinct blobs).
func (m *Manifest) TotalSize() int64 {
	var n int64
	for _, e := range m.Entries {
		n += e.Size
	}
	return n
}
