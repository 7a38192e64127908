package campaign

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/simswarm/simswarm/internal/project"
	"github.com/simswarm/simswarm/internal/snapshot"
	"github.com/simswarm/simswarm/internal/status"
)

// warnLarge names, once each, snapshot files over 50 MB that no build
// made: a stray capture or data set that every new snapshot uploads and
// every runner host fetches, and says how to leave it out.
func (c *Client) warnLarge(proj *project.Project, man *snapshot.Manifest) {
	memo := ""
	if c.Opt.StateDir != "" {
		memo = filepath.Join(c.Opt.StateDir, "hashcache", proj.Name()+".large")
	}
	large := snapshot.Large(proj.Root, man, snapshot.LargeFile, memo)
	if len(large) == 0 || c.Opt.Progress == nil {
		return
	}
	w := c.Opt.Progress
	var names []string
	for _, e := range large {
		names = append(names, fmt.Sprintf("%s (%s)", e.Path, status.HumanBytes(e.Size)))
	}
	fmt.Fprintf(w, "simswarm: warning: the snapshot of %s holds %d file(s) over %s that no build made: %s. "+
		"Runs that need none of them go faster without: list them in .gitignore, or in ignore = [...] under [project] in %s.\n",
		proj.Root, len(large), status.HumanBytes(snapshot.LargeFile), strings.Join(names, ", "), project.ConfigFile)
}
