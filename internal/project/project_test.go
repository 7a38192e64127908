package project

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/simswarm/simswarm"
)

// tree creates files (slash paths; a trailing "/" makes a directory) under a
// fresh temporary directory and returns it with symlinks resolved, since
// Find reports resolved paths.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const okToml = "[run]\ncommand = \"./sim {resultdir}\"\n"

// TestFind covers the root rules. Every tree has a .git at its top (or
// below, for the boundary cases) so the search never wanders into whatever
// lies above the test's temporary directory.
func TestFind(t *testing.T) {
	cases := []struct {
		name     string
		files    map[string]string
		sim      string // the simulation directory, relative to the tree
		root     string // expected root, relative to the tree
		workdir  string
		config   bool
		makefile bool
	}{
		{
			name:  "simswarm.toml beats a nearer Makefile",
			files: map[string]string{".git/": "", "simswarm.toml": okToml, "sub/Makefile": "all:\n", "sub/sim/x.ned": ""},
			sim:   "sub/sim", root: ".", workdir: "sub/sim", config: true,
		},
		{
			name:  "nearest simswarm.toml wins",
			files: map[string]string{".git/": "", "simswarm.toml": okToml, "a/simswarm.toml": okToml, "a/b/x.ned": ""},
			sim:   "a/b", root: "a", workdir: "b", config: true,
		},
		{
			name:  "nearest Makefile without simswarm.toml",
			files: map[string]string{".git/": "", "Makefile": "", "a/Makefile": "", "a/b/c/x.ned": ""},
			sim:   "a/b/c", root: "a", workdir: "b/c", makefile: true,
		},
		{
			name:  "sim dir is the root",
			files: map[string]string{".git/": "", "Makefile": "", "x.ned": ""},
			sim:   ".", root: ".", workdir: ".", makefile: true,
		},
		{
			name:  "nothing found: the sim dir",
			files: map[string]string{".git/": "", "a/b/x.ned": ""},
			sim:   "a/b", root: "a/b", workdir: ".",
		},
		{
			// An OMNeT++ sample in its own git tree below the OMNeT++ tree:
			// the outer Makefile and simswarm.toml must not be taken.
			name:  "never past the git work tree root",
			files: map[string]string{".git/": "", "Makefile": "", "simswarm.toml": okToml, "repo/.git/": "", "repo/sim/x.ned": ""},
			sim:   "repo/sim", root: "repo/sim", workdir: ".",
		},
		{
			name:  "the git root itself is searched",
			files: map[string]string{".git/": "", "Makefile": "", "repo/.git/": "", "repo/Makefile": "", "repo/sim/x.ned": ""},
			sim:   "repo/sim", root: "repo", workdir: "sim", makefile: true,
		},
		{
			// In a git worktree or submodule .git is a file.
			name:  ".git file bounds the search too",
			files: map[string]string{".git/": "", "Makefile": "", "wt/.git": "gitdir: elsewhere\n", "wt/sim/x.ned": ""},
			sim:   "wt/sim", root: "wt/sim", workdir: ".",
		},
		{
			name:  "a directory named Makefile does not count",
			files: map[string]string{".git/": "", "Makefile/": "", "sim/x.ned": ""},
			sim:   "sim", root: "sim", workdir: ".",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			top := tree(t, tc.files)
			p, err := Find(filepath.Join(top, filepath.FromSlash(tc.sim)))
			if err != nil {
				t.Fatal(err)
			}
			wantRoot := filepath.Join(top, filepath.FromSlash(tc.root))
			if p.Root != wantRoot {
				t.Errorf("Root = %s, want %s", p.Root, wantRoot)
			}
			if p.Workdir != tc.workdir {
				t.Errorf("Workdir = %q, want %q", p.Workdir, tc.workdir)
			}
			if (p.Config != nil) != tc.config {
				t.Errorf("Config loaded = %v, want %v", p.Config != nil, tc.config)
			}
			if p.Makefile != tc.makefile {
				t.Errorf("Makefile = %v, want %v", p.Makefile, tc.makefile)
			}
		})
	}
}

// TestFindRelativeAndSymlinked checks that a relative or symlinked sim
// directory is reported against the real root, so the snapshot and the
// workdir agree.
func TestFindRelativeAndSymlinked(t *testing.T) {
	top := tree(t, map[string]string{".git/": "", "proj/Makefile": "", "proj/sims/aloha/x.ned": ""})
	link := filepath.Join(top, "link")
	if err := os.Symlink(filepath.Join(top, "proj", "sims"), link); err != nil {
		t.Fatal(err)
	}
	p, err := Find(filepath.Join(link, "aloha"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Root != filepath.Join(top, "proj") || p.Workdir != "sims/aloha" {
		t.Errorf("via symlink: Root %s Workdir %q", p.Root, p.Workdir)
	}

	t.Chdir(filepath.Join(top, "proj", "sims"))
	p, err = Find("aloha")
	if err != nil {
		t.Fatal(err)
	}
	if p.Root != filepath.Join(top, "proj") || p.Workdir != "sims/aloha" {
		t.Errorf("relative: Root %s Workdir %q", p.Root, p.Workdir)
	}
}

func TestFindErrors(t *testing.T) {
	top := tree(t, map[string]string{".git/": "", "simswarm.toml": "[run]\nbogus = 1\n", "sim/x.ned": ""})
	if _, err := Find(filepath.Join(top, "sim")); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("a bad simswarm.toml must fail Find, got %v", err)
	}
	if _, err := Find(filepath.Join(top, "missing")); err == nil {
		t.Error("a missing sim directory must fail Find")
	}
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), ConfigFile)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadConfigGood reads a full file. The variables are deliberately not
// in alphabetical order: their file order decides run numbering, and a map
// would lose it.
func TestLoadConfigGood(t *testing.T) {
	p := writeConfig(t, `# a project
[project]
ignore = ["out/", "*.tmp"]

[build]
command = "make -j4"
artifacts = ["bin/*"]

[run]
command = "./sim --z={zeta} --a={alpha} --m={mid} -r {repetition} -n {run} --out={resultdir} {args}"
repeat = 3

[run.vars]
zeta = [1, 2.5, "three", -4, 1e3]
alpha = [true, false]
mid = ["a b"]

[results]
files = ["*.csv", "stats/*.json"]
`)
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []simswarm.Var{
		{Name: "zeta", Values: []string{"1", "2.5", "three", "-4", "1000"}},
		{Name: "alpha", Values: []string{"true", "false"}},
		{Name: "mid", Values: []string{"a b"}},
	}
	if !reflect.DeepEqual(c.Run.Vars, want) {
		t.Errorf("Vars = %q, want %q", c.Run.Vars, want)
	}
	if c.Run.Repeat != 3 || !strings.HasPrefix(c.Run.Command, "./sim --z={zeta}") {
		t.Errorf("run = %d %q", c.Run.Repeat, c.Run.Command)
	}
	if c.Build.Command == nil || *c.Build.Command != "make -j4" || !reflect.DeepEqual(c.Build.Artifacts, []string{"bin/*"}) {
		t.Errorf("build = %v %v", c.Build.Command, c.Build.Artifacts)
	}
	if !reflect.DeepEqual(c.Project.Ignore, []string{"out/", "*.tmp"}) {
		t.Errorf("ignore = %q", c.Project.Ignore)
	}
	if !reflect.DeepEqual(c.Results.Files, []string{"*.csv", "stats/*.json"}) {
		t.Errorf("results.files = %q", c.Results.Files)
	}
}

// TestLoadConfigVarSpellings: the same variables written as an inline
// table and as dotted keys keep their order too.
func TestLoadConfigVarSpellings(t *testing.T) {
	for name, content := range map[string]string{
		"inline": "[run]\ncommand = \"s {resultdir}\"\nvars = { b = [1, 2], a = [\"x\"] }\n",
		"dotted": "[run]\ncommand = \"s {resultdir}\"\nvars.b = [1, 2]\nvars.a = [\"x\"]\n",
		"top":    "run.command = \"s {resultdir}\"\nrun.vars.b = [1, 2]\nrun.vars.a = [\"x\"]\n",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := LoadConfig(writeConfig(t, content))
			if err != nil {
				t.Fatal(err)
			}
			want := []simswarm.Var{{Name: "b", Values: []string{"1", "2"}}, {Name: "a", Values: []string{"x"}}}
			if !reflect.DeepEqual(c.Run.Vars, want) {
				t.Errorf("Vars = %q, want %q", c.Run.Vars, want)
			}
		})
	}
}

// TestLoadConfigErrors checks that each mistake is reported with the file
// and the line it is on. The files are laid out so that a search for the
// first line merely mentioning the key's name would find a different line
// (build.command before run.command, a variable "n" after "[run]").
func TestLoadConfigErrors(t *testing.T) {
	cases := []struct {
		name    string
		content string
		line    int
		msg     string
	}{
		{"syntax", "[run]\ncommand = \"./sim {resultdir}\"\nrepeat = = 2\n", 3, ""},
		{"unterminated string", "[build]\ncommand = \"make\n", 2, ""},
		{"unknown top-level key", "[run]\ncommand = \"s {resultdir}\"\n\n[runn]\nx = 1\n", 4, `unknown key "runn"`},
		{"unknown key in table", "# comand lines\n[build]\ncommand = \"make\"\ncomand = \"make\"\n", 4, `unknown key "build.comand"`},
		{"unknown key named like another", "[build]\ncommand = \"make\"\n[project]\ncommand = \"x\"\n", 4, `unknown key "project.command"`},
		{"var not a list", "[run]\ncommand = \"s {n} {resultdir}\"\n[run.vars]\nn = 5\n", 4, "run.vars.n must be a non-empty list"},
		{"var empty list", "[run]\ncommand = \"s {n} {resultdir}\"\n[run.vars]\nn = []\n", 4, "run.vars.n must be a non-empty list"},
		{"var a table", "[run]\ncommand = \"s {resultdir}\"\n[run.vars.n]\nx = [1]\n", 3, "run.vars.n must be a non-empty list"},
		{"var dotted name", "[run]\ncommand = \"s {resultdir}\"\n[run.vars]\nn.x = [1]\n", 4, "run.vars.n must be a non-empty list"},
		{"var of dates", "[run]\ncommand = \"s {d} {resultdir}\"\n[run.vars]\nd = [2024-01-01]\n", 4, "values must be strings or numbers"},
		{"var of lists", "[run]\ncommand = \"s {d} {resultdir}\"\n[run.vars]\nd = [[1], [2]]\n", 4, "values must be strings or numbers"},
		{"vars not a table", "[run]\ncommand = \"s {resultdir}\"\nvars = [\"n\"]\n", 3, "run.vars must be a table"},
		{"unknown placeholder", "[build]\ncommand = \"make\"\n\n[run]\ncommand = \"./sim {seed} {resultdir}\"\n", 5, "unknown placeholder {seed}"},
		{"no resultdir", "[build]\ncommand = \"make\"\n[run]\nrepeat = 2\ncommand = \"./sim -r {repetition}\"\n", 5, "must contain {resultdir}"},
		{"reserved run", "[run]\ncommand = \"s {resultdir}\"\n[run.vars]\nx = [1]\nrun = [1]\n", 5, `"run" cannot be a variable name`},
		{"reserved resultdir", "[run]\ncommand = \"s {resultdir}\"\n[run.vars]\nresultdir = [\"a\"]\n", 4, `"resultdir" cannot be a variable name`},
		{"reserved args", "[run]\ncommand = \"s {resultdir}\"\n[run.vars]\nargs = [\"a\"]\n", 4, `"args" cannot be a variable name`},
		{"reserved repetition", "[run]\ncommand = \"s {resultdir}\"\n[run.vars]\nrepetition = [1]\n", 4, `"repetition" cannot be a variable name`},
		{"invalid var name", "[run]\ncommand = \"s {resultdir}\"\n[run.vars]\n\"a-b\" = [1]\n", 4, `"a-b" cannot be a variable name`},
		{"vars without command", "[build]\ncommand = \"make\"\n\n[run]\n\n[run.vars]\nn = [1, 2]\n", 4, "no command"},
		{"repeat without command", "[project]\nignore = []\n[run]\nrepeat = 2\n", 3, "no command"},
		{"bad results glob", "[run]\ncommand = \"s {resultdir}\"\n[results]\nfiles = [\"[a-\"]\n", 4, `results.files: "[a-" is not a glob`},
		{"results glob leaving the directory", "[results]\n\nfiles = [\"../x.csv\"]\n", 3, `"../x.csv" is not a glob relative`},
		{"unknown results key", "[results]\nfile = [\"x.csv\"]\n", 2, `unknown key "results.file"`},
		{"negative repeat", "[run]\ncommand = \"./sim --repeat-x {resultdir}\"\nrepeat = -1\n", 3, "run.repeat must be 1 or more"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.content)
			c, err := LoadConfig(p)
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			prefix := p + ":" + strconv.Itoa(tc.line) + ": "
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q does not start with %q", err, prefix)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	if _, err := LoadConfig(filepath.Join(t.TempDir(), ConfigFile)); !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
}

// TestRecipe: OMNeT++'s generated Makefile gets the default build; an
// explicit empty build.command means "nothing to build", which must not be
// confused with "not given".
func TestRecipe(t *testing.T) {
	str := func(s string) *string { return &s }
	cfg := func(cmd *string, artifacts ...string) *Config {
		c := &Config{}
		c.Build.Command, c.Build.Artifacts = cmd, artifacts
		return c
	}
	cases := []struct {
		name string
		p    Project
		want simswarm.Recipe
	}{
		{"Makefile, no config", Project{Makefile: true}, simswarm.Recipe{Command: DefaultBuild}},
		{"no Makefile, no config", Project{}, simswarm.Recipe{}},
		{"Makefile, config without build.command", Project{Makefile: true, Config: cfg(nil, "out/*")}, simswarm.Recipe{Command: DefaultBuild, Artifacts: []string{"out/*"}}},
		{"Makefile, build.command empty", Project{Makefile: true, Config: cfg(str(""), "bin/x")}, simswarm.Recipe{Command: "", Artifacts: []string{"bin/x"}}},
		{"build.command given", Project{Makefile: true, Config: cfg(str("ninja"))}, simswarm.Recipe{Command: "ninja"}},
	}
	for _, tc := range cases {
		if got := tc.p.Recipe(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Recipe() = %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if DefaultBuild != "make MODE=release -j{jobs}" {
		t.Errorf("DefaultBuild = %q: changing it changes every build key", DefaultBuild)
	}
}

// TestRecipeFromFile goes through LoadConfig: `command = ""` in the file
// must arrive as a non-nil empty command.
func TestRecipeFromFile(t *testing.T) {
	top := tree(t, map[string]string{".git/": "", "Makefile": "", ConfigFile: "[build]\ncommand = \"\"\n"})
	p, err := Find(top)
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Recipe(); r.Command != "" {
		t.Errorf("build.command = \"\" gave recipe %+v, want no build", r)
	}
	top = tree(t, map[string]string{".git/": "", "Makefile": "", ConfigFile: "[project]\nignore = [\"x\"]\n"})
	if p, err = Find(top); err != nil {
		t.Fatal(err)
	}
	if r := p.Recipe(); r.Command != DefaultBuild {
		t.Errorf("no build.command gave recipe %+v, want the default", r)
	}
	if p.HasRunTemplate() {
		t.Error("no [run] command, yet HasRunTemplate")
	}
}
