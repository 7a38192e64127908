package campaign

import (
	"context"
	"os"
	"path"
	"path/filepath"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/project"
	"github.com/simswarm/simswarm/internal/projenv"
)

// ProjectInfo is one project of a campaign whose project uses others.
type ProjectInfo struct {
	Root     string     `json:"root"`
	Dir      string     `json:"dir"` // its place in the trees builders and runners lay out
	Snapshot string     `json:"snapshot"`
	Artifact string     `json:"artifact"`
	Build    *BuildInfo `json:"build,omitempty"`
}

// prepareProjects snapshots and builds every project of the graph in
// dependency order, each cached by its own content (and the builds of the
// projects it uses), and returns the simulation's project's snapshot,
// artifact and layout. A graph of one project has no layout: the project
// sits at the tree's root, as it always did.
func (c *Client) prepareProjects(ctx context.Context, g *project.Graph, results string) (snap, art string, l *simswarm.Layout, infos []ProjectInfo, err error) {
	snaps := map[*project.Node]string{}
	arts := map[*project.Node]string{}
	for _, n := range g.Nodes {
		if snaps[n], err = c.upload(ctx, n.Project, results); err != nil {
			return "", "", nil, nil, err
		}
		l = layoutOf(g, n, snaps, arts)
		if arts[n], err = c.build(ctx, n.Project, snaps[n], l, projectEnv(g, n)); err != nil {
			return "", "", nil, nil, err
		}
		infos = append(infos, ProjectInfo{Root: n.Root, Dir: n.Rel, Snapshot: simswarm.Short(snaps[n]), Artifact: simswarm.Short(arts[n]), Build: c.built})
	}
	m := g.Main()
	if len(g.Nodes) == 1 && arts[m] != "" {
		infos = nil
	}
	return snaps[m], arts[m], l, infos, nil
}

func layoutOf(g *project.Graph, n *project.Node, snaps, arts map[*project.Node]string) *simswarm.Layout {
	place, deps, dirs := g.Placement(n)
	if len(deps) == 0 {
		return nil
	}
	l := &simswarm.Layout{Place: place}
	for i, d := range deps {
		l.Uses = append(l.Uses, simswarm.Use{Dir: dirs[i], Project: filepath.Base(d.Root), Snapshot: snaps[d], Artifact: arts[d]})
	}
	return l
}

// treeWorkdir is the simulation's directory in the run's tree.
func treeWorkdir(l *simswarm.Layout, workdir string) string {
	if l == nil {
		return workdir
	}
	return path.Join(l.Place, workdir)
}

// projectEnv is what of the user's environment points into n or the
// projects it uses (INET_ROOT, a launcher's directory on PATH), pointing
// into the tree laid out for n instead.
func projectEnv(g *project.Graph, n *project.Node) []simswarm.EnvVar {
	place, deps, dirs := g.Placement(n)
	roots := map[string]string{n.Root: "."}
	if len(deps) > 0 {
		roots[n.Root] = place
		for i, d := range deps {
			roots[d.Root] = dirs[i]
		}
	}
	return projenv.Capture(os.Environ(), roots)
}
