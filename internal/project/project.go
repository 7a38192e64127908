// Package project finds the project a simulation belongs to and reads its
// simswarm.toml: what to snapshot, how to build it, and how to run it when the
// program does not follow OMNeT++'s command-line convention.
package project

import (
	"errors"
	"fmt"
	"os"
	pathpkg "path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/omnetpp"
	"github.com/simswarm/simswarm/internal/slurm"
)

// ConfigFile is the name of the project description at the project root.
const ConfigFile = "simswarm.toml"

// MakefilesBuild is the default build of a project whose Makefile
// generates the real ones (INET, Simu5G): opp_makemake rewrites a Makefile
// only when its content changes, so the build stays incremental.
const MakefilesBuild = "make makefiles && make MODE=release -j{jobs}"

// DefaultBuild is the build of a project with a Makefile and no
// simswarm.toml: OMNeT++'s generated Makefiles know MODE=release. {jobs} is
// filled in by the builder, which knows its cores; keeping it symbolic keeps
// the build key the same on every builder.
const DefaultBuild = "make MODE=release -j{jobs}"

// Project is a simulation's project: the tree that is snapshotted and built.
type Project struct {
	Root    string  // absolute
	Workdir string  // the simulation's directory relative to Root, slash form, "." at the root
	Config  *Config // nil without simswarm.toml
	// Makefile is true when Root holds a Makefile.
	Makefile bool
	// Makefiles is true when that Makefile has a makefiles target.
	Makefiles bool
}

// Config is simswarm.toml.
type Config struct {
	Project struct {
		Ignore []string `toml:"ignore"`
		// Uses names projects this one uses (directories, relative to the
		// project root), besides those OMNeT++'s files name.
		Uses []string `toml:"uses"`
		// Roots are more directories referenced projects may live under.
		Roots []string `toml:"roots"`
	} `toml:"project"`
	Build struct {
		Command   *string  `toml:"command"`
		Artifacts []string `toml:"artifacts"`
	} `toml:"build"`
	Run struct {
		Command string         `toml:"command"`
		Repeat  int            `toml:"repeat"`
		RawVars map[string]any `toml:"vars"`
		Vars    []simswarm.Var `toml:"-"`
	} `toml:"run"`
	Results struct {
		// Files are globs (relative to the results directory) of the CSV or
		// JSON files a run writes, for simswarm results.
		Files []string `toml:"files"`
	} `toml:"results"`
	// Slurm is the site's settings for simswarm run --slurm.
	Slurm slurm.Settings `toml:"slurm"`
}

// Find locates the project of the simulation in dir: the nearest directory at
// or above it with simswarm.toml, else with a Makefile, else dir itself. The
// search never leaves the git work tree dir is in: an OMNeT++ sample sits in
// the OMNeT++ tree, and its root Makefile builds all of OMNeT++.
func Find(dir string) (*Project, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("simulation directory: %w", err)
	}
	chain := ancestors(abs)
	root := ""
	for _, name := range []string{ConfigFile, "Makefile"} {
		for _, d := range chain {
			if isFile(filepath.Join(d, name)) {
				root = d
				break
			}
		}
		if root != "" {
			break
		}
	}
	if root == "" {
		root = abs
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil {
		return nil, err
	}
	p := &Project{Root: root, Workdir: filepath.ToSlash(rel)}
	p.readMakefile()
	if isFile(filepath.Join(root, ConfigFile)) {
		if p.Config, err = LoadConfig(filepath.Join(root, ConfigFile)); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// ancestors lists dir and its parents up to the git work tree's root, or up
// to the home directory or the filesystem root outside git.
func ancestors(dir string) []string {
	home, _ := os.UserHomeDir()
	var out []string
	for d := dir; ; d = filepath.Dir(d) {
		out = append(out, d)
		if exists(filepath.Join(d, ".git")) || d == home || filepath.Dir(d) == d {
			return out
		}
	}
}

// Recipe is how the project is built.
func (p *Project) Recipe() simswarm.Recipe {
	if p.Config != nil && p.Config.Build.Command != nil {
		return simswarm.Recipe{Command: *p.Config.Build.Command, Artifacts: p.Config.Build.Artifacts}
	}
	var r simswarm.Recipe
	switch {
	case p.Makefiles:
		r.Command = MakefilesBuild
	case p.Makefile:
		r.Command = DefaultBuild
	}
	if p.Config != nil {
		r.Artifacts = p.Config.Build.Artifacts
	}
	return r
}

func (p *Project) readMakefile() {
	b, err := os.ReadFile(filepath.Join(p.Root, "Makefile"))
	p.Makefile = err == nil && isFile(filepath.Join(p.Root, "Makefile"))
	p.Makefiles = p.Makefile && omnetpp.NeedsMakefiles(b)
}

// Ignore returns the project's extra snapshot ignore patterns.
func (p *Project) Ignore() []string {
	if p.Config == nil {
		return nil
	}
	return p.Config.Project.Ignore
}

// Name is a readable, unique name for the project's build workspace.
func (p *Project) Name() string {
	base := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(filepath.Base(p.Root), "_")
	return base + "-" + simswarm.Hash("project", p.Root)[:10]
}

// HasRunTemplate reports whether simswarm.toml describes the runs itself.
func (p *Project) HasRunTemplate() bool {
	return p.Config != nil && p.Config.Run.Command != ""
}

// LoadConfig reads and checks a simswarm.toml. Errors name the file and line.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	md, err := toml.Decode(string(b), &c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d: %s", path, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "toml: "))
	}
	for _, k := range md.Undecoded() {
		if len(k) >= 2 && k[0] == "run" && k[1] == "vars" {
			continue
		}
		return nil, fmt.Errorf("%s:%d: unknown key %q", path, keyLine(b, k...), k.String())
	}
	// The decoder silently drops a run.vars that is not a table.
	if t := md.Type("run", "vars"); t != "" && t != "Hash" {
		return nil, fmt.Errorf("%s:%d: run.vars must be a table of variables", path, keyLine(b, "run", "vars"))
	}
	// The order of variables decides run numbering, and maps forget it.
	for _, k := range md.Keys() {
		if len(k) > 3 && k[0] == "run" && k[1] == "vars" {
			// A dotted name (a.b = [...]) or a sub-table would be dropped.
			return nil, fmt.Errorf("%s:%d: run.vars.%s must be a non-empty list of values", path, keyLine(b, k...), k[2])
		}
		if len(k) != 3 || k[0] != "run" || k[1] != "vars" {
			continue
		}
		v := simswarm.Var{Name: k[2]}
		vals, ok := c.Run.RawVars[k[2]].([]any)
		if !ok || len(vals) == 0 {
			return nil, fmt.Errorf("%s:%d: run.vars.%s must be a non-empty list of values", path, keyLine(b, k...), k[2])
		}
		for _, x := range vals {
			switch x := x.(type) {
			case string:
				v.Values = append(v.Values, x)
			case int64:
				v.Values = append(v.Values, strconv.FormatInt(x, 10))
			case float64:
				v.Values = append(v.Values, strconv.FormatFloat(x, 'g', -1, 64))
			case bool:
				v.Values = append(v.Values, strconv.FormatBool(x))
			default:
				return nil, fmt.Errorf("%s:%d: run.vars.%s: values must be strings or numbers", path, keyLine(b, k...), k[2])
			}
		}
		if !validVarName(v.Name) || reserved[v.Name] {
			return nil, fmt.Errorf("%s:%d: run.vars: %q cannot be a variable name", path, keyLine(b, k...), v.Name)
		}
		c.Run.Vars = append(c.Run.Vars, v)
	}
	if c.Run.Repeat < 0 {
		return nil, fmt.Errorf("%s:%d: run.repeat must be 1 or more", path, keyLine(b, "run", "repeat"))
	}
	if c.Run.Command == "" && (len(c.Run.Vars) > 0 || c.Run.Repeat > 0) {
		return nil, fmt.Errorf("%s:%d: [run] has variables but no command", path, keyLine(b, "run"))
	}
	for _, g := range c.Results.Files {
		if _, err := pathpkg.Match(g, ""); err != nil || g == "" || strings.HasPrefix(g, "/") || strings.Contains(g, "..") {
			return nil, fmt.Errorf("%s:%d: results.files: %q is not a glob relative to the results directory", path, keyLine(b, "results", "files"), g)
		}
	}
	if c.Run.Command != "" {
		if err := checkTemplate(c.Run.Command, c.Run.Vars); err != nil {
			return nil, fmt.Errorf("%s:%d: run.command: %v", path, keyLine(b, "run", "command"), err)
		}
	}
	return &c, nil
}

var reserved = map[string]bool{"run": true, "resultdir": true, "args": true, "repetition": true}

func validVarName(s string) bool {
	return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`).MatchString(s)
}

var placeholder = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)

func checkTemplate(t string, vars []simswarm.Var) error {
	known := map[string]bool{"run": true, "resultdir": true, "args": true, "repetition": true}
	for _, v := range vars {
		known[v.Name] = true
	}
	for _, m := range placeholder.FindAllStringSubmatch(t, -1) {
		if !known[m[1]] {
			return fmt.Errorf("unknown placeholder {%s}", m[1])
		}
	}
	if !strings.Contains(t, "{resultdir}") {
		return errors.New("must contain {resultdir}: results are collected from there")
	}
	return nil
}

// keyLine finds the line that defines key: its own line (a table header,
// "name = ...", or a dotted key), tracking table headers so that
// run.command is not mistaken for build.command and a variable named "n"
// for the "[run]" line. A key the scan cannot place (say, inside an inline
// table) takes the line of its nearest enclosing key, else line 1.
func keyLine(b []byte, key ...string) int {
	lines := strings.Split(string(b), "\n")
	for n := len(key); n > 0; n-- {
		want := strings.Join(key[:n], ".")
		table := ""
		for i, l := range lines {
			l = strings.TrimSpace(l)
			if strings.HasPrefix(l, "[") {
				if j := strings.IndexByte(l, ']'); j > 0 {
					table = normKey(strings.TrimLeft(l[:j], "["))
				}
				if table == want {
					return i + 1
				}
				continue
			}
			lhs, _, ok := strings.Cut(l, "=")
			if !ok {
				continue
			}
			full := normKey(lhs)
			if table != "" {
				full = table + "." + full
			}
			if full == want {
				return i + 1
			}
		}
	}
	return 1
}

// normKey writes a TOML key as Key.String does for simple keys: no blanks
// around the dots, no quotes.
func normKey(s string) string {
	return strings.NewReplacer(" ", "", "\t", "", `"`, "", "'", "").Replace(s)
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
