package proc

// Process trees. A supervised process and everything it starts (double
// forks and setsid included) form one tree that ends with it: when the
// process exits, times out or is cancelled, and when the simswarm process
// that started it dies, even by SIGKILL.
//
// Each tree is a cgroup v2 (a child of <own cgroup>/simswarm/<owner>,
// entered at clone time, so nothing runs outside it even for an instant),
// ended with cgroup.kill. Where cgroup v2 cannot be written (no cgroup2
// mount, a read-only one in a container, a non-root user without a
// delegated subtree), every process of a tree carries a marker in its
// environment (SIMSWARM_PROC=<owner>/<n>), and ending the tree scans /proc
// for it: weaker, since a program that execs with a cleared environment
// escapes, and documented as such.
//
// A subreaper or Pdeathsig dies with its process; a cgroup or a marker does
// not. So each owner starts a reaper: a copy of its own executable, in a
// session of its own, that blocks on a pipe only the owner holds and, when
// the owner is gone however it died, ends all of the owner's trees. Should
// the reaper die too, the next simswarm process on the host ends the trees
// of owners that no longer exist before it runs anything (Setup).

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// MarkerEnv marks every process of a tree, in both modes.
	MarkerEnv = "SIMSWARM_PROC"
	// The reaper and the cgroup probe are this executable started with one
	// of these set; init below turns it into them before main runs.
	reaperEnv = "SIMSWARM_PROC_REAPER" // owner id
	reaperCg  = "SIMSWARM_PROC_REAPER_CGROUP"
	probeEnv  = "SIMSWARM_PROC_PROBE"
	// NoCgroupEnv, set to anything, keeps a process from using cgroups
	// (for hosts whose cgroups simswarm must not touch, and for tests of
	// the marker mode).
	NoCgroupEnv = "SIMSWARM_NO_CGROUP"
)

func init() {
	if os.Getenv(probeEnv) != "" {
		os.Exit(0)
	}
	if owner := os.Getenv(reaperEnv); owner != "" {
		reap(owner, os.Getenv(reaperCg))
		os.Exit(0)
	}
}

// supervisor is this process as an owner of trees.
type supervisor struct {
	owner   string // <pid namespace>-<pid>-<start time>: unique on the host over time
	pidns   string
	cgOwner string // cgroup directory of this owner's trees; "" in marker mode
	seq     atomic.Int64
	reaper  *os.File // write end of the reaper's pipe, open as long as we live
	mode    string
	warn    []string
	ended   int // leftover processes of dead owners ended by Setup
}

var (
	setupOnce sync.Once
	sup       *supervisor
)

// Report says how processes are supervised here and what Setup found.
type Report struct {
	Mode     string   // "cgroup v2 <dir>" or "environment markers (...)"
	Leftover int      // processes of dead simswarm processes that Setup ended
	Warnings []string // what weakens supervision here
}

// Setup prepares supervision for this process, once: it ends the leftovers
// of simswarm processes that died before their trees ended, chooses cgroup
// v2 or markers, and starts the reaper. Workers call it before they take
// jobs; Run calls it too.
func Setup(log *slog.Logger) Report {
	setupOnce.Do(func() {
		sup = newSupervisor()
		if log != nil {
			if sup.ended > 0 {
				log.Warn("ended processes left behind by an earlier simswarm", "processes", sup.ended)
			}
			for _, w := range sup.warn {
				log.Debug("process supervision: " + w)
			}
		}
	})
	return Report{Mode: sup.mode, Leftover: sup.ended, Warnings: sup.warn}
}

func newSupervisor() *supervisor {
	s := &supervisor{pidns: pidNamespace()}
	start, _ := startTime(os.Getpid())
	s.owner = fmt.Sprintf("%s-%d-%d", s.pidns, os.Getpid(), start)
	base, err := cgroupBase()
	if err == nil && os.Getenv(NoCgroupEnv) != "" {
		err = errors.New(NoCgroupEnv + " is set")
	}
	if err == nil {
		s.ended += s.endDeadCgroups(base)
		err = s.useCgroup(base)
	}
	if err != nil {
		s.warn = append(s.warn, "cgroup v2 not usable ("+err.Error()+"): process trees are found by an environment marker, which a program that execs with a cleared environment escapes")
		s.mode = "environment markers (" + err.Error() + ")"
	} else {
		s.mode = "cgroup v2 " + s.cgOwner
	}
	s.ended += s.endDeadMarked()
	if err := s.startReaper(); err != nil {
		s.warn = append(s.warn, "no reaper ("+err.Error()+"): processes left by a killed simswarm are ended only when the next one starts")
	}
	return s
}

// cgroupBase returns <cgroup2 mount><own cgroup>/simswarm.
func cgroupBase() (string, error) {
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	path := ""
	for _, l := range strings.Split(string(own), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			path = p
		}
	}
	if path == "" {
		return "", errors.New("this process is in no cgroup v2")
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(mi), "\n") {
		// id parent maj:min root mountpoint options ... - fstype source super
		pre, post, ok := strings.Cut(l, " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		f := strings.Fields(pre)
		if len(f) < 5 {
			continue
		}
		root, mnt := f[3], unescapeMount(f[4])
		rel, ok := strings.CutPrefix(path, root)
		if !ok {
			continue
		}
		return filepath.Join(mnt, rel, "simswarm"), nil
	}
	return "", errors.New("no cgroup2 file system mounted")
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// useCgroup makes this owner's cgroup and checks that a process can be
// started into a child of it.
func (s *supervisor) useCgroup(base string) error {
	dir := filepath.Join(base, s.owner)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	s.cgOwner = dir
	t, err := s.newTree()
	if err != nil {
		s.cgOwner = ""
		_ = os.Remove(dir)
		return err
	}
	defer t.close()
	cmd := exec.Command(probeProgram())
	cmd.Env = []string{probeEnv + "=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: t.fd}
	if err := cmd.Run(); err != nil {
		t.close()
		s.cgOwner = ""
		_ = os.Remove(dir)
		return fmt.Errorf("start a process in %s: %w", dir, err)
	}
	return nil
}

// probeProgram is what the cgroup probe starts: a program that exits at
// once. /bin/true costs 0.5 ms of CPU where this executable, with every
// package's init, costs about 9 ms, once per campaign; an image without
// it falls back to this executable.
func probeProgram() string {
	if st, err := os.Stat("/bin/true"); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return "/bin/true"
	}
	return "/proc/self/exe"
}

// tree is one supervised process tree.
type tree struct {
	s      *supervisor
	marker string // MarkerEnv=<owner>/<n>
	cg     string // cgroup directory, "" in marker mode
	fd     int    // open cgroup directory for clone, -1 in marker mode
}

func (s *supervisor) newTree() (*tree, error) {
	n := s.seq.Add(1)
	t := &tree{s: s, marker: fmt.Sprintf("%s=%s/%d", MarkerEnv, s.owner, n), fd: -1}
	if s.cgOwner == "" {
		return t, nil
	}
	t.cg = filepath.Join(s.cgOwner, strconv.FormatInt(n, 10))
	if err := os.Mkdir(t.cg, 0o755); err != nil && !os.IsExist(err) {
		return nil, err
	}
	fd, err := syscall.Open(t.cg, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(t.cg)
		return nil, err
	}
	t.fd = fd
	return t, nil
}

// members lists the tree's processes.
func (t *tree) members() []int {
	if t.cg != "" {
		return cgroupProcs(t.cg)
	}
	return marked(t.marker + "\x00")
}

func (t *tree) signal(sig syscall.Signal) {
	for _, pid := range t.members() {
		_ = syscall.Kill(pid, sig)
	}
}

// kill sends SIGKILL to every process of the tree at once.
func (t *tree) kill() {
	if t.cg != "" && killCgroup(t.cg) == nil {
		return
	}
	t.signal(syscall.SIGKILL)
}

func (t *tree) empty() bool {
	if t.cg != "" {
		return !populated(t.cg)
	}
	return len(t.members()) == 0
}

// end ends what is left of the tree after its first process exited: TERM,
// so that programs can flush, then KILL after grace. It returns once the
// tree is empty (or after a bound, should the kernel be slow to reap).
func (t *tree) end(grace time.Duration) {
	if !t.empty() {
		t.signal(syscall.SIGTERM)
		if !waitEmpty(t, grace) {
			t.kill()
			waitEmpty(t, 5*time.Second)
		}
	}
	t.close()
}

func (t *tree) close() {
	if t.fd >= 0 {
		_ = syscall.Close(t.fd)
		t.fd = -1
	}
	if t.cg != "" {
		_ = os.Remove(t.cg)
	}
}

func waitEmpty(t *tree, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		if t.empty() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Environ is the environment supervised processes get by default: this
// process's, without simswarm's own settings. SIMSWARM_* variables hold
// the engine's address, the path of its credentials, the dashboard token:
// a simulation or build needs none of them, and a job from the queue must
// not be able to read how to submit jobs itself.
func Environ() []string { return filterEnv(os.Environ()) }

func filterEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "SIMSWARM_") {
			out = append(out, kv)
		}
	}
	return out
}

// startReaper starts the process that ends this owner's trees after it
// dies.
func (s *supervisor) startReaper() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"simswarm-reaper"}
	cmd.Env = []string{reaperEnv + "=" + s.owner, reaperCg + "=" + s.cgOwner}
	cmd.ExtraFiles = []*os.File{r}
	// Its own session: a terminal's Ctrl-C or a kill of our process
	// group must not end it before it has done its work.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return err
	}
	go func() { _ = cmd.Wait() }()
	s.reaper = w
	return nil
}

// reap is the reaper: wait until the owner is gone, then end its trees.
func reap(owner, cg string) {
	f := os.NewFile(3, "owner")
	buf := make([]byte, 1)
	for {
		if _, err := f.Read(buf); err != nil {
			break
		}
	}
	if cg != "" {
		endCgroupOwner(cg)
	}
	endMarked(owner)
}

// endCgroupOwner kills every tree of a dead owner and removes its cgroups.
func endCgroupOwner(dir string) (n int) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			n += len(cgroupProcs(filepath.Join(dir, e.Name())))
		}
	}
	n += len(cgroupProcs(dir))
	if killCgroup(dir) != nil {
		for _, pid := range allCgroupProcs(dir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for populated(dir) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, e := range entries {
		if e.IsDir() {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	_ = os.Remove(dir)
	return n
}

// endDeadCgroups ends the trees of owners in base that no longer exist.
func (s *supervisor) endDeadCgroups(base string) (n int) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return 0
	}
	for _, e := range entries {
		if e.IsDir() && !s.ownerAlive(e.Name()) {
			n += endCgroupOwner(filepath.Join(base, e.Name()))
		}
	}
	return n
}

// endDeadMarked ends marked processes whose owner no longer exists, and
// returns once they are gone.
func (s *supervisor) endDeadMarked() (n int) {
	dead := map[string]bool{}
	for _, p := range scanMarkers() {
		owner, _, _ := strings.Cut(p.marker, "/")
		d, ok := dead[owner]
		if !ok {
			d = !s.ownerAlive(owner)
			dead[owner] = d
		}
		if d {
			n++
		}
	}
	for owner, d := range dead {
		if d {
			endMarked(owner)
		}
	}
	return n
}

// endMarked kills every process marked by owner, until none is left (a
// tree may fork while it is being killed).
func endMarked(owner string) {
	prefix := MarkerEnv + "=" + owner + "/"
	for i := 0; i < 100; i++ {
		pids := marked(prefix)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ownerAlive reports whether the owner named id may still be running. Owners
// of another pid namespace cannot be checked from here and count as alive.
func (s *supervisor) ownerAlive(id string) bool {
	f := strings.Split(id, "-")
	if len(f) != 3 || f[0] != s.pidns {
		return true
	}
	pid, err1 := strconv.Atoi(f[1])
	start, err2 := strconv.ParseUint(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return true
	}
	got, err := startTime(pid)
	return err == nil && got == start
}

func pidNamespace() string {
	l, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return "0"
	}
	// "pid:[4026531836]"
	return strings.TrimSuffix(strings.TrimPrefix(l, "pid:["), "]")
}

// startTime is a process's start time in clock ticks since boot (field 22
// of /proc/PID/stat): with the pid, it names a process uniquely.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); the start time is field 22.
	if len(f) < 20 {
		return 0, errors.New("malformed stat")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func cgroupProcs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, l := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(l); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// allCgroupProcs lists the processes of dir and of every cgroup below it
// (a process in a tree may have made cgroups of its own).
func allCgroupProcs(dir string) []int {
	var pids []int
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			pids = append(pids, cgroupProcs(p)...)
		}
		return nil
	})
	return pids
}

func killCgroup(dir string) error {
	return os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
}

func populated(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return len(allCgroupProcs(dir)) > 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "populated "); ok {
			return v != "0"
		}
	}
	return false
}

type markedProc struct {
	pid    int
	marker string // the value of MarkerEnv
}

// scanMarkers lists every process that carries a marker.
func scanMarkers() []markedProc {
	var out []markedProc
	eachEnviron(func(pid int, env []byte) {
		if v, ok := markerOf(env); ok {
			out = append(out, markedProc{pid, v})
		}
	})
	return out
}

// marked lists the processes whose marker starts with prefix (MarkerEnv=...).
func marked(prefix string) []int {
	var pids []int
	p := []byte(prefix)
	eachEnviron(func(pid int, env []byte) {
		if bytes.HasPrefix(env, p) || bytes.Contains(env, append([]byte{0}, p...)) {
			pids = append(pids, pid)
		}
	})
	return pids
}

func markerOf(env []byte) (string, bool) {
	key := []byte(MarkerEnv + "=")
	for _, kv := range bytes.Split(env, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, key); ok {
			return string(v), true
		}
	}
	return "", false
}

// eachEnviron calls fn with the environment of every process it may read,
// except this one.
func eachEnviron(fn func(pid int, env []byte)) {
	d, err := os.Open("/proc")
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	self := os.Getpid()
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + n + "/environ")
		if err != nil || len(env) == 0 {
			continue
		}
		fn(pid, env)
	}
}
