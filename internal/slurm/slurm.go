// Package slurm runs a campaign's runners as Slurm pilot jobs: arrays of
// `simswarm runner` jobs, one array per wave, sized from the queue and
// chunked under the site's limits, cancelled with the campaign. Slurm's
// queue wait is paid once per pilot, never per run. It also tells a pilot
// what Slurm gave it: its job, its node and when its time ends.
package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	osuser "os/user"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/simswarm/simswarm/internal/engine"
)

// Settings are a site's sbatch settings: the [slurm] table of
// simswarm.toml, overridden by the run command's flags.
type Settings struct {
	Partition string `toml:"partition"`
	Account   string `toml:"account"`
	// Time is each pilot's time limit, in sbatch's --time forms (30, 2:00:00, 1-0).
	Time string `toml:"time"`
	// CPUs are the cores of each pilot (one run slot per core).
	CPUs int    `toml:"cpus-per-pilot"`
	Mem  string `toml:"mem"`
	// MaxPilots bounds the pilots of one wave (and so the allocations held at once).
	MaxPilots int `toml:"max-pilots"`
	// Options are more sbatch options, one per item ("--qos=short").
	Options []string `toml:"sbatch-options"`
	// Prologue lines run in the pilot's script before the runner
	// ("module load gcc/12 omnetpp/6.1").
	Prologue []string `toml:"prologue"`
	// Listen is the address the client's engine listens on for pilots
	// (host:port; port 0 picks a free one); its host must be one compute
	// nodes reach.
	Listen string `toml:"listen"`
	// Simswarm is the path of simswarm on the compute nodes (default: the
	// path of the one submitting, for a shared file system).
	Simswarm string `toml:"simswarm"`
	// Cache is the runner cache on a node (default: node-local
	// $TMPDIR/simswarm-runner).
	Cache string `toml:"cache"`
	// IdleExit: a pilot with nothing to run for this long ends, releasing
	// its allocation. LostExit: a pilot that cannot reach the engine for
	// this long ends (the client was killed).
	IdleExit string `toml:"idle-exit"`
	LostExit string `toml:"lost-exit"`
	// EndSignal is how long before its time limit Slurm warns a pilot
	// (sbatch --signal=B:USR1@N), so that it hands its runs back before
	// Slurm kills it; a pilot also takes no run it expects to end later
	// than that (default: 2 minutes, at most a quarter of Time).
	EndSignal string `toml:"end-signal"`
	// Build is where builds run: "slurm" (the default) as a Slurm job of
	// their own on a compute node, "login" in the simswarm process on the
	// login node, where a site allows compiling there.
	Build string `toml:"build"`
}

// Where builds run.
const (
	BuildSlurm = "slurm"
	BuildLogin = "login"
)

// Defaults fill what a site left unset.
const (
	DefaultCPUs      = 1
	DefaultMaxPilots = 64
	DefaultIdleExit  = time.Minute
	DefaultLostExit  = 2 * time.Minute
	DefaultEndSignal = 2 * time.Minute
)

// Durations are the pilots' timeouts, parsed.
type Durations struct {
	IdleExit, LostExit, EndSignal time.Duration
}

// Check validates the settings and fills defaults, naming a bad value.
func (s *Settings) Check() (Durations, error) {
	var d Durations
	if s.CPUs == 0 {
		s.CPUs = DefaultCPUs
	}
	if s.CPUs < 0 {
		return d, fmt.Errorf("slurm cpus-per-pilot must be at least 1, not %d", s.CPUs)
	}
	if s.MaxPilots == 0 {
		s.MaxPilots = DefaultMaxPilots
	}
	switch s.Build {
	case "":
		s.Build = BuildSlurm
	case BuildSlurm, BuildLogin:
	default:
		return d, fmt.Errorf("slurm build %q: want slurm (a build job) or login (here)", s.Build)
	}
	if s.MaxPilots < 0 {
		return d, fmt.Errorf("slurm max-pilots must be at least 1, not %d", s.MaxPilots)
	}
	if s.Listen != "" {
		_, port, err := net.SplitHostPort(s.Listen)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			return d, fmt.Errorf("slurm listen %q: want HOST:PORT (port 0: a free one)", s.Listen)
		}
	}
	for _, o := range s.Options {
		if !strings.HasPrefix(o, "-") {
			return d, fmt.Errorf("slurm sbatch option %q: give options as --name=value", o)
		}
	}
	for _, x := range []struct {
		name string
		val  string
		def  time.Duration
		out  *time.Duration
	}{{"idle-exit", s.IdleExit, DefaultIdleExit, &d.IdleExit}, {"lost-exit", s.LostExit, DefaultLostExit, &d.LostExit},
		{"end-signal", s.EndSignal, DefaultEndSignal, &d.EndSignal}} {
		*x.out = x.def
		if x.val == "" {
			continue
		}
		v, err := time.ParseDuration(x.val)
		if err != nil || v <= 0 {
			return d, fmt.Errorf("slurm %s %q: give a positive duration such as 90s or 5m", x.name, x.val)
		}
		*x.out = v
	}
	if s.Time != "" {
		limit, err := ParseTime(s.Time)
		if err != nil {
			return d, fmt.Errorf("slurm time %q: %v", s.Time, err)
		}
		if s.EndSignal == "" {
			d.EndSignal = min(d.EndSignal, limit/4)
		}
	}
	return d, nil
}

// ParseTime reads sbatch's --time forms: minutes, minutes:seconds,
// hours:minutes:seconds, days-hours, days-hours:minutes and
// days-hours:minutes:seconds.
func ParseTime(s string) (time.Duration, error) {
	bad := errors.New("want minutes, MM:SS, HH:MM:SS or D-HH[:MM[:SS]]")
	days := 0
	rest := s
	if d, r, ok := strings.Cut(s, "-"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return 0, bad
		}
		days, rest = n, r
	}
	var parts []int
	for _, f := range strings.Split(rest, ":") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return 0, bad
		}
		parts = append(parts, n)
	}
	var h, m, sec int
	switch {
	case days > 0 || strings.Contains(s, "-"):
		if len(parts) > 3 {
			return 0, bad
		}
		parts = append(parts, 0, 0)
		h, m, sec = parts[0], parts[1], parts[2]
	case len(parts) == 1:
		m = parts[0]
	case len(parts) == 2:
		m, sec = parts[0], parts[1]
	case len(parts) == 3:
		h, m, sec = parts[0], parts[1], parts[2]
	default:
		return 0, bad
	}
	d := time.Duration(((days*24+h)*60+m)*60+sec) * time.Second
	if d <= 0 {
		return 0, errors.New("must be more than zero")
	}
	return d, nil
}

// ListenAddr is where a client's engine listens for pilots.
func (s *Settings) ListenAddr() string {
	if s.Listen == "" {
		return "0.0.0.0:0"
	}
	return s.Listen
}

// EngineURL is the engine's URL for the pilots, listening on port: the
// listen address's host, or host (this machine's name) where it listens
// on all addresses.
func (s *Settings) EngineURL(port int, host string) string {
	h, _, _ := net.SplitHostPort(s.ListenAddr())
	u, _ := engine.AdvertisedURL("nats", net.JoinHostPort(h, strconv.Itoa(port)), host)
	return u
}

// options are the sbatch options every pilot gets.
func (s *Settings) options(d Durations) []string {
	var o []string
	add := func(name, v string) {
		if v != "" {
			o = append(o, name+"="+v)
		}
	}
	add("--partition", s.Partition)
	add("--account", s.Account)
	add("--time", s.Time)
	add("--mem", s.Mem)
	o = append(o, "--nodes=1", "--ntasks=1", "--cpus-per-task="+strconv.Itoa(s.CPUs),
		fmt.Sprintf("--signal=B:USR1@%d", int(d.EndSignal.Seconds())))
	return append(o, s.Options...)
}

// Limits are the site's limits that bound a wave's arrays.
type Limits struct {
	// MaxArraySize: array indices must be below it.
	MaxArraySize int
	// MaxJobCount: jobs the controller holds at most (all users).
	MaxJobCount int
	// MaxSubmitJobs: jobs (array tasks count one each) the user may have
	// pending or running, by the association's limits (0: none known).
	MaxSubmitJobs int
}

// ReadLimits reads the limits from `scontrol show config` and, where
// accounting answers, the user's association limits (sacctmgr). A site
// without accounting has no MaxSubmitJobs; a limit sacctmgr does not show
// (a QOS's) is met by submitting what fits (JobLimit).
func ReadLimits(ctx context.Context) (Limits, error) {
	out, err := command(ctx, nil, "scontrol", "show", "config")
	if err != nil {
		return Limits{}, err
	}
	l := parseLimits(out)
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	user := os.Getenv("USER")
	if u, err := osuser.Current(); err == nil {
		user = u.Username
	}
	if out, err := command(actx, nil, "sacctmgr", "--noheader", "--parsable2", "show", "assoc", "where", "user="+user, "format=MaxSubmit,GrpSubmit"); err == nil {
		l.MaxSubmitJobs = parseSubmitLimit(out)
	}
	return l, nil
}

// parseSubmitLimit is the smallest limit of sacctmgr's MaxSubmit|GrpSubmit
// lines (an empty field: no limit).
func parseSubmitLimit(out []byte) int {
	least := 0
	for _, f := range strings.FieldsFunc(string(out), func(r rune) bool { return r == '|' || r == '\n' }) {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 && (least == 0 || n < least) {
			least = n
		}
	}
	return least
}

func parseLimits(out []byte) Limits {
	l := Limits{MaxArraySize: 1001, MaxJobCount: 10000} // Slurm's defaults
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.Fields(v + " x")[0])
		if err != nil {
			continue
		}
		switch strings.TrimSpace(k) {
		case "MaxArraySize":
			l.MaxArraySize = n
		case "MaxJobCount":
			l.MaxJobCount = n
		}
	}
	return l
}

// Error is what Slurm said when it refused a command, in one line.
type Error struct {
	Cmd string // sbatch, scancel ...
	Msg string
}

func (e *Error) Error() string { return e.Cmd + " refused: " + e.Msg }

// command runs a Slurm command and turns a refusal into an *Error.
func command(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	if _, err := exec.LookPath(name); err != nil {
		return nil, fmt.Errorf("%s not found on PATH: run simswarm --slurm where Slurm's commands are (a login node)", name)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out bytes.Buffer
	errb := &retryWatch{}
	cmd.Stdout, cmd.Stderr = &out, errb
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	errb.started(cmd.Process)
	err := cmd.Wait()
	if err == nil && errb.retrying.Load() {
		err = errors.New("ended while retrying")
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &Error{Cmd: name, Msg: oneLine(errb.String(), err)}
	}
	return out.Bytes(), nil
}

// retryWatch is a Slurm command's error output. At the controller's
// MaxJobCount, sbatch says it is "sleeping and retrying" and would wait
// minutes: it is ended at once instead, nothing submitted, so that the
// client can wait without holding a command (JobLimit).
type retryWatch struct {
	mu       sync.Mutex
	buf      bytes.Buffer
	proc     *os.Process
	retrying atomic.Bool
}

func (w *retryWatch) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	w.check()
	return len(b), nil
}

func (w *retryWatch) started(p *os.Process) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.proc = p
	w.check()
}

func (w *retryWatch) check() {
	if w.proc != nil && !w.retrying.Load() && strings.Contains(w.buf.String(), "sleeping and retrying") {
		w.retrying.Store(true)
		_ = w.proc.Kill()
	}
}

func (w *retryWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.ReplaceAll(w.buf.String(), ", sleeping and retrying", "")
}

// oneLine reduces a Slurm command's error output to one line: the reason it
// gives ("Batch job submission failed: X", "allocation failure: X"), then
// what else it said, in brackets.
func oneLine(stderr string, err error) string {
	var main string
	var more []string
	for _, line := range strings.Split(stderr, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		line = slurmPrefix.ReplaceAllString(line, "")
		switch {
		case strings.HasPrefix(line, "Batch job submission failed: "):
			main = strings.TrimPrefix(line, "Batch job submission failed: ")
		case strings.HasPrefix(line, "allocation failure: "):
			main = strings.TrimPrefix(line, "allocation failure: ")
		case !slices.Contains(more, line):
			more = append(more, line)
		}
	}
	if main == "" && len(more) > 0 {
		main, more = more[len(more)-1], more[:len(more)-1]
	}
	if main == "" {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.String()
		}
		return err.Error()
	}
	for i, m := range more {
		if m == main {
			more = append(more[:i], more[i+1:]...)
			break
		}
	}
	if len(more) > 0 {
		main += " (" + strings.Join(more, "; ") + ")"
	}
	return main
}

var slurmPrefix = regexp.MustCompile(`^(sbatch|scancel|squeue|scontrol): (error|fatal): `)
