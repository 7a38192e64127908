// Package testkit holds what the test suites of several packages share.
package testkit

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// buildOutputs are what a local build or campaign leaves in a bundled
// example; copies leave them out so every test starts from sources, as a
// fresh clone has them.
var buildOutputs = map[string]bool{"out": true, "obj": true, "results": true, "aloha": true, "scenario": true}

// CopySources copies the example tree at src to dst without its build
// outputs, keeping file modes.
func CopySources(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel != "." && buildOutputs[strings.Split(filepath.ToSlash(rel), "/")[0]] {
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
