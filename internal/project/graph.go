package project

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/simswarm/simswarm/internal/omnetpp"
)

// EnvRoots lists, separated by ':', directories besides the defaults under
// which projects a simulation uses may live (an INET installed in /opt).
const EnvRoots = "SIMSWARM_ROOTS"

// Graph is a simulation's project together with the projects it uses, as
// they sit on disk. Builders and runners recreate the same layout below a
// directory of their own, so relative references (`../queueinglib`,
// `-L../../inet4.5/src`) keep working.
type Graph struct {
	// Base is the lowest directory holding every project.
	Base string
	// Nodes is every project in dependency order: a project comes after
	// the projects it uses. The simulation's project is last.
	Nodes []*Node
	// Roots are the directories referenced projects were allowed under.
	Roots []string
}

// Node is one project of a graph.
type Node struct {
	*Project
	Rel  string  // Root relative to the graph's Base, slash form
	Uses []*Node // the projects it uses directly
	Via  string  // where the reference that brought it in was read; "" for the simulation's project
}

// Main is the simulation's project.
func (g *Graph) Main() *Node { return g.Nodes[len(g.Nodes)-1] }

// Deps is every project n uses, directly or not, in dependency order.
func (g *Graph) Deps(n *Node) []*Node {
	want := map[*Node]bool{}
	var mark func(*Node)
	mark = func(m *Node) {
		for _, u := range m.Uses {
			if !want[u] {
				want[u] = true
				mark(u)
			}
		}
	}
	mark(n)
	var out []*Node
	for _, m := range g.Nodes {
		if want[m] {
			out = append(out, m)
		}
	}
	return out
}

// Workdir is the simulation's directory relative to Base.
func (g *Graph) Workdir() string {
	m := g.Main()
	if m.Rel == "." {
		return m.Workdir
	}
	if m.Workdir == "." {
		return m.Rel
	}
	return m.Rel + "/" + m.Workdir
}

// Resolve finds the projects the simulation's project p uses, where
// OMNeT++ says so: the Eclipse .project's referenced projects, -I and -L
// directories of the generated Makefiles, the ned-path and load-libs of the
// ini files the command reads, -n and -l on the command line or in the
// program's launcher script; and `uses` in simswarm.toml. It follows them
// transitively. argv is the simulation command (program first), or nil.
//
// A referenced project must lie under an allowed root: the directory
// holding p (its workspace), the git work tree p is in, `roots` in
// p's simswarm.toml, or $SIMSWARM_ROOTS. The file system root and the home
// directory are never a project, nor is a directory holding p.
func Resolve(p *Project, argv []string) (*Graph, error) {
	r := &resolver{main: p, byRoot: map[string]*Node{}}
	if err := r.allowedRoots(); err != nil {
		return nil, err
	}
	main := &Node{Project: p}
	r.byRoot[p.Root] = main
	if err := r.visit(main, argv, nil); err != nil {
		return nil, err
	}
	g := &Graph{Nodes: r.order, Roots: r.roots}
	g.Base = p.Root
	for _, n := range g.Nodes {
		g.Base = commonDir(g.Base, n.Root)
	}
	for _, n := range g.Nodes {
		rel, _ := filepath.Rel(g.Base, n.Root)
		n.Rel = filepath.ToSlash(rel)
	}
	return g, nil
}

type resolver struct {
	main   *Project
	roots  []string
	home   string
	byRoot map[string]*Node
	order  []*Node
	done   map[*Node]bool
}

func (r *resolver) allowedRoots() error {
	r.home, _ = os.UserHomeDir()
	if r.home != "" {
		if h, err := filepath.EvalSymlinks(r.home); err == nil {
			r.home = h
		}
	}
	add := func(d string) {
		if d == "" {
			return
		}
		if e, err := filepath.EvalSymlinks(d); err == nil {
			d = e
		}
		if !slices.Contains(r.roots, d) {
			r.roots = append(r.roots, d)
		}
	}
	add(filepath.Dir(r.main.Root))
	for d := r.main.Root; ; d = filepath.Dir(d) {
		if exists(filepath.Join(d, ".git")) {
			add(d)
			break
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	if r.main.Config != nil {
		for _, d := range r.main.Config.Project.Roots {
			if !filepath.IsAbs(d) {
				d = filepath.Join(r.main.Root, d)
			}
			if _, err := os.Stat(d); err != nil {
				return fmt.Errorf("%s: project.roots: %s does not exist", filepath.Join(r.main.Root, ConfigFile), d)
			}
			add(filepath.Clean(d))
		}
	}
	for _, d := range filepath.SplitList(os.Getenv(EnvRoots)) {
		if d != "" {
			add(filepath.Clean(d))
		}
	}
	return nil
}

// visit reads n's references, resolves each to a project, visits those
// first (depth first, so dependencies precede their users) and refuses a
// cycle. path is the chain of projects that led to n.
func (r *resolver) visit(n *Node, argv []string, path []*Node) error {
	if r.done == nil {
		r.done = map[*Node]bool{}
	}
	path = append(path, n)
	refs, err := r.references(n, argv)
	if err != nil {
		return err
	}
	// Eclipse names a project; where it lives is the IDE's business. Paths
	// go first, so a name can match a project they found anywhere.
	slices.SortStableFunc(refs, func(a, b omnetpp.Ref) int {
		return strings.Compare(a.Name, "") - strings.Compare(b.Name, "")
	})
	for _, ref := range refs {
		u, err := r.project(n, ref)
		if err != nil {
			return err
		}
		if u == nil || u == n || slices.Contains(n.Uses, u) {
			continue
		}
		if i := slices.Index(path, u); i >= 0 {
			var names []string
			for _, m := range append(path[i:], u) {
				names = append(names, m.Root)
			}
			return fmt.Errorf("projects use each other in a cycle: %s (%s)", strings.Join(names, " -> "), ref.Via)
		}
		n.Uses = append(n.Uses, u)
		if !r.done[u] {
			if err := r.visit(u, nil, path); err != nil {
				return err
			}
		}
	}
	r.done[n] = true
	r.order = append(r.order, n)
	return nil
}

// references collects what n's files say it uses.
func (r *resolver) references(n *Node, argv []string) ([]omnetpp.Ref, error) {
	root := n.Root
	relName := func(p string) string {
		if rel, err := filepath.Rel(filepath.Dir(root), p); err == nil {
			return filepath.ToSlash(rel)
		}
		return p
	}
	var refs []omnetpp.Ref
	if n.Config != nil {
		for _, u := range n.Config.Project.Uses {
			d := u
			if !filepath.IsAbs(d) {
				d = filepath.Join(root, d)
			}
			refs = append(refs, omnetpp.Ref{Dir: filepath.Clean(d), Via: relName(filepath.Join(root, ConfigFile)) + " uses " + u})
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, ".project")); err == nil {
		pr, err := omnetpp.ProjectRefs(b, relName(filepath.Join(root, ".project")))
		if err != nil {
			return nil, fmt.Errorf("%s: %v", filepath.Join(root, ".project"), err)
		}
		refs = append(refs, pr...)
	}
	for _, mk := range []string{"Makefile", "src/Makefile"} {
		p := filepath.Join(root, filepath.FromSlash(mk))
		if b, err := os.ReadFile(p); err == nil {
			refs = append(refs, omnetpp.MakefileRefs(b, filepath.Dir(p), relName(p))...)
		}
	}
	if argv == nil {
		return refs, nil
	}
	wd := filepath.Join(root, filepath.FromSlash(n.Workdir))
	prog := argv[0]
	if onPath, ok := Launcher(prog); ok {
		// INET's `inet`, found on PATH after `source setenv`: the project
		// holding it is used, wherever the simulation's directory is.
		prog = onPath
		refs = append(refs, omnetpp.Ref{Dir: filepath.Dir(onPath), Via: "the program " + argv[0] + " (" + onPath + " on PATH)"})
	} else if !filepath.IsAbs(prog) {
		prog = filepath.Join(wd, prog)
	}
	if b, err := readHead(prog, 64<<10); err == nil {
		refs = append(refs, omnetpp.LauncherRefs(b, filepath.Dir(prog), relName(prog))...)
	}
	refs = append(refs, omnetpp.CommandRefs(argv[1:], wd, "the command line")...)
	seen := map[string]bool{}
	inis := omnetpp.IniFiles(argv)
	for i := 0; i < len(inis) && i < 64; i++ {
		ini := inis[i]
		if !filepath.IsAbs(ini) {
			ini = filepath.Join(wd, ini)
		}
		if seen[ini] {
			continue
		}
		seen[ini] = true
		b, err := os.ReadFile(ini)
		if err != nil {
			continue // the simulation reports a missing ini file itself
		}
		ir, includes := omnetpp.IniRefs(b, filepath.Dir(ini), relName(ini))
		refs = append(refs, ir...)
		inis = append(inis, includes...)
	}
	return refs, nil
}

// project resolves a reference of n to the project holding it: nil when it
// points into n itself.
func (r *resolver) project(n *Node, ref omnetpp.Ref) (*Node, error) {
	dir := ref.Dir
	if ref.Name != "" {
		var err error
		if dir, err = r.byName(n, ref); err != nil {
			return nil, err
		}
	}
	if within(dir, n.Root) {
		return nil, nil
	}
	if dir == "/" || dir == r.home {
		return nil, fmt.Errorf("refusing to snapshot %s (%s): %s", dir, ref.Via, whatDir(dir, r.home))
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("referenced project %s does not exist (%s)", dir, ref.Via)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("referenced project %s is not a directory (%s)", dir, ref.Via)
	}
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	for _, m := range r.byRoot {
		if within(dir, m.Root) {
			return m, nil
		}
	}
	allowed := ""
	for _, a := range r.roots {
		if within(dir, a) {
			allowed = a
			break
		}
	}
	if allowed == "" {
		return nil, fmt.Errorf("referenced project %s (%s) is outside every allowed root (%s): add its parent to $%s or to roots in %s",
			dir, ref.Via, strings.Join(r.roots, ", "), EnvRoots, ConfigFile)
	}
	root := projectRoot(dir, allowed)
	if root == "/" || root == r.home {
		return nil, fmt.Errorf("refusing to snapshot %s (%s): %s", root, ref.Via, whatDir(root, r.home))
	}
	if within(r.main.Root, root) {
		return nil, fmt.Errorf("referenced project %s (%s) contains the simulation's project %s: it would snapshot itself", root, ref.Via, r.main.Root)
	}
	if m := r.byRoot[root]; m != nil {
		return m, nil
	}
	p := &Project{Root: root, Workdir: "."}
	p.readMakefile()
	if isFile(filepath.Join(root, ConfigFile)) {
		if p.Config, err = LoadConfig(filepath.Join(root, ConfigFile)); err != nil {
			return nil, err
		}
	}
	m := &Node{Project: p, Via: ref.Via}
	r.byRoot[root] = m
	return m, nil
}

// byName finds an Eclipse project by name in n's workspace (the directory
// holding n): the directory of that name, else the sibling whose .project
// carries the name (a checkout of inet4.5 in a directory called inet).
func (r *resolver) byName(n *Node, ref omnetpp.Ref) (string, error) {
	for _, m := range r.order {
		if b, err := os.ReadFile(filepath.Join(m.Root, ".project")); err == nil && omnetpp.ProjectName(b) == ref.Name {
			return m.Root, nil
		}
	}
	ws := filepath.Dir(n.Root)
	if fi, err := os.Stat(filepath.Join(ws, ref.Name)); err == nil && fi.IsDir() {
		return filepath.Join(ws, ref.Name), nil
	}
	entries, _ := os.ReadDir(ws)
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(ws, e.Name(), ".project")); err == nil && omnetpp.ProjectName(b) == ref.Name {
			return filepath.Join(ws, e.Name()), nil
		}
	}
	return "", fmt.Errorf("referenced project %q does not exist (%s): no %s, and no project of that name beside %s",
		ref.Name, ref.Via, filepath.Join(ws, ref.Name), n.Root)
}

// projectRoot is the project a directory belongs to: the nearest directory
// at or above it, not above the allowed root, holding an Eclipse .project
// (what OMNeT++ calls a project), else simswarm.toml, else a Makefile;
// else the directory itself.
func projectRoot(dir, allowed string) string {
	for _, marker := range []string{".project", ConfigFile, "Makefile"} {
		for d := dir; within(d, allowed) && d != allowed; d = filepath.Dir(d) {
			if exists(filepath.Join(d, marker)) {
				return d
			}
		}
	}
	return dir
}

func whatDir(d, home string) string {
	if d == home {
		return "it is the home directory"
	}
	return "it is the file system root"
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	if p == dir {
		return true
	}
	if dir == "/" {
		return strings.HasPrefix(p, "/")
	}
	return strings.HasPrefix(p, dir+string(filepath.Separator))
}

func commonDir(a, b string) string {
	for !within(b, a) {
		parent := filepath.Dir(a)
		if parent == a {
			return a
		}
		a = parent
	}
	return a
}

func readHead(p string, n int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	b := make([]byte, n)
	k, _ := f.Read(b)
	return b[:k], nil
}

// Placement is where n and the projects it uses sit relative to the lowest
// directory holding them all: n's place and each dependency's directory,
// slash form. A project's builds depend on these relative places only, not
// on the rest of the graph, so INET keeps its build key in every campaign.
func (g *Graph) Placement(n *Node) (place string, deps []*Node, dirs []string) {
	deps = g.Deps(n)
	base := n.Root
	for _, d := range deps {
		base = commonDir(base, d.Root)
	}
	rel := func(p string) string {
		r, _ := filepath.Rel(base, p)
		return filepath.ToSlash(r)
	}
	for _, d := range deps {
		dirs = append(dirs, rel(d.Root))
	}
	return rel(n.Root), deps, dirs
}

// Launcher finds a program named without a slash on PATH when it is a
// project's launcher script (INET's bin/inet, Simu5G's bin/simu5g), not
// the simulator's own tools: a shell script in a directory without
// OMNeT++'s opp_run, one level below a project's root (bin/). The simulator is the runner's environment, never a
// project to snapshot.
func Launcher(prog string) (string, bool) {
	if prog == "" || strings.Contains(prog, "/") {
		return "", false
	}
	found, err := exec.LookPath(prog)
	if err != nil {
		return "", false
	}
	if abs, err := filepath.Abs(found); err == nil {
		found = abs
	}
	bin := filepath.Dir(found)
	top := filepath.Dir(bin)
	if exists(filepath.Join(bin, "opp_run")) || top == "/" {
		return "", false
	}
	// A script in ~/bin is the user's own, not a project's.
	if !exists(filepath.Join(top, "Makefile")) && !exists(filepath.Join(top, ".project")) && !exists(filepath.Join(top, ConfigFile)) {
		return "", false
	}
	head, err := readHead(found, 128)
	if err != nil || !bytes.HasPrefix(head, []byte("#!")) {
		return "", false
	}
	first, _, _ := bytes.Cut(head, []byte("\n"))
	if !bytes.Contains(first, []byte("sh")) {
		return "", false
	}
	return found, true
}
