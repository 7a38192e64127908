package project

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simswarm/simswarm/internal/testkit"
)

func rels(g *Graph) []string {
	var out []string
	for _, n := range g.Nodes {
		out = append(out, n.Rel)
	}
	return out
}

// TestResolveQueuenet: OMNeT++'s own queuenet, with no simswarm.toml, uses
// queueinglib (its .project, its launcher's -l, its ini's ned-path).
func TestResolveQueuenet(t *testing.T) {
	o := testkit.OMNeTPP(t)
	ws, _ := filepath.EvalSymlinks(t.TempDir())
	qn := o.CopySample(t, "queuenet", ws)
	o.CopySample(t, "queueinglib", ws)
	p, err := Find(qn)
	if err != nil {
		t.Fatal(err)
	}
	g, err := Resolve(p, []string{"./queuenet", "-u", "Cmdenv", "-c", "CQN"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rels(g), " "); got != "queueinglib queuenet" || g.Base != ws || g.Workdir() != "queuenet" {
		t.Fatalf("projects %q in %s (workdir %s), want queueinglib before queuenet in %s", got, g.Base, g.Workdir(), ws)
	}
	if lib := g.Nodes[0]; lib.Recipe().Command != DefaultBuild || !strings.Contains(lib.Via, "queuenet") {
		t.Errorf("queueinglib: recipe %q, found via %q", lib.Recipe().Command, lib.Via)
	}
}

// TestResolveTwoLevels: the library two levels away is found through the
// library in between, and comes first.
func TestResolveTwoLevels(t *testing.T) {
	o := testkit.OMNeTPP(t)
	ws, _ := filepath.EvalSymlinks(t.TempDir())
	l := o.GenerateLayered(t, ws)
	p, err := Find(l.App)
	if err != nil {
		t.Fatal(err)
	}
	g, err := Resolve(p, []string{"./app", "-u", "Cmdenv", "-c", "Sweep"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rels(g), " "); got != "libs/core libs/mid app" {
		t.Fatalf("projects %q, want libs/core libs/mid app", got)
	}
	main := g.Main()
	if len(main.Uses) != 1 || main.Uses[0].Rel != "libs/mid" {
		t.Errorf("app uses %v directly, want only libs/mid", main.Uses)
	}
	if d := g.Deps(main); len(d) != 2 || d[0].Rel != "libs/core" {
		t.Errorf("app's dependencies %v, want core then mid", d)
	}
}

func TestResolveBadInputs(t *testing.T) {
	home, _ := os.UserHomeDir()
	for _, c := range []struct {
		name  string
		files map[string]string
		argv  []string
		want  string
	}{
		{"missing project", map[string]string{"ws/sim/Makefile": "all:\n", "ws/sim/.project": "<projectDescription><name>sim</name><projects><project>inet4.5</project></projects></projectDescription>"},
			nil, `referenced project "inet4.5" does not exist (sim/.project)`},
		{"missing directory", map[string]string{"ws/sim/Makefile": "all:\n", "ws/sim/omnetpp.ini": "[General]\nned-path = .;../inet/src\n"},
			[]string{"./sim"}, "ws/inet/src does not exist (sim/omnetpp.ini ned-path ../inet/src)"},
		{"cycle", map[string]string{
			"ws/sim/Makefile": "all:\n", "ws/sim/simswarm.toml": "[project]\nuses = [\"../a\"]\n",
			"ws/a/Makefile": "all:\n", "ws/a/simswarm.toml": "[project]\nuses = [\"../b\"]\n",
			"ws/b/Makefile": "all:\n", "ws/b/simswarm.toml": "[project]\nuses = [\"../a\"]\n"},
			nil, "projects use each other in a cycle: "},
		{"outside the roots", map[string]string{"ws/sim/Makefile": "all:\n", "other/lib/Makefile": "all:\n", "ws/sim/simswarm.toml": "[project]\nuses = [\"../../other/lib\"]\n"},
			nil, "other/lib (sim/simswarm.toml uses ../../other/lib) is outside every allowed root"},
		{"file system root", map[string]string{"ws/sim/Makefile": "all:\n"},
			[]string{"./sim", "-n", "/"}, "refusing to snapshot / (the command line -n /): it is the file system root"},
		{"home", map[string]string{"ws/sim/Makefile": "all:\n"},
			[]string{"./sim", "-n", home}, "refusing to snapshot " + home + " (the command line -n " + home + "): it is the home directory"},
		{"contains the project", map[string]string{"ws/sim/Makefile": "all:\n", "ws/sim/omnetpp.ini": "[General]\nned-path = ..\n"},
			[]string{"./sim"}, "contains the simulation's project"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := tree(t, c.files)
			p, err := Find(filepath.Join(root, "ws", "sim"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Resolve(p, c.argv)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line with %q", err, c.want)
			}
		})
	}
}

// TestResolveRoots: a project elsewhere is allowed once its parent is an
// allowed root ($SIMSWARM_ROOTS), and a Makefile -L into it finds its root.
func TestResolveRoots(t *testing.T) {
	root := tree(t, map[string]string{
		"ws/sim/Makefile":           "LIBS = -L../../opt/inet/src -lINET\n",
		"opt/inet/.project":         "<projectDescription><name>inet</name></projectDescription>",
		"opt/inet/Makefile":         "all:\n",
		"opt/inet/src/Makefile":     "all:\n",
		"opt/inet/.oppfeaturestate": "",
	})
	p, err := Find(filepath.Join(root, "ws", "sim"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Resolve(p, nil); err == nil || !strings.Contains(err.Error(), "outside every allowed root") {
		t.Fatalf("without roots: %v", err)
	}
	t.Setenv(EnvRoots, filepath.Join(root, "opt"))
	g, err := Resolve(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rels(g), " "); got != "opt/inet ws/sim" || g.Base != root {
		t.Errorf("projects %q in %s", got, g.Base)
	}
}

// TestRecipeMakefiles: a project whose Makefile generates the real ones
// (INET's `make makefiles`) gets them made by its build, with no
// simswarm.toml; an OMNeT++ sample's generated Makefile is built as is.
func TestRecipeMakefiles(t *testing.T) {
	root := tree(t, map[string]string{
		"inet/Makefile":  "all: checkmakefiles\n\tcd src && $(MAKE)\n\nmakefiles:\n\tcd src && opp_makemake -f --deep --make-so -o INET\n",
		"inet/.project":  "<projectDescription><name>inet</name></projectDescription>",
		"aloha/Makefile": "all: $(TARGET_FILES)\n",
	})
	for dir, want := range map[string]string{"inet": MakefilesBuild, "aloha": DefaultBuild} {
		p, err := Find(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Recipe().Command; got != want {
			t.Errorf("%s builds with %q, want %q", dir, got, want)
		}
	}
}
