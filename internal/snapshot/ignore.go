package snapshot

import (
	"fmt"
	"path"
	"strings"
)

// defaultIgnores are left out of a snapshot outside git: version-control
// metadata, build outputs and result directories, which are never sources.
// They come first, so a project's own patterns can re-include them with "!".
var defaultIgnores = []string{
	".git",
	"out/",
	"results/",
	"*.o",
	"*.d",
	".simswarm/",
}

// ignorePattern is one compiled gitignore line.
type ignorePattern struct {
	negate  bool     // "!pattern": re-include what earlier patterns ignored
	dirOnly bool     // "pattern/": matches directories only
	segs    []string // path segments; "**" matches any number of segments, others are path.Match globs
}

// ignoreMatcher implements the subset of gitignore syntax the project needs:
// "*", "?", "[...]", backslash escapes, "**", a leading or middle "/" anchoring
// the pattern to the root, a trailing "/" for directories only, and "!"
// negation with the last matching pattern winning. It is written here rather
// than taken from a library because the subset is small and the standard
// library's path.Match already does the per-segment globbing.
type ignoreMatcher struct {
	pats []ignorePattern
}

// compileIgnores compiles gitignore lines; blank lines and "#" comments are
// skipped. A malformed glob is an error naming the pattern.
func compileIgnores(lines ...[]string) (*ignoreMatcher, error) {
	m := &ignoreMatcher{}
	for _, group := range lines {
		for _, line := range group {
			p, ok, err := compileIgnore(line)
			if err != nil {
				return nil, err
			}
			if ok {
				m.pats = append(m.pats, p)
			}
		}
	}
	return m, nil
}

func compileIgnore(line string) (ignorePattern, bool, error) {
	var p ignorePattern
	s := strings.TrimSuffix(line, "\r")
	// Trailing spaces are dropped unless escaped with a backslash, as in git.
	for strings.HasSuffix(s, " ") && !strings.HasSuffix(s, `\ `) {
		s = s[:len(s)-1]
	}
	if s == "" || s[0] == '#' {
		return p, false, nil
	}
	if s[0] == '!' {
		p.negate = true
		s = s[1:]
	}
	// A leading "\!" or "\#" needs no special care: path.Match treats the
	// escaped character literally.
	if strings.HasSuffix(s, "/") {
		p.dirOnly = true
		s = strings.TrimRight(s, "/")
	}
	if s == "" {
		return p, false, nil
	}
	// A slash at the start or in the middle anchors the pattern to the root;
	// without one it matches a name at any depth, i.e. it behaves like "**/name".
	anchored := strings.Contains(s, "/")
	s = strings.TrimLeft(s, "/")
	for _, seg := range strings.Split(s, "/") {
		if seg == "" {
			continue // "a//b" means "a/b"
		}
		if seg != "**" {
			if _, err := path.Match(seg, ""); err != nil {
				return p, false, fmt.Errorf("snapshot: bad ignore pattern %q: %v", line, err)
			}
		}
		p.segs = append(p.segs, seg)
	}
	if len(p.segs) == 0 {
		return p, false, nil
	}
	if !anchored {
		p.segs = append([]string{"**"}, p.segs...)
	}
	return p, true, nil
}

// matchSegs reports whether the path (already split into segments) is
// ignored by the patterns alone, without looking at its parent directories.
// Callers walking a tree check parents on the way down; ignoredPath does it
// for a lone path.
func (m *ignoreMatcher) matchSegs(segs []string, isDir bool) bool {
	ignored := false
	for i := range m.pats {
		p := &m.pats[i]
		if p.negate != ignored {
			continue // cannot change the outcome
		}
		if p.dirOnly && !isDir {
			continue
		}
		if globSegs(p.segs, segs) {
			ignored = !p.negate
		}
	}
	return ignored
}

// ignoredPath reports whether rel (a file, or a directory if isDir) is
// ignored, either itself or because a directory above it is. As in git, a
// file inside an ignored directory cannot be re-included by a negation.
func (m *ignoreMatcher) ignoredPath(rel string, isDir bool) bool {
	if len(m.pats) == 0 {
		return false
	}
	segs := strings.Split(rel, "/")
	for i := 1; i < len(segs); i++ {
		if m.matchSegs(segs[:i], true) {
			return true
		}
	}
	return m.matchSegs(segs, isDir)
}

// globSegs matches pattern segments against name segments. "**" matches zero
// or more segments, except at the end of a pattern, where ("dir/**") it
// matches one or more: everything inside dir, not dir itself.
func globSegs(pat, name []string) bool {
	// Fast path for the common unanchored pattern ("*.o" is "**/*.o"): only
	// the last name segment can match.
	if len(pat) == 2 && pat[0] == "**" && pat[1] != "**" {
		if len(name) == 0 {
			return false
		}
		ok, _ := path.Match(pat[1], name[len(name)-1])
		return ok
	}
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			if len(rest) == 0 {
				return len(name) > 0
			}
			for i := 0; i <= len(name); i++ {
				if globSegs(rest, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}
