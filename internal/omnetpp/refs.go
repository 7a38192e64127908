package omnetpp

// Where OMNeT++ says that a project uses another project. Each reader takes
// one file's content (no file system here besides what the caller passes)
// and returns the directories it names, absolute, with where it read them;
// deciding which project a directory belongs to is the caller's business.

import (
	"encoding/xml"
	"path/filepath"
	"regexp"
	"strings"
)

// Ref is one directory a project's files say it uses.
type Ref struct {
	// Dir is the directory named, absolute and clean. For an Eclipse
	// project reference it is empty and Name is set.
	Dir string
	// Name is an Eclipse project name from a .project file.
	Name string
	// Via says where the reference was read, for error messages:
	// "queuenet/omnetpp.ini ned-path", "Makefile -L".
	Via string
}

// ProjectRefs reads the referenced project names of an Eclipse .project
// file (<projects><project>NAME</project></projects>), as the OMNeT++ IDE
// writes them for "Project References".
func ProjectRefs(content []byte, via string) ([]Ref, error) {
	var desc struct {
		Projects []string `xml:"projects>project"`
	}
	if err := xml.Unmarshal(content, &desc); err != nil {
		return nil, err
	}
	var out []Ref
	for _, p := range desc.Projects {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, Ref{Name: p, Via: via})
		}
	}
	return out, nil
}

// ProjectName reads an Eclipse .project file's own name.
func ProjectName(content []byte) string {
	var desc struct {
		Name string `xml:"name"`
	}
	if xml.Unmarshal(content, &desc) != nil {
		return ""
	}
	return strings.TrimSpace(desc.Name)
}

var (
	makeAssign = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)\s*[:?]?=\s*(.*)$`)
	makeVar    = regexp.MustCompile(`\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]`)
	makeCd     = regexp.MustCompile(`(?:^|[;&|@-]\s*|\s)cd\s+([^\s;&|]+)\s*(?:&&|;)`)
)

// MakefileRefs reads the -I and -L directories of a Makefile as
// opp_makemake writes them (INCLUDE_PATH, LIBS, with variables such as
// INET4_5_PROJ=../../inet4.5 defined in the file or with -K on an
// opp_makemake line, $(LDFLAG_LIBPATH) standing for -L), relative to dir,
// the Makefile's directory; a line that starts with "cd X &&" (a
// makefiles target running opp_makemake in src/) is relative to X.
// Directories behind a variable the file does not define (OMNeT++'s own,
// such as $(OMNETPP_INCL_DIR)) are left out: the simulator is the
// runner's environment, not a project.
func MakefileRefs(content []byte, dir, via string) []Ref {
	vars := map[string]string{"LDFLAG_LIBPATH": "-L", "LDFLAG_INCLUDE": "-I", "D": ""}
	lines := joinContinuations(string(content))
	for _, l := range lines {
		if m := makeAssign.FindStringSubmatch(l); m != nil && !strings.HasPrefix(strings.TrimSpace(l), "\t") {
			vars[m[1]] = strings.TrimSpace(m[2])
		}
		for _, f := range strings.Fields(l) {
			if k, v, ok := strings.Cut(strings.TrimPrefix(f, "-K"), "="); ok && strings.HasPrefix(f, "-K") {
				vars[k] = v
			}
		}
	}
	seen := map[string]bool{}
	var out []Ref
	for _, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		base := dir
		if m := makeCd.FindStringSubmatch(l); m != nil && !strings.Contains(m[1], "$") {
			base = join(dir, m[1])
		}
		fields := strings.Fields(expand(l, vars, 0))
		for i, f := range fields {
			var p, flag string
			switch {
			case f == "-I" || f == "-L":
				if i+1 < len(fields) {
					flag, p = f, fields[i+1]
				}
			case strings.HasPrefix(f, "-I") || strings.HasPrefix(f, "-L"):
				flag, p = f[:2], f[2:]
			}
			if p == "" || strings.Contains(p, "$") {
				continue
			}
			d := join(base, p)
			if !seen[d] {
				seen[d] = true
				out = append(out, Ref{Dir: d, Via: via + " " + flag + p})
			}
		}
	}
	return out
}

// expand replaces $(VAR) and ${VAR} with their values from vars, leaving
// unknown variables as they are.
func expand(s string, vars map[string]string, depth int) string {
	if depth > 8 {
		return s
	}
	out := makeVar.ReplaceAllStringFunc(s, func(m string) string {
		name := makeVar.FindStringSubmatch(m)[1]
		if v, ok := vars[name]; ok {
			return v
		}
		return m
	})
	if out != s && makeVar.MatchString(out) {
		return expand(out, vars, depth+1)
	}
	return out
}

func joinContinuations(s string) []string {
	s = strings.ReplaceAll(s, "\\\n", " ")
	return strings.Split(s, "\n")
}

func join(base, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(base, p)
}

// IniRefs reads the directories an ini file names: its ned-path entries
// (separated by ';', relative to the ini file's directory dir), its
// load-libs libraries (the library's directory), and the ini files it
// includes (returned separately: the caller reads them too).
func IniRefs(content []byte, dir, via string) (refs []Ref, includes []string) {
	for _, l := range strings.Split(string(content), "\n") {
		l = strings.TrimSpace(stripComment(l))
		if rest, ok := strings.CutPrefix(l, "include "); ok {
			includes = append(includes, join(dir, strings.TrimSpace(rest)))
			continue
		}
		key, val, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.Trim(strings.TrimSpace(val), `"`)
		switch key {
		case "ned-path":
			for _, p := range splitPathList(val) {
				refs = append(refs, Ref{Dir: join(dir, p), Via: via + " ned-path " + p})
			}
		case "load-libs":
			for _, p := range strings.Fields(val) {
				if p = strings.Trim(p, `"`); p != "" && !strings.Contains(p, "$") {
					refs = append(refs, Ref{Dir: filepath.Dir(join(dir, p)), Via: via + " load-libs " + p})
				}
			}
		}
	}
	return refs, includes
}

func stripComment(l string) string {
	if i := strings.IndexByte(l, '#'); i >= 0 {
		return l[:i]
	}
	return l
}

// splitPathList splits a NED path: ';' always separates, ':' too except
// after a drive letter (OMNeT++ accepts both on Unix).
func splitPathList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ";") {
		for _, p := range strings.Split(part, ":") {
			if p = strings.TrimSpace(p); p != "" && !strings.Contains(p, "$") {
				out = append(out, p)
			}
		}
	}
	return out
}

// CommandRefs reads the -n (NED path) and -l (library) options of an
// OMNeT++ command line, relative to dir, the directory it runs in.
func CommandRefs(args []string, dir, via string) []Ref {
	var out []Ref
	for _, a := range scanArgs(args) {
		switch a.name {
		case "-n", "--ned-path":
			for _, p := range splitPathList(a.value) {
				out = append(out, Ref{Dir: join(dir, p), Via: via + " -n " + p})
			}
		case "-l", "--load-libs":
			for _, p := range strings.Fields(a.value) {
				if !strings.Contains(p, "$") {
					out = append(out, Ref{Dir: filepath.Dir(join(dir, p)), Via: via + " -l " + p})
				}
			}
		}
	}
	return out
}

var (
	scriptDirAssign = regexp.MustCompile(`^\s*(?:export\s+|local\s+)?([A-Za-z_][A-Za-z0-9_]*)=["']?(?:\$\(\s*cd\s+)?(?:\$\(dirname\s+"?\$0"?\)|` + "`dirname \"?\\$0\"?`" + `|\$\{0%/\*\})(?:\s*(?:&&|;)\s*pwd\s*\))?["']?\s*$`)
	scriptDir       = regexp.MustCompile(`\$\(dirname\s+"?\$0"?\)|` + "`dirname \"?\\$0\"?`" + `|\$\{0%/\*\}`)
	oppRunLine      = regexp.MustCompile(`(?:^|[\s;&|])(?:exec\s+)?(?:\S*/)?opp_run(?:_release|_dbg)?\s+(.*)$`)
)

// LauncherRefs reads a launcher script such as queuenet's
// `opp_run -l $(dirname $0)/../queueinglib/queueinglib $*` or INET's
// `DIR=$(dirname $0); opp_run -l $DIR/../src/INET -n $DIR/../src ...`:
// the -l and -n options of its opp_run line, with the script's own
// directory (dir) for $(dirname $0) and variables assigned from it.
// A file that is not a shell script gives nothing.
func LauncherRefs(content []byte, dir, via string) []Ref {
	if !strings.HasPrefix(string(content), "#!") || !strings.Contains(strings.SplitN(string(content), "\n", 2)[0], "sh") {
		return nil
	}
	vars := map[string]string{}
	var out []Ref
	for _, l := range strings.Split(string(content), "\n") {
		if m := scriptDirAssign.FindStringSubmatch(l); m != nil {
			vars[m[1]] = dir
			continue
		}
		m := oppRunLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		s := scriptDir.ReplaceAllString(m[1], dir)
		s = makeVar.ReplaceAllStringFunc(s, func(v string) string {
			if d, ok := vars[makeVar.FindStringSubmatch(v)[1]]; ok {
				return d
			}
			return v
		})
		s = regexp.MustCompile(`\$([A-Za-z_][A-Za-z0-9_]*)`).ReplaceAllStringFunc(s, func(v string) string {
			if d, ok := vars[v[1:]]; ok {
				return d
			}
			return v
		})
		args := strings.Fields(strings.NewReplacer(`"`, "", `'`, "").Replace(s))
		out = append(out, CommandRefs(args, dir, via)...)
	}
	return out
}

// IniFiles lists the ini files a command line reads, relative to its
// working directory: every -f value and positional argument, else
// omnetpp.ini, as OMNeT++ does.
func IniFiles(args []string) []string {
	var out []string
	for i, a := range scanArgs(args) {
		if i == 0 && a.name == "" {
			continue // the program
		}
		if a.name == "-f" || (a.name == "" && a.value != "") {
			out = append(out, a.value)
		}
	}
	if len(out) == 0 {
		out = []string{"omnetpp.ini"}
	}
	return out
}

var soMissing = regexp.MustCompile(`([^\s:'"]+\.so(?:\.[0-9.]+)?): cannot open shared object file`)

// MissingLibrary finds the shared library a program could not load, in the
// dynamic loader's words ("error while loading shared libraries: libX.so.1:
// cannot open shared object file") or OMNeT++'s ("<!> Error: Cannot load
// library '../lib/libfoo.so': libX.so: cannot open shared object file").
// The last one named is the one missing: OMNeT++ names the library it was
// asked to load first, then the one the loader could not find.
func MissingLibrary(output []byte) (lib string, ok bool) {
	all := soMissing.FindAllSubmatch(output, -1)
	if len(all) == 0 {
		return "", false
	}
	return string(all[len(all)-1][1]), true
}

// LibraryProblem says, in a user's terms, why a program that failed with
// output could not load a shared library, or "" when it did not fail so.
// A bare library name is the runner's environment's (the simulator or a
// system library); a path is the project's own, missing from the tree.
func LibraryProblem(output []byte) string {
	lib, ok := MissingLibrary(output)
	if !ok {
		return ""
	}
	if strings.Contains(lib, "/") {
		return "cannot load the project's library " + lib + ": it is not in the run's tree (not built, or not among the build's artifacts)"
	}
	return "the runner's environment lacks the shared library " + lib + ": install it where the runner runs (its image or host)"
}

// ProjectStateFiles are the files at a project's root in which the OMNeT++
// IDE and INET's opp_featuretool keep the user's choices for this checkout:
// enabled features, the NED packages of disabled ones, NED source folders,
// makemake options. They are often git-ignored, yet a build without them is
// another build (INET's full feature set instead of the user's).
var ProjectStateFiles = []string{".oppfeaturestate", ".nedexclusions", ".nedfolders", ".oppbuildspec", ".oppfeatures"}

var makefilesTarget = regexp.MustCompile(`(?m)^makefiles\s*:`)

// NeedsMakefiles reports whether a project's root Makefile generates the
// real Makefiles (INET's and Simu5G's `make makefiles`, which runs
// opp_makemake with the enabled features' options): they are generated
// files, git-ignored, and must be made by the build, not taken from the
// user's tree.
func NeedsMakefiles(makefile []byte) bool { return makefilesTarget.Match(makefile) }
