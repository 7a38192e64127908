package campaign

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/project"
	"github.com/simswarm/simswarm/internal/treestore"
)

// BuildError is a failed build; Tail is the end of the compiler's output.
type BuildError struct {
	Msg  string
	Tail string
}

func (e *BuildError) Error() string { return e.Msg }

// build has a builder build the snapshot and returns the artifact key. The
// builder answers from its cache in milliseconds when nothing changed.
func (c *Client) build(ctx context.Context, proj *project.Project, snap string, l *simswarm.Layout, env []simswarm.EnvVar) (string, error) {
	if c.Opt.NoBuild {
		last, ok, err := c.Eng.Build(ctx, simswarm.LastBuildKey(proj.Name()))
		if err != nil {
			return "", err
		}
		if !ok {
			return "", setupErr("--no-build: %s has never been built on this engine; run once without --no-build", proj.Root)
		}
		return last.Artifact, nil
	}
	recipe := proj.Recipe()
	if recipe.Command != "" {
		recipe.Env = env
	}
	key := simswarm.LayoutBuildKey(snap, recipe, l)
	if c.Opt.DryRun && recipe.Command != "" {
		return c.builtAlready(ctx, key)
	}
	if c.Opt.BuildJobs && !c.Opt.Rebuild {
		if art, err := c.builtAlready(ctx, key); err == nil && art != "" {
			return art, nil
		}
	}
	req := nonce()
	w, err := c.Eng.WaitBuild(ctx, key)
	if err != nil {
		return "", err
	}
	defer w.Stop()
	show := newBuildView(c.Opt.Progress, c.Opt.Quiet, proj.Root, recipe.Command)
	if stop, err := c.Eng.OnBuildProgress(req, show.update); err == nil {
		defer stop()
	}
	job := simswarm.BuildJob{Version: simswarm.Version, Key: key, Request: req, Project: proj.Name(),
		Snapshot: snap, Recipe: recipe, Rebuild: c.Opt.Rebuild, Layout: l}
	if c.Opt.Local {
		job.Seed, job.Host = proj.Root, c.Opt.Host
	}
	c.announceColdBuild(ctx, proj, key, snap, recipe)
	if err := c.Eng.SubmitBuild(ctx, job); err != nil {
		return "", err
	}
	if !c.Opt.BuildJobs {
		stop := c.sayIfMissing(ctx, simswarm.RoleBuilder)
		defer stop()
	}
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-c.Opt.Interrupt:
			return "", ErrInterrupted
		case rec, ok := <-w.Updates():
			if !ok {
				return "", ctx.Err()
			}
			if rec.Request != req {
				continue
			}
			show.done(rec)
			c.built = &BuildInfo{ID: simswarm.Short(key), Cached: rec.Cached, Compiled: rec.Compiled, Files: rec.Files,
				Seconds: rec.Wall.Seconds(), Warnings: rec.Warnings}
			if rec.State == simswarm.BuildFailed {
				return "", &SetupError{Err: &BuildError{Msg: "build failed: " + rec.Error + "; full log: simswarm logs build " + simswarm.Short(key), Tail: rec.Tail}}
			}
			return rec.Artifact, nil
		}
	}
}

// builtAlready is build for --dry-run, which builds nothing: the artifact
// of a build this engine already has, or "" (and c.built nil) when it has
// none.
func (c *Client) builtAlready(ctx context.Context, key string) (string, error) {
	c.built = nil
	rec, ok, err := c.Eng.Build(ctx, key)
	if err != nil || !ok || rec.State != simswarm.BuildSucceeded {
		return "", err
	}
	if has, err := treestore.New(c.Eng).HasArtifact(ctx, rec.Artifact); err != nil || !has {
		return "", err
	}
	c.built = &BuildInfo{ID: simswarm.Short(key), Cached: true, Files: rec.Files}
	return rec.Artifact, nil
}

// buildView shows a build's progress: a line redrawn on a terminal, a line
// every ten seconds elsewhere.
type buildView struct {
	w         io.Writer
	quiet     bool
	tty       bool
	root, cmd string
	mu        sync.Mutex
	started   time.Time
	shown     time.Time
	announced bool
}

func newBuildView(w io.Writer, quiet bool, root, cmd string) *buildView {
	v := &buildView{w: w, quiet: quiet || w == nil, root: root, cmd: cmd, started: time.Now()}
	if f, ok := w.(*os.File); ok {
		v.tty = term.IsTerminal(int(f.Fd()))
	}
	return v
}

func (v *buildView) update(p simswarm.BuildProgress) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.quiet {
		return
	}
	if p.Command != "" {
		v.cmd = p.Command // as the builder runs it: make -j8, not -j{jobs}
	}
	if !v.announced {
		v.announced = true
		fmt.Fprintf(v.w, "simswarm: building %s (%s)\n", v.root, v.cmd)
	}
	if p.Command != "" {
		return
	}
	line := strings.TrimSpace(p.Line)
	if len(line) > 60 {
		line = line[:57] + "..."
	}
	el := time.Since(v.started).Round(time.Second)
	switch {
	case v.tty:
		fmt.Fprintf(v.w, "\r\033[Kbuild %s: %d files compiled | %s", el, p.Compiled, line)
	case time.Since(v.shown) >= 10*time.Second:
		v.shown = time.Now()
		fmt.Fprintf(v.w, "build %s: %d files compiled | %s\n", el, p.Compiled, line)
	}
}

func (v *buildView) done(rec *simswarm.BuildRecord) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.quiet {
		return
	}
	if v.tty && v.announced {
		fmt.Fprint(v.w, "\r\033[K")
	}
	for _, w := range rec.Warnings {
		fmt.Fprintf(v.w, "simswarm: warning: %s\n", w)
	}
	if rec.State == simswarm.BuildSucceeded && !rec.Cached && v.cmd != "" {
		fmt.Fprintf(v.w, "simswarm: built in %s: %d files compiled, %d files in the artifact (build %s)\n",
			time.Since(v.started).Round(10*time.Millisecond), rec.Compiled, rec.Files, simswarm.Short(rec.Key))
	}
}

// secondsPerSource is what compiling one C++ source of an OMNeT++ model
// costs with -O3 (measured: queueinglib 1.8 s, tictoc 3 s a file on one
// core): a cold build's time is told before it starts, not discovered.
const secondsPerSource = 2.5

// announceColdBuild says, before a build that no builder has done yet,
// how long it is likely to take: INET has ~700 to ~1700 sources, 20
// minutes to hours on 2 cores. Not before a build that starts from an
// earlier one (the builder's workspace keeps its objects) or from the
// user's own build.
func (c *Client) announceColdBuild(ctx context.Context, proj *project.Project, key, snap string, recipe simswarm.Recipe) {
	if c.Opt.Quiet || c.Opt.Progress == nil || recipe.Command == "" || c.Opt.Rebuild {
		return
	}
	if rec, ok, _ := c.Eng.Build(ctx, key); ok && rec.State == simswarm.BuildSucceeded {
		return
	}
	if _, ok, _ := c.Eng.Build(ctx, simswarm.LastBuildKey(proj.Name())); ok {
		return
	}
	if c.Opt.Local && userBuilt(proj.Root) {
		fmt.Fprintf(c.Opt.Progress, "simswarm: %s has no build on this engine yet; the builder starts from your own build there, so only what is not built there compiles\n", proj.Root)
		return
	}
	if c.sources[snap] == 0 {
		return
	}
	fmt.Fprintf(c.Opt.Progress, "simswarm: %s has no build on this engine yet: %s\n", proj.Root, c.coldBuild(proj, snap))
}

// coldBuild tells what building snap from scratch costs.
func (c *Client) coldBuild(proj *project.Project, snap string) string {
	n := c.sources[snap]
	cores := runtime.NumCPU()
	est := time.Duration(float64(n) * secondsPerSource / float64(cores) * float64(time.Second))
	how := fmt.Sprintf("%d sources to compile, about %s on %d cores from scratch", n, est.Round(time.Second), cores)
	switch {
	case c.Opt.Local && userBuilt(proj.Root):
		how += "; the builder starts from your own build in " + proj.Root + ", so only what is not built there compiles"
	case !c.Opt.Local:
		how += " on one builder of that size; its compiler cache and distcc servers shorten it"
	}
	return how
}

// userBuilt tells whether the user built the project in place: an
// opp_makemake build leaves its objects under out/ at the root of its
// Eclipse project, or beside its Makefile (src/out) without one.
func userBuilt(root string) bool {
	dirs, _ := filepath.Glob(filepath.Join(root, "*", "out"))
	for _, d := range append(dirs, filepath.Join(root, "out")) {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return true
		}
	}
	return false
}
