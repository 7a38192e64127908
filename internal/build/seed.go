package build

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/simswarm/simswarm/internal/snapshot"
)

// seed fills a fresh workspace from the user's own tree on this host: the
// snapshot's files and what an OMNeT++ build left there (out/, generated
// message classes, generated headers, precompiled headers, built programs
// and libraries), with their mtimes. The materialisation that follows
// keeps every file whose content matches, so make finds the user's objects
// newer than their sources and compiles only what differs: the first build
// of a project the user has built costs a link at most, not hours.
// Anything else in the user's tree (results, editor files, data) stays out
// of the workspace and so of the artifact. built says whether the user's
// tree held compiled objects or binaries.
func seed(ws, from string, man *snapshot.Manifest) (files int, built bool, err error) {
	inSnap := make(map[string]bool, len(man.Entries))
	for _, e := range man.Entries {
		inSnap[e.Path] = true
	}
	gen := generatedFiles(from)
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
		if !d.Type().IsRegular() {
			return nil
		}
		product, compiled := buildProduct(rel, p, gen)
		if !inSnap[rel] && !product {
			return nil
		}
		if copyKeepingTime(p, filepath.Join(ws, filepath.FromSlash(rel))) == nil {
			files++
			built = built || compiled
		}
		return nil
	})
	return files, built, err
}

// generatedFiles names the headers a project's build generates beside its
// sources that OMNeT++'s conventions make every object depend on: the
// definesFile of .oppfeatures (INET's src/inet/features.h, written by
// `opp_featuretool defines`). Left out, `make makefiles` writes it anew,
// newer than every object, and the whole project compiles again.
func generatedFiles(root string) map[string]bool {
	gen := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(root, ".oppfeatures")); err == nil {
		if m := definesFile.FindSubmatch(b); m != nil {
			gen[path.Clean(string(m[1]))] = true
		}
	}
	return gen
}

var definesFile = regexp.MustCompile(`definesFile\s*=\s*"([^"]+)"`)

// buildProduct tells what an OMNeT++ build leaves in a project: its output
// directory, opp_msgc's and smc's generated sources, the generated headers
// (gen, and opp_defines.h that INET's makefrag writes from the compile
// options), precompiled headers (objects depend on them), compiled
// programs and libraries. compiled says it is an object or binary.
func buildProduct(rel, p string, gen map[string]bool) (product, compiled bool) {
	if strings.HasPrefix(rel, "out/") || strings.Contains(rel, "/out/") {
		return true, strings.HasSuffix(rel, ".o")
	}
	if gen[rel] || path.Base(rel) == "opp_defines.h" {
		return true, false
	}
	for _, suf := range []string{"_m.cc", "_m.h", "_sm.cc", "_sm.h", ".h.gch", ".h.pch", ".h.gch.d", ".h.pch.d"} {
		if strings.HasSuffix(rel, suf) {
			return true, false
		}
	}
	f, err := os.Open(p)
	if err != nil {
		return false, false
	}
	defer f.Close()
	magic := make([]byte, 4)
	_, _ = io.ReadFull(f, magic)
	elf := bytes.Equal(magic, []byte("\x7fELF"))
	return elf, elf
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
