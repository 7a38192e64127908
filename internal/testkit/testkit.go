// Package testkit holds what the test suites of several packages share.
package testkit

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// buildOutputs are what a local build or campaign leaves in a bundled
// example; copies leave them out so every test starts from sources, as a
// fresh clone has them.
var buildOutputs = map[string]bool{"out": true, "obj": true, "results": true, "aloha": true, "scenario": true}

// CopySources copies the example tree at src to dst without its build
// outputs, keeping file modes.
func CopySources(src, dst string) error {
	return copyTree(src, dst, func(rel, _ string, _ bool) bool {
		return buildOutputs[strings.Split(rel, "/")[0]]
	})
}

// copyTree copies src to dst, keeping file modes, leaving out what skip
// names (rel is slash-separated, relative to src; a skipped directory is
// not entered) and anything but directories and regular files.
func copyTree(src, dst string, skip func(rel, path string, isDir bool) bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel != "." && skip(filepath.ToSlash(rel), p, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, fi.Mode().Perm())
	})
}

// Tree lists every path under dir, sorted, so a test sees at once anything
// written or left behind: directories end in /, symlinks show " -> target",
// files "=content".
func Tree(dir string) []string {
	var out []string
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			rel += " -> " + target
		case fi.IsDir():
			rel += "/"
		default:
			b, _ := os.ReadFile(p)
			rel += "=" + string(b)
		}
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	return out
}
