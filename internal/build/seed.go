package build

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/simswarm/simswarm/internal/snapshot"
)

// seed fills a fresh workspace from the user's own tree on this host: the
// snapshot's files and what an OMNeT++ build left there (out/, generated
// message classes, built programs and libraries), with their mtimes. The
// materialisation that follows keeps every file whose content matches, so
// make finds the user's objects newer than their sources and compiles only
// what differs: the first build of a project the user has built costs a
// link at most, not hours. Anything else in the user's tree (results,
// editor files, data) stays out of the workspace and so of the artifact.
func seed(ws, from string, man *snapshot.Manifest) (files int, err error) {
	inSnap := make(map[string]bool, len(man.Entries))
	for _, e := range man.Entries {
		inSnap[e.Path] = true
	}
	err = filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable parts are simply not seeded
		}
		rel, _ := filepath.Rel(from, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == "results" || strings.HasPrefix(d.Name(), ".simswarm") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !(inSnap[rel] || buildProduct(rel, p)) {
			return nil
		}
		if copyKeepingTime(p, filepath.Join(ws, filepath.FromSlash(rel))) == nil {
			files++
		}
		return nil
	})
	return files, err
}

// buildProduct tells what an OMNeT++ build leaves in a project: its output
// directory, opp_msgc's and smc's generated sources, compiled programs and
// libraries.
func buildProduct(rel, p string) bool {
	if strings.HasPrefix(rel, "out/") || strings.Contains(rel, "/out/") {
		return true
	}
	for _, suf := range []string{"_m.cc", "_m.h", "_sm.cc", "_sm.h"} {
		if strings.HasSuffix(rel, suf) {
			return true
		}
	}
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	magic := make([]byte, 4)
	_, _ = io.ReadFull(f, magic)
	return bytes.Equal(magic, []byte("\x7fELF"))
}

func copyKeepingTime(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chtimes(dst, fi.ModTime(), fi.ModTime())
}
