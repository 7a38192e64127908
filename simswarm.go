// Package simswarm holds the small domain types that cross the engine: the
// jobs a client submits, the records workers write back, and the keys that make
// builds and runs content-addressed. Every other package speaks these types, so
// they stay plain data with JSON encodings that are the wire format.
package simswarm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Version is the protocol version of jobs and records. Workers refuse jobs
// from a client of another version rather than misread them.
const Version = "0.2.0"

// Hash derives a key from its parts. Parts are length-prefixed so that
// ("ab","c") and ("a","bc") never collide.
func Hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Short is the prefix of a key shown to people.
func Short(key string) string {
	if len(key) > 12 {
		return key[:12]
	}
	return key
}

// Command kinds: how a runner turns a run number into a process.
const (
	// KindOmnetpp follows OMNeT++'s convention: the run list comes from
	// `-s -q runconfig` (`-s -q runnumbers` and `-q runs` where the program
	// does not answer it), a run is `-s -r N --result-dir=DIR`.
	KindOmnetpp = "omnetpp"
	// KindTemplate is a command template from simswarm.toml with {run},
	// {resultdir} and variable placeholders, run through /bin/sh -c.
	KindTemplate = "template"
)

// Command says what to run for a campaign, independent of run numbers.
type Command struct {
	Kind string `json:"kind"`
	// Argv is the simulation command (omnetpp kind), without any -r filter.
	Argv []string `json:"argv,omitempty"`
	// Filter is the user's -r filter (omnetpp kind); it selects runs but is
	// not part of a run's identity.
	Filter string `json:"filter,omitempty"`
	// Template and Vars describe a template-kind command.
	Template string   `json:"template,omitempty"`
	Vars     []Var    `json:"vars,omitempty"`
	Repeat   int      `json:"repeat,omitempty"`
	Args     []string `json:"args,omitempty"`
	// Env is what the command needs of the user's environment where it
	// runs: the variables that point into the campaign's projects
	// (INET_ROOT, a launcher's directory on PATH), pointing into the run's
	// tree instead (see internal/projenv).
	Env []EnvVar `json:"env,omitempty"`
}

// EnvVar is one environment variable a build or run gets on its worker.
type EnvVar struct {
	Name string `json:"name"`
	// Value is the value, with "{tree}" standing for the root of the tree
	// the worker laid out.
	Value string `json:"value"`
	// Prepend marks a search path (PATH, PYTHONPATH...): Value goes in
	// front of the worker's own, which is kept.
	Prepend bool `json:"prepend,omitempty"`
}

// Var is one iteration variable of a template command.
type Var struct {
	Name   string   `json:"name"`
	Values []string `json:"values"`
}

// identity is the part of a command that decides what a run computes.
func (c Command) identity() string {
	d := c
	d.Filter = ""
	b, _ := json.Marshal(d)
	return string(b)
}

// BuildJob asks a builder to build a snapshot.
type BuildJob struct {
	Version  string `json:"version"`
	Key      string `json:"key"`      // BuildKey(snapshot, recipe)
	Request  string `json:"request"`  // nonce: the client waits for a record with it
	Project  string `json:"project"`  // names the persistent workspace
	Snapshot string `json:"snapshot"` // manifest key
	Recipe   Recipe `json:"recipe"`
	Rebuild  bool   `json:"rebuild,omitempty"`
	// Layout places the project among the projects it uses; nil: alone.
	Layout *Layout `json:"layout,omitempty"`
	// Seed is the project's directory on the client's host (Host): a
	// builder on that host fills a fresh workspace from it, so the user's
	// own build is not done again.
	Seed string `json:"seed,omitempty"`
	Host string `json:"host,omitempty"`
}

// Layout lays several projects out in one tree, at the places they have
// relative to each other on the user's disk, so that a reference such as
// `../queueinglib` or `-L../../inet/src` holds on builders and runners.
// The job's own snapshot and artifact go to Place; each Use to its Dir.
type Layout struct {
	Place string `json:"place"` // slash form, relative to the tree's root
	Uses  []Use  `json:"uses"`  // in dependency order
}

// Use is a project, built, that the job's project uses.
type Use struct {
	Dir      string `json:"dir"`
	Project  string `json:"project"` // its name, for messages
	Snapshot string `json:"snapshot"`
	Artifact string `json:"artifact"`
}

// LayoutBuildKey is BuildKey for a project among others: the places and
// the artifacts of the projects it uses are part of what it builds from,
// so a new build of INET is a new build of everything that uses it, while
// a change in the project that uses INET leaves INET's key alone.
func LayoutBuildKey(snapshot string, r Recipe, l *Layout) string {
	if l == nil {
		return BuildKey(snapshot, r)
	}
	b, _ := json.Marshal(r)
	parts := []string{"build", snapshot, string(b), "place", l.Place}
	for _, u := range l.Uses {
		parts = append(parts, u.Dir, u.Artifact)
	}
	return Hash(parts...)
}

// Token makes s safe as one token of a subject, a key or a file name: a
// worker id holds a host name whose dots would split a subject, a project
// name comes from a client and must not climb out of a workspace directory.
// Letters, digits, '-' and '_' stay; anything else becomes '_'; "" is "_".
// It is the one sanitiser of names: the engine, safedir and the builder
// call it.
func Token(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// LastBuildKey is the builds-bucket key that points at a project's last
// successful build, for --no-build.
func LastBuildKey(project string) string {
	return "last." + Hash("project", project)[:32]
}

// Recipe is how a project is built.
type Recipe struct {
	Command   string   `json:"command"`             // run via /bin/sh -c at the project root; "" = no build
	Artifacts []string `json:"artifacts,omitempty"` // globs of outputs; empty = every new or changed non-object file
	Env       []EnvVar `json:"env,omitempty"`       // the build's share of the user's environment, as Command.Env
}

// BuildKey identifies a build request before the toolchain is known.
func BuildKey(snapshot string, r Recipe) string {
	b, _ := json.Marshal(r)
	return Hash("build", snapshot, string(b))
}

// ArtifactKey identifies a build output: the builder adds its toolchain.
func ArtifactKey(buildKey, toolchain string) string {
	return Hash("artifact", buildKey, toolchain)
}

// BuildState is where a build is.
type BuildState string

// Build states.
const (
	BuildRunning   BuildState = "running"
	BuildSucceeded BuildState = "succeeded"
	BuildFailed    BuildState = "failed"
)

// BuildRecord is what a builder reports for a BuildJob.
type BuildRecord struct {
	Key       string        `json:"key"`
	Request   string        `json:"request"`
	State     BuildState    `json:"state"`
	Artifact  string        `json:"artifact,omitempty"`
	Toolchain string        `json:"toolchain,omitempty"`
	Cached    bool          `json:"cached,omitempty"`
	Files     int           `json:"files,omitempty"`
	Bytes     int64         `json:"bytes,omitempty"`
	Tail      string        `json:"tail,omitempty"` // last lines of the build output
	Log       string        `json:"log,omitempty"`  // object name of the full log
	Error     string        `json:"error,omitempty"`
	Warnings  []string      `json:"warnings,omitempty"`
	Compiled  int           `json:"compiled,omitempty"` // compiler invocations seen in the output
	Host      string        `json:"host,omitempty"`
	Wall      time.Duration `json:"wall,omitempty"`
	Finished  time.Time     `json:"finished"`
}

// BuildProgress is what a builder publishes while a build runs.
type BuildProgress struct {
	Compiled int    `json:"compiled"`
	Line     string `json:"line"`
	// Command is the build command as the builder runs it ({jobs}
	// replaced), sent once before its first line.
	Command string `json:"command,omitempty"`
}

// JobVersion is the protocol version the job was written in.
func (j BuildJob) JobVersion() string { return j.Version }

// ListJob asks a runner for the run list of an omnetpp-kind command.
type ListJob struct {
	Version  string  `json:"version"`
	Key      string  `json:"key"` // ListKey
	Snapshot string  `json:"snapshot"`
	Artifact string  `json:"artifact"`
	Workdir  string  `json:"workdir"`
	Command  Command `json:"command"`
	Layout   *Layout `json:"layout,omitempty"`
}

// ListKey identifies a run list: it is a pure function of its inputs.
func ListKey(artifact, workdir string, c Command) string {
	return Hash("list", artifact, workdir, c.identity(), c.Filter)
}

// RunList is a resolved run list.
type RunList struct {
	Key  string   `json:"key"`
	Runs []int    `json:"runs"`
	Vars []string `json:"vars,omitempty"` // iteration variables per run, parallel to Runs, when known
	// Idents is, parallel to Runs, what decides each run's result (a hash
	// of its resolved configuration and seed set, omnetpp.RunConfig), when
	// the program could tell it: such a run is known by what it computes,
	// not by its number, so a campaign that grows and renumbers its runs
	// reuses the results it already has.
	Idents []string `json:"idents,omitempty"`
	// Config names the object holding the program's -q runconfig output:
	// why a run that was done must run again (--dry-run).
	Config string    `json:"config,omitempty"`
	Error  string    `json:"error,omitempty"`
	At     time.Time `json:"at"`
}

// CampaignID names the campaign of a command on an artifact.
func CampaignID(artifact, workdir string, c Command) string {
	return Hash("campaign", artifact, workdir, c.identity(), c.Filter)[:16]
}

// RunKey identifies one run's result: a run that succeeded under a key is
// never executed again. ident is the run's RunList.Idents entry: with it
// the key is what the run computes (the command without what selects runs,
// and the run's resolved configuration); without, the run's number.
func RunKey(artifact, workdir string, c Command, run int, ident string) string {
	if ident != "" {
		return Hash("run", artifact, workdir, c.SelectionFree(), "config", ident)
	}
	return Hash("run", artifact, workdir, c.identity(), strconv.Itoa(run))
}

// SelectionFree is the command's identity without what selects its runs:
// the run filter and OMNeT++'s --repeat, whose change renumbers runs but
// leaves each one computing what its configuration says.
func (c Command) SelectionFree() string {
	d := c
	d.Filter = ""
	d.Argv = nil
	for _, a := range c.Argv {
		if !strings.HasPrefix(a, "--repeat=") {
			d.Argv = append(d.Argv, a)
		}
	}
	b, _ := json.Marshal(d)
	return string(b)
}

// JobVersion is the protocol version the job was written in.
func (j ListJob) JobVersion() string { return j.Version }

// RunJob asks a runner to execute one run.
type RunJob struct {
	Version  string  `json:"version"`
	Campaign string  `json:"campaign"`
	Run      int     `json:"run"`
	Key      string  `json:"key"`
	Snapshot string  `json:"snapshot"`
	Artifact string  `json:"artifact"`
	Workdir  string  `json:"workdir"`
	Command  Command `json:"command"`
	// Layout, when the project uses others, places it and them in the
	// run's tree; Workdir is then relative to the tree's root.
	Layout *Layout `json:"layout,omitempty"`
	JobSettings
	// Submission names the submit that enqueued this job: a runner that
	// finds a record of the same submission under the job's key answers
	// from it (the job came back after its outcome was stored).
	Submission string `json:"submission,omitempty"`
	// Expect is how long the run took in earlier campaigns, by the
	// client's history (0: unknown): a Slurm pilot that has not timed the
	// campaign itself yet takes no run that cannot finish before its end.
	Expect time.Duration `json:"expect,omitempty"`
}

// JobSettings are how a campaign's runs are executed, as the client asked;
// the campaign record keeps them so that a retry from elsewhere (the
// dashboard) runs them the same way.
type JobSettings struct {
	Timeout time.Duration `json:"timeout,omitempty"`
	// Batch fixes how many runs one process executes (opp_runall's -b);
	// 0 lets the runner decide from measured start-up and run times.
	Batch int `json:"batch,omitempty"`
	// Retries is how often a run that fails on its own is run again before
	// it counts as failed.
	Retries int `json:"retries,omitempty"`
	// Local, when set, is a directory on the client's disk that the runner
	// may write result files into directly (embedded mode: no copy through
	// the store).
	Local string `json:"local,omitempty"`
	Host  string `json:"host,omitempty"` // the client's host id; Local is valid only there
}

// RunJob is the job of one run of the campaign, in the submission named;
// ident is the run's RunList.Idents entry ("" where the list has none).
// It is the one way a run job is made (client submit, dashboard retry).
func (c *Campaign) RunJob(run int, ident, submission string) RunJob {
	return RunJob{Version: Version, Campaign: c.ID, Run: run,
		Key:      c.RunKey(run, ident),
		Snapshot: c.Snapshot, Artifact: c.Artifact, Workdir: c.Workdir, Command: c.Command, Layout: c.Layout,
		JobSettings: c.Settings, Submission: submission}
}

// RunKey is the key of one of the campaign's runs.
func (c *Campaign) RunKey(run int, ident string) string {
	return RunKey(c.Artifact, c.Workdir, c.Command, run, ident)
}

// Ident is the ident of run in the list ("" when the list has none).
func (l *RunList) Ident(run int) string {
	if l == nil || len(l.Idents) != len(l.Runs) {
		return ""
	}
	i := sort.SearchInts(l.Runs, run)
	if i < len(l.Runs) && l.Runs[i] == run {
		return l.Idents[i]
	}
	for j, n := range l.Runs { // a list that is not sorted
		if n == run {
			return l.Idents[j]
		}
	}
	return ""
}

// JobVersion is the protocol version the job was written in.
func (j RunJob) JobVersion() string { return j.Version }

// BatchKey groups run jobs that one process may execute together.
func (j RunJob) BatchKey() string {
	return j.Campaign + "|" + j.Artifact + "|" + j.Workdir
}

// RunState is where a run is.
type RunState string

// Run states.
const (
	RunPending   RunState = "pending"
	RunRunning   RunState = "running"
	RunSucceeded RunState = "succeeded"
	RunFailed    RunState = "failed"
	RunCancelled RunState = "cancelled"
)

// RunStates is every run state, in the order of a run's life.
var RunStates = []RunState{RunPending, RunRunning, RunSucceeded, RunFailed, RunCancelled}

// File is one result file of a run.
type File struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	Data []byte `json:"data,omitempty"` // inline content of small files
}

// RunRecord is the outcome of one run, written by the runner.
type RunRecord struct {
	Key      string   `json:"key"`
	Campaign string   `json:"campaign"`
	Run      int      `json:"run"`
	State    RunState `json:"state"`
	Exit     int      `json:"exit"`
	Signal   string   `json:"signal,omitempty"`
	TimedOut bool     `json:"timed_out,omitempty"`
	// Reason says why a run failed when no process said so (infrastructure).
	Reason      string   `json:"reason,omitempty"`
	Errors      []string `json:"errors,omitempty"`
	Tail        string   `json:"tail,omitempty"`
	Fingerprint string   `json:"fingerprint,omitempty"`
	// FingerprintCalculated is what the run computed, as OMNeT++ prints it
	// ("1634-c795/tplx, a171-b721/tpx"): fingerprint suites are updated from it.
	FingerprintCalculated string        `json:"fingerprint_calculated,omitempty"`
	Limit                 string        `json:"limit,omitempty"`
	SimTime               string        `json:"sim_time,omitempty"`
	Events                int64         `json:"events,omitempty"`
	Wall                  time.Duration `json:"wall"`
	CPU                   time.Duration `json:"cpu"`
	Batch                 int           `json:"batch,omitempty"` // runs in the process that ran it
	Worker                string        `json:"worker,omitempty"`
	Host                  string        `json:"host,omitempty"`
	Files                 []File        `json:"files,omitempty"`
	Object                string        `json:"object,omitempty"` // results archive in the store, for large files
	LocalDir              string        `json:"local_dir,omitempty"`
	// Reused is set when the run was not executed for this campaign because
	// a run with the same key had already succeeded.
	Reused bool `json:"reused,omitempty"`
	// Submission is the RunJob's: which submit this outcome answers.
	Submission string    `json:"submission,omitempty"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
}

// Compact is the record without inline file contents, for places that
// only need to know what happened.
func (r RunRecord) Compact() *RunRecord {
	files := make([]File, len(r.Files))
	for i, f := range r.Files {
		files[i] = File{Name: f.Name, Size: f.Size}
	}
	r.Files = files
	return &r
}

// Done reports whether the run reached a final state.
func (r *RunRecord) Done() bool {
	return r.State == RunSucceeded || r.State == RunFailed || r.State == RunCancelled
}

// StatusKey is the key of a run's state within its campaign.
func StatusKey(campaign string, run int) string {
	return campaign + "." + strconv.Itoa(run)
}

// ParseStatusKey splits a StatusKey.
func ParseStatusKey(k string) (campaign string, run int, ok bool) {
	i := strings.LastIndexByte(k, '.')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(k[i+1:])
	if err != nil {
		return "", 0, false
	}
	return k[:i], n, true
}

// Campaign is the record of a submitted campaign.
type Campaign struct {
	ID        string        `json:"id"`
	Project   string        `json:"project"`
	Workdir   string        `json:"workdir"`
	Command   Command       `json:"command"`
	Snapshot  string        `json:"snapshot"`
	Artifact  string        `json:"artifact"`
	Layout    *Layout       `json:"layout,omitempty"`
	Runs      int           `json:"runs"`
	Submitted time.Time     `json:"submitted"`
	State     CampaignState `json:"state"`
	// Settings are the run settings of the last submit.
	Settings JobSettings `json:"settings"`
	// KeepResults keeps the runs' results in the store after the client
	// fetched them (run --keep-results), until gc.
	KeepResults bool `json:"keep_results,omitempty"`
}

// CampaignState is where a campaign is. A campaign is active from its submit until its client
// saw every run end (done) or someone cancelled it; a cancel sticks until
// the campaign is submitted again.
type CampaignState string

// Campaign states.
const (
	CampaignActive    CampaignState = "active"
	CampaignCancelled CampaignState = "cancelled"
	CampaignDone      CampaignState = "done"
)

// Role is what a worker does.
type Role string

// Worker roles, as heartbeats name them.
const (
	RoleRunner  Role = "runner"
	RoleBuilder Role = "builder"
)

// WorkerState is what a worker's heartbeats say of it.
type WorkerState string

// Worker states.
const (
	WorkerOnline   WorkerState = "online"   // beating
	WorkerDraining WorkerState = "draining" // beating, taking no new jobs
	WorkerLost     WorkerState = "lost"     // silent for three heartbeats
	WorkerStopped  WorkerState = "stopped"  // said it stopped
)

// Worker is a worker's heartbeat.
type Worker struct {
	ID      string    `json:"id"`
	Host    string    `json:"host"`
	Role    Role      `json:"role"`
	Slots   int       `json:"slots"`
	Busy    int       `json:"busy"`
	Version string    `json:"version"`
	Seen    time.Time `json:"seen"`
	// Current lists the runs in progress as "<campaign>.<run>".
	Current    []string `json:"current,omitempty"`
	CacheBytes int64    `json:"cache_bytes,omitempty"`
	// Draining is set when the worker finishes its runs but takes no more.
	Draining bool `json:"draining,omitempty"`
	// Slurm is a pilot runner's Slurm job ("12_3": task 3 of array 12);
	// Host is then its node.
	Slurm string `json:"slurm,omitempty"`
}
