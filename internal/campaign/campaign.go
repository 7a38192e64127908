// Package campaign is the client side of simswarm run: it snapshots the
// project, has it built, resolves the run list, submits the runs that are not
// done yet, follows their outcomes, and lays result files into the results
// directory as each run finishes.
package campaign

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/atomicfile"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/fserr"
	"github.com/simswarm/simswarm/internal/omnetpp"
	"github.com/simswarm/simswarm/internal/project"
	"github.com/simswarm/simswarm/internal/safedir"
	"github.com/simswarm/simswarm/internal/snapshot"
	"github.com/simswarm/simswarm/internal/sweep"
	"github.com/simswarm/simswarm/internal/treestore"
)

// Options is what a user asks of simswarm run.
type Options struct {
	Dir     string   // the simulation's directory
	Argv    []string // the simulation command
	Results string   // results directory; relative to Dir when not absolute
	DryRun  bool
	MaxRuns int // refuse larger campaigns; 0: DefaultMaxRuns
	Timeout time.Duration
	Batch   int // runs per process; 0: adaptive
	Retries int
	// KeepResults keeps results in the store after they were fetched
	// (by default they are deleted once in the results directory).
	KeepResults bool
	// ReuseFailures takes a run that failed on its own (an exit status or
	// <!> Error lines, not an infrastructure fault) with the same key as
	// done: a fingerprint suite's ERROR verdict on an unchanged build and
	// test is reused, not run again.
	ReuseFailures bool
	Detach        bool // submit and return
	Rebuild       bool
	NoBuild       bool // use the project's last artifact
	// BuildJobs: builders are jobs submitted for this campaign (Slurm
	// build jobs), each costing a job's queue wait: a build this engine
	// already has is used without one, and a builder not heard yet is not
	// reported missing (its job waits in the queue, and that is said).
	BuildJobs bool
	StateDir  string // for the client's hash cache
	Host      string // this host's id, for results written in place
	Local     bool   // runners on this host may write into Results directly
	Progress  io.Writer
	Quiet     bool
	Stdout    io.Writer
	Interrupt <-chan struct{} // closed on Ctrl-C: cancel the campaign
	// EstimateSlots is the slots --dry-run estimates the wall time on (0:
	// the connected runners').
	EstimateSlots int
	// Server and Creds are how workers would reach this engine, for the
	// hint that names the command starting a missing one ("" : embedded).
	Server, Creds string
	// Repeat, when positive, replaces a run template's repeat, and Runs,
	// when not nil, restricts a template campaign to those run numbers:
	// how simswarm run --until grows a template's repetitions in rounds
	// while its run numbers stay those of the final size. (An OMNeT++
	// command says the same with --repeat and -r among its arguments.)
	Repeat int
	Runs   []int
	// Outputs are files and directories the command writes into the
	// projects besides the results directory (a fingerprint suite's
	// UPDATED, FAILED and ERROR files): never part of a snapshot, or each
	// run of the command would change what the next one builds and runs.
	Outputs []string
	// ItemBuildFailures makes a project that does not build the outcome
	// of its items (RunItems) instead of an end to every item: a bisect
	// tests commits that may not build beside others that do.
	ItemBuildFailures bool
}

// SetupError is a problem found before any run started: usage,
// configuration, build or run list (exit status 2).
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

func setupErr(format string, a ...any) error {
	return &SetupError{Err: fmt.Errorf(format, a...)}
}

// RanError is a problem found after runs executed: exit status 1, since
// 2 promises that nothing was run. Errors it wraps (a SetupError among
// them) are still found by errors.As.
type RanError struct {
	Err      error
	Executed int // runs executed before it
}

func (e *RanError) Error() string {
	return fmt.Sprintf("%v (after %d runs executed; their results are kept)", e.Err, e.Executed)
}
func (e *RanError) Unwrap() error { return e.Err }

// ErrInterrupted means the user cancelled the campaign.
var ErrInterrupted = errors.New("interrupted")

// Summary is what a campaign came to.
type Summary struct {
	Campaign  string    `json:"campaign"`
	Runs      int       `json:"runs"`
	Succeeded int       `json:"succeeded"`
	Failed    int       `json:"failed"`
	Cached    int       `json:"cached"`
	Executed  int       `json:"executed"`
	Cancelled int       `json:"cancelled,omitempty"`
	Failures  []Failure `json:"failures"`
	Results   string    `json:"results"`
	Wall      float64   `json:"wall_seconds"`
	// Hosts counts the runs executed on each host.
	Hosts    map[string]int `json:"hosts,omitempty"`
	Detached bool           `json:"detached,omitempty"`
	Build    *BuildInfo     `json:"build,omitempty"`
	// Fingerprints counts the runs that checked their fingerprint
	// (--fingerprint): OMNeT++ exits 0 on a mismatch, so only this says.
	Fingerprints *Fingerprints `json:"fingerprints,omitempty"`
	// Projects lists every project of a campaign whose project uses
	// others, in build order, with what each one's build did.
	Projects []ProjectInfo `json:"projects,omitempty"`
	// Estimate is --dry-run's expected wall time, when earlier runs were timed.
	Estimate *Estimate `json:"estimate,omitempty"`
}

// BuildInfo says what the campaign's build did.
type BuildInfo struct {
	ID       string   `json:"id"` // for simswarm logs build
	Cached   bool     `json:"cached"`
	Compiled int      `json:"compiled"`
	Files    int      `json:"files"`
	Seconds  float64  `json:"seconds"`
	Warnings []string `json:"warnings,omitempty"`
}

// Fingerprints is what the runs' fingerprint checks came to.
type Fingerprints struct {
	Verified   int   `json:"verified"`
	Mismatched []int `json:"mismatched"` // run numbers
}

// fingerprint notes a succeeded run's fingerprint check.
func (s *Summary) fingerprint(run int, verdict string) {
	if verdict == "" {
		return
	}
	if s.Fingerprints == nil {
		s.Fingerprints = &Fingerprints{Mismatched: []int{}}
	}
	if verdict == "mismatch" {
		s.Fingerprints.Mismatched = append(s.Fingerprints.Mismatched, run)
	} else {
		s.Fingerprints.Verified++
	}
}

// Failure is one failed run.
type Failure struct {
	// Item names the list item the run belongs to (simswarm run --list):
	// "file:line"; Run is -1 where the item could not run at all.
	Item     string   `json:"item,omitempty"`
	Run      int      `json:"run"`
	Vars     string   `json:"vars,omitempty"`
	Exit     int      `json:"exit"`
	Signal   string   `json:"signal,omitempty"`
	TimedOut bool     `json:"timed_out,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	Errors   []string `json:"errors"`
	Output   string   `json:"output,omitempty"` // the run's .out file in the results directory
}

// Client runs campaigns against an engine.
type Client struct {
	Eng *engine.Engine
	Opt Options

	built   *BuildInfo     // what this client's build request came to
	sources map[string]int // compilable sources by snapshot key
	// stages keeps the scratch stages runs' files land through, for the
	// next runs; drained when a campaign is followed to its end.
	stages safedir.Pool
}

// prepared is a campaign ready to submit.
type prepared struct {
	proj     *project.Project
	cmd      simswarm.Command
	snapshot string
	artifact string
	layout   *simswarm.Layout // nil: the project uses no other
	workdir  string           // the simulation's directory in the run's tree
	projects []ProjectInfo    // when it uses others
	id       string
	runs     runSet
	results  string
	settings simswarm.JobSettings
	// camp and submission are set once the campaign is submitted.
	camp       *simswarm.Campaign
	submission string
}

// Run carries out a whole campaign.
func (c *Client) Run(ctx context.Context) (*Summary, error) {
	defer c.stages.Drain()
	start := time.Now()
	p, err := c.prepare(ctx)
	if err != nil {
		return nil, err
	}
	if c.Opt.DryRun {
		s, err := c.dryRun(ctx, p)
		if s != nil {
			s.Projects = p.projects
		}
		return s, err
	}
	s, err := c.follow(ctx, p)
	if s != nil {
		s.Wall = time.Since(start).Seconds()
		s.Projects = p.projects
	}
	return s, err
}

func (c *Client) prepare(ctx context.Context) (*prepared, error) {
	o := c.Opt
	fi, err := os.Stat(o.Dir)
	if err != nil {
		return nil, setupErr("simulation directory %s: %v", o.Dir, fserr.WithoutPath(err))
	}
	if !fi.IsDir() {
		return nil, setupErr("simulation directory %s is not a directory", o.Dir)
	}
	proj, err := project.Find(o.Dir)
	if err != nil {
		return nil, &SetupError{Err: err}
	}
	p := &prepared{proj: proj, settings: simswarm.JobSettings{Timeout: o.Timeout, Batch: o.Batch, Retries: o.Retries}}
	if p.cmd, err = command(proj, o.Argv); err != nil {
		return nil, &SetupError{Err: err}
	}
	o.selectTemplate(&p.cmd)
	if p.cmd.Kind == simswarm.KindTemplate && !o.DryRun {
		// Before a snapshot or build is paid for.
		if err := o.tooMany(sweep.Size(p.cmd), "the run template ("+sweep.Factors(p.cmd)+")"); err != nil {
			return nil, err
		}
	}
	if p.results, err = resultsDir(o.Dir, o.Results); err != nil {
		return nil, &SetupError{Err: err}
	}
	if err := c.checkWorkers(ctx); err != nil {
		return nil, err
	}
	var refArgv []string
	if p.cmd.Kind == simswarm.KindOmnetpp {
		refArgv = p.cmd.Argv
	}
	graph, err := project.Resolve(proj, refArgv)
	if err != nil {
		return nil, &SetupError{Err: err}
	}
	if p.snapshot, p.artifact, p.layout, p.projects, err = c.prepareProjects(ctx, graph, p.results); err != nil {
		return nil, err
	}
	p.workdir = treeWorkdir(p.layout, proj.Workdir)
	p.cmd.Env = projectEnv(graph, graph.Main())
	p.id = simswarm.CampaignID(p.artifact, p.workdir, p.cmd)
	if o.DryRun && p.artifact == "" && p.cmd.Kind == simswarm.KindOmnetpp {
		// The run list needs the build a dry run does not make, but for
		// runs given by number (-r 3, -r 0..9).
		p.runs, _ = plainRuns(p.cmd)
		return p, nil
	}
	if p.runs, err = c.runList(ctx, p); err != nil {
		return nil, err
	}
	if err := c.checkRuns(p); err != nil {
		return nil, err
	}
	return p, nil
}

// command turns the user's command line into what runners execute.
func command(p *project.Project, argv []string) (simswarm.Command, error) {
	if p.HasRunTemplate() {
		cfg := p.Config.Run
		if len(argv) > 0 && !strings.Contains(cfg.Command, "{args}") {
			return simswarm.Command{}, fmt.Errorf("%s describes the run command, which has no {args}: remove the arguments %q or add {args} to run.command",
				filepath.Join(p.Root, project.ConfigFile), strings.Join(argv, " "))
		}
		return simswarm.Command{Kind: simswarm.KindTemplate, Template: cfg.Command, Vars: cfg.Vars, Repeat: cfg.Repeat, Args: argv}, nil
	}
	if len(argv) == 0 {
		return simswarm.Command{}, errors.New("no simulation command: usage: simswarm run [flags] -- <program> [args...]")
	}
	if argv[0] == "" {
		return simswarm.Command{}, errors.New("the simulation program name is empty")
	}
	for _, opt := range []string{"-q", "--result-dir"} {
		if omnetpp.HasOption(argv, opt) {
			return simswarm.Command{}, fmt.Errorf("remove %s from the simulation command: simswarm sets it for each run", opt)
		}
	}
	if opt := omnetpp.MissingValue(argv); opt != "" {
		return simswarm.Command{}, fmt.Errorf("%s at the end of the simulation command has no value", opt)
	}
	filter, rest, found := omnetpp.RunFilter(argv)
	if found && strings.TrimSpace(filter) == "" {
		return simswarm.Command{}, errors.New("the run filter (-r) is empty: give one such as -r 0..9 or -r '$numHosts==10', or leave -r out to run every run")
	}
	return simswarm.Command{Kind: simswarm.KindOmnetpp, Argv: rest, Filter: filter}, nil
}

func describe(c simswarm.Command) string {
	if c.Kind == simswarm.KindTemplate {
		return "the run template"
	}
	s := strings.Join(c.Argv, " ")
	if c.Filter != "" {
		s += " -r " + c.Filter
	}
	return s
}

// resultsDir resolves and checks the results directory before anything runs:
// finding it unwritable after an hour of simulation would lose the hour.
func resultsDir(dir, results string) (string, error) {
	if results == "" {
		results = "results"
	}
	if !filepath.IsAbs(results) {
		results = filepath.Join(dir, results)
	}
	abs, err := filepath.Abs(results)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("results directory %s is not writable: %v", abs, fserr.WithoutPath(err))
	}
	f, err := os.CreateTemp(abs, ".simswarm-check-*")
	if err != nil {
		return "", fmt.Errorf("results directory %s is not writable: %v", abs, fserr.WithoutPath(err))
	}
	f.Close()
	os.Remove(f.Name())
	if err := sweepScratch(abs); err != nil {
		return "", err
	}
	return abs, nil
}

// upload snapshots the project and stores the files the engine lacks.
func (c *Client) upload(ctx context.Context, proj *project.Project, results string) (string, error) {
	opts := snapshot.Options{Ignore: proj.Ignore(), Keep: omnetpp.ProjectStateFiles}
	dirs := []string{results}
	if c.Opt.StateDir != "" {
		opts.HashCache = filepath.Join(c.Opt.StateDir, "hashcache", proj.Name()+".json")
		_ = os.MkdirAll(filepath.Dir(opts.HashCache), 0o755)
		dirs = rememberResults(filepath.Join(c.Opt.StateDir, "hashcache", proj.Name()+".results"), results)
	}
	// Every results directory this project ever used stays out of its
	// snapshot: results are outputs, and counting them would make each
	// campaign rebuild the next.
	for _, d := range append(dirs, c.Opt.Outputs...) {
		if rel, err := filepath.Rel(proj.Root, d); err == nil && !strings.HasPrefix(rel, "..") && rel != "." {
			opts.Exclude = append(opts.Exclude, filepath.ToSlash(rel))
		}
	}
	start := time.Now()
	man, err := snapshot.Scan(ctx, proj.Root, opts)
	if err != nil {
		return "", setupErr("snapshot %s: %v", proj.Root, err)
	}
	c.warnLarge(proj, man)
	key := man.Key()
	if c.sources == nil {
		c.sources = map[string]int{}
	}
	c.sources[key] = countSources(man, proj.Root)
	stored, err := treestore.New(c.Eng).Upload(ctx, proj.Root, man)
	if err != nil {
		return "", fmt.Errorf("store the snapshot of %s: %w", proj.Root, err)
	}
	c.saySnapshot(proj, man, stored, time.Since(start))
	return key, nil
}

// saySnapshot tells what a project's snapshot came to: INET's tree is
// thousands of files and tens of MB, and its first upload takes seconds.
// stored is the number of files stored now, < 0 when the store had the
// whole snapshot already.
func (c *Client) saySnapshot(proj *project.Project, man *snapshot.Manifest, stored int, took time.Duration) {
	if c.Opt.Quiet || c.Opt.Progress == nil {
		return
	}
	what := "unchanged"
	switch {
	case stored == 0:
		what = "no new file content"
	case stored == 1:
		what = "1 file stored"
	case stored > 1:
		what = fmt.Sprintf("%d files stored", stored)
	}
	fmt.Fprintf(c.Opt.Progress, "simswarm: snapshot of %s: %d files, %.1f MB (%s) in %s\n",
		proj.Root, len(man.Entries), float64(man.TotalSize())/1e6, what, took.Round(10*time.Millisecond))
}

func nonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// runList resolves the campaign's run numbers (and their iteration
// variables when the program tells them).
func (c *Client) runList(ctx context.Context, p *prepared) (runSet, error) {
	if p.cmd.Kind == simswarm.KindTemplate {
		return templateRuns(p.cmd), nil
	}
	key := simswarm.ListKey(p.artifact, p.workdir, p.cmd)
	if l, ok, err := c.Eng.RunList(ctx, key); err != nil {
		return runSet{}, err
	} else if ok && l.Error == "" {
		return listRuns(l), nil
	}
	w, err := c.Eng.WaitList(ctx, key)
	if err != nil {
		return runSet{}, err
	}
	defer w.Stop()
	job := simswarm.ListJob{Version: simswarm.Version, Key: key, Snapshot: p.snapshot, Artifact: p.artifact, Workdir: p.workdir, Command: p.cmd, Layout: p.layout}
	if err := c.Eng.SubmitList(ctx, job); err != nil {
		return runSet{}, err
	}
	stop := c.sayIfMissing(ctx, simswarm.RoleRunner)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return runSet{}, ctx.Err()
		case <-c.Opt.Interrupt:
			return runSet{}, ErrInterrupted
		case l, ok := <-w.Updates():
			if !ok {
				return runSet{}, ctx.Err()
			}
			if l.Error != "" {
				return runSet{}, setupErr("run list: %s", l.Error)
			}
			return listRuns(l), nil
		}
	}
}

// checkWorkers refuses to submit to workers of another version: they would
// misread the jobs or fail every run.
func (c *Client) checkWorkers(ctx context.Context) error {
	heard, err := c.Eng.Workers(ctx)
	if err != nil {
		return err
	}
	for _, w := range heard {
		if w.Version != simswarm.Version {
			return setupErr("%s %s runs simswarm %s, this client is %s: run the same version everywhere", w.Role, w.ID, w.Version, simswarm.Version)
		}
	}
	return nil
}

// Attach follows a campaign submitted earlier (perhaps with --detach, or by
// a client that was killed): it resubmits what is missing, extracts results
// into the results directory and ends with the summary.
func (c *Client) Attach(ctx context.Context, id string) (*Summary, error) {
	defer c.stages.Drain()
	start := time.Now()
	camp, ok, err := c.Eng.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, setupErr("no campaign %q in this engine", id)
	}
	// Following submits what is missing: a cancelled campaign would run
	// again behind the back of whoever cancelled it.
	if camp.State == simswarm.CampaignCancelled {
		return nil, setupErr("campaign %s was cancelled: attach follows a campaign, it does not submit it again (run its command again for that)", id)
	}
	p := &prepared{proj: &project.Project{Root: camp.Project, Workdir: camp.Workdir}, cmd: camp.Command,
		snapshot: camp.Snapshot, artifact: camp.Artifact, id: camp.ID, layout: camp.Layout, workdir: camp.Workdir, settings: camp.Settings}
	if err := c.ownProject(camp); err != nil {
		return nil, err
	}
	if p.results, err = resultsDir(c.Opt.Dir, c.Opt.Results); err != nil {
		return nil, &SetupError{Err: err}
	}
	c.warnf("campaign %s of %s: results go to %s", id, filepath.Join(camp.Project, camp.Workdir), p.results)
	if p.runs, err = c.runList(ctx, p); err != nil {
		return nil, err
	}
	s, err := c.follow(ctx, p)
	if s != nil {
		s.Wall = time.Since(start).Seconds()
	}
	return s, err
}

// ownProject refuses to attach, from the directory of another project on
// this machine, a campaign whose project is here: its files would land in
// the other project's results directory. An absolute --results is the
// user saying where they go; a project not on this machine (attached from
// another host) has no directory of its own here.
func (c *Client) ownProject(camp *simswarm.Campaign) error {
	if filepath.IsAbs(c.Opt.Results) || camp.Project == "" {
		return nil
	}
	if fi, err := os.Stat(camp.Project); err != nil || !fi.IsDir() {
		return nil
	}
	here, err := project.Find(c.Opt.Dir)
	if err != nil || here.Root == camp.Project {
		return nil
	}
	return setupErr("campaign %s is of project %s, not of %s: attach it there (-C %s), or give an absolute --results DIR for its files",
		camp.ID, camp.Project, here.Root, filepath.Join(camp.Project, camp.Workdir))
}

// rememberResults adds dir to the list kept in file and returns the list.
func rememberResults(file, dir string) []string {
	b, _ := os.ReadFile(file)
	var dirs []string
	seen := false
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" {
			continue
		}
		if _, err := os.Stat(l); err != nil && l != dir {
			continue // gone: forget it
		}
		seen = seen || l == dir
		dirs = append(dirs, l)
	}
	if !seen {
		dirs = append(dirs, dir)
	}
	_ = atomicfile.WriteFile(file, []byte(strings.Join(dirs, "\n")+"\n"), 0o644)
	return dirs
}

// countSources counts what a build compiles: C and C++ sources and
// OMNeT++ message definitions (each becomes a C++ source), outside the
// source directories of the features the user disabled (INET with a
// reduced feature set compiles 694 of its 1707 sources).
func countSources(m *snapshot.Manifest, root string) int {
	var off []string
	if defs, err := os.ReadFile(filepath.Join(root, ".oppfeatures")); err == nil {
		state, _ := os.ReadFile(filepath.Join(root, ".oppfeaturestate"))
		for _, d := range omnetpp.DisabledSourceDirs(defs, state) {
			off = append(off, d+"/")
		}
	}
	n := 0
outer:
	for _, e := range m.Entries {
		switch filepath.Ext(e.Path) {
		case ".cc", ".cpp", ".cxx", ".c", ".msg":
			for _, d := range off {
				if strings.HasPrefix(e.Path, d) {
					continue outer
				}
			}
			n++
		}
	}
	return n
}
