// Package projenv carries the part of the user's environment that points
// into a campaign's projects from the client to the builders and runners,
// where it points at the same places in the tree they laid out.
//
// INET's users type `inet -c X` after `source setenv`: the launcher is found
// on PATH ($INET_ROOT/bin) and takes its library and NED folders from
// $INET_ROOT. Passed on as they are, those variables make a run in a copy of
// the tree load the user's library and NED folders while its working
// directory lies under none of them ("Network 'X' not found"), and on a
// cluster they name a directory that does not exist. Simu5G, Veins and any
// opp_run wrapper work the same way with their own variables.
package projenv

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/simswarm/simswarm"
)

// Tree stands for the tree's root in a captured value.
const Tree = "{tree}"

// Capture returns the variables of env (NAME=VALUE, as os.Environ) whose
// value names a place inside one of the projects, rewritten to name the
// same place in the tree: roots maps a project's root on this host to its
// directory in the tree ("." or a slash path relative to the tree's root).
//
// A search path (a name ending in PATH) keeps only its elements inside the
// projects, to be put in front of the worker's own value: the rest of the
// user's PATH means nothing on another host. Any other variable is taken
// whole with the project paths in it replaced (INET_OMNETPP_OPTIONS holds
// --image-path=$INET_ROOT/images).
func Capture(env []string, roots map[string]string) []simswarm.EnvVar {
	m := rootMap(roots)
	if len(m) == 0 {
		return nil
	}
	var out []simswarm.EnvVar
	for _, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || skip(name) || !strings.Contains(val, "/") {
			continue
		}
		if searchPath(name) {
			var keep []string
			for _, el := range filepath.SplitList(val) {
				if r, ok := m.rewrite(el); ok && r != el && !slices.Contains(keep, r) {
					keep = append(keep, r)
				}
			}
			if len(keep) > 0 {
				out = append(out, simswarm.EnvVar{Name: name, Value: strings.Join(keep, string(filepath.ListSeparator)), Prepend: true})
			}
			continue
		}
		if r, ok := m.rewrite(val); ok {
			out = append(out, simswarm.EnvVar{Name: name, Value: r})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// skip names the variables that describe the user's shell or simswarm
// itself, not the simulation's environment.
func skip(name string) bool {
	switch name {
	case "PWD", "OLDPWD", "_", "HOME", "SHELL", "TMPDIR":
		return true
	}
	return strings.HasPrefix(name, "SIMSWARM_")
}

func searchPath(name string) bool { return strings.HasSuffix(name, "PATH") }

type rootList []struct{ host, tree string }

// rootMap orders the roots longest first, so that a path inside a nested
// project goes to the innermost one, and adds each root's real path, since
// a variable may name it through a symbolic link or not.
func rootMap(roots map[string]string) rootList {
	var m rootList
	add := func(host, tree string) {
		host = filepath.Clean(host)
		if host == "/" || !filepath.IsAbs(host) {
			return
		}
		for _, e := range m {
			if e.host == host {
				return
			}
		}
		m = append(m, struct{ host, tree string }{host, tree})
	}
	for host, tree := range roots {
		add(host, tree)
		if real, err := filepath.EvalSymlinks(host); err == nil {
			add(real, tree)
		}
	}
	sort.Slice(m, func(i, j int) bool { return len(m[i].host) > len(m[j].host) })
	return m
}

// rewrite replaces every occurrence of a root in s that is a whole path
// (followed by the end, a slash or a character no path of ours holds) with
// its place in the tree; ok says whether there was one.
func (m rootList) rewrite(s string) (string, bool) {
	var b strings.Builder
	found := false
	for i := 0; i < len(s); {
		hit := false
		if i == 0 || !pathChar(s[i-1]) {
			for _, e := range m {
				if strings.HasPrefix(s[i:], e.host) {
					end := i + len(e.host)
					if end == len(s) || s[end] == '/' || !pathChar(s[end]) {
						b.WriteString(inTree(e.tree))
						i, hit, found = end, true, true
						break
					}
				}
			}
		}
		if !hit {
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), found
}

func inTree(rel string) string {
	if rel == "" || rel == "." {
		return Tree
	}
	return Tree + "/" + rel
}

// pathChar reports whether c can continue a path name as users write them.
func pathChar(c byte) bool {
	return c != ':' && c != ';' && c != ' ' && c != '=' && c != '"' && c != '\'' && c != ',' && c != '\t'
}

// Environ is base (NAME=VALUE) with vars applied, {tree} standing for tree:
// a search path goes in front of base's value of it, any other variable
// replaces it.
func Environ(base []string, vars []simswarm.EnvVar, tree string) []string {
	if len(vars) == 0 {
		return base
	}
	out := slices.Clone(base)
	for _, v := range vars {
		val := strings.ReplaceAll(v.Value, Tree, tree)
		i := slices.IndexFunc(out, func(kv string) bool { return strings.HasPrefix(kv, v.Name+"=") })
		if v.Prepend && i >= 0 {
			if old := out[i][len(v.Name)+1:]; old != "" {
				val += string(filepath.ListSeparator) + old
			}
		}
		if i >= 0 {
			out[i] = v.Name + "=" + val
		} else {
			out = append(out, v.Name+"="+val)
		}
	}
	return out
}

// LookPath finds a program named without a slash in the PATH of env, as a
// shell started with env would; a name with a slash, or one not found
// there, comes back as it is. (os/exec looks in this process's PATH, not
// the child's.)
func LookPath(prog string, env []string) string {
	if prog == "" || strings.Contains(prog, "/") {
		return prog
	}
	for i := len(env) - 1; i >= 0; i-- {
		path, ok := strings.CutPrefix(env[i], "PATH=")
		if !ok {
			continue
		}
		for _, dir := range filepath.SplitList(path) {
			if dir == "" {
				continue
			}
			p := filepath.Join(dir, prog)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
				return p
			}
		}
		break
	}
	return prog
}
