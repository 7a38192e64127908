// Package slurmtest starts a real Slurm for tests: munged, slurmctld in
// the test's own network namespace and one slurmd "node" per network
// namespace of a netlab bridge, all configured in a temporary directory
// named by SLURM_CONF. Accounting is off; a job_submit.lua refuses
// accounts other than "research", as a site's account check would.
package slurmtest

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/testkit/netlab"
)

// Options size the cluster.
type Options struct {
	Nodes        int // default 3
	CPUs         int // per node, default 1
	MaxArraySize int // default Slurm's 1001
	// Conf are more slurm.conf lines (MaxJobCount=...).
	Conf []string
}

// Account is the one account the cluster accepts (besides none).
const Account = "research"

// Partition is the cluster's one partition.
const Partition = "main"

// Cluster is a running Slurm.
type Cluster struct {
	Lab   *netlab.Lab
	Dir   string
	Conf  string   // slurm.conf, as SLURM_CONF
	Env   []string // the test's environment with SLURM_CONF
	Nodes []string // n1, n2, ...
	// Addr is the root namespace's address on the nodes' bridge: where a
	// client's engine listens for pilots.
	Addr string
	// SubmitLimit is a file the test may write a number of pilot tasks
	// to: the site's MaxSubmitJobs, played by the job_submit script.
	SubmitLimit string
}

// Require skips the test where a Slurm cannot be started here.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a test Slurm needs root (slurmd runs jobs as their user; CI runs as root)")
	}
	for _, b := range []string{"slurmctld", "slurmd", "munged", "sbatch", "scancel", "squeue", "scontrol", "sinfo", "nsenter"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (.ci/run installs slurm-wlm and munge)", b)
		}
	}
}

// Start starts munged, slurmctld and the nodes, and waits until every node
// is idle. Everything stops when the test ends, after every job is
// cancelled and gone.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	Require(t)
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.CPUs == 0 {
		o.CPUs = 1
	}
	if o.MaxArraySize == 0 {
		o.MaxArraySize = 1001
	}
	// A short path: munge's socket path must fit in a sockaddr_un.
	dir, err := os.MkdirTemp("", "slurm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &Cluster{Dir: dir, Conf: filepath.Join(dir, "slurm.conf")}
	c.Lab = netlab.New(t, nil)
	for i := 1; i <= o.Nodes; i++ {
		c.Nodes = append(c.Nodes, fmt.Sprintf("n%d", i))
	}
	c.Lab.Add(c.Nodes...)
	c.Addr = c.Lab.HostAddr()
	c.Env = append(os.Environ(), "SLURM_CONF="+c.Conf)
	c.Lab.Env = c.Env

	munge := filepath.Join(dir, "munge")
	must(t, os.MkdirAll(munge, 0o700))
	key := make([]byte, 1024)
	_, _ = rand.Read(key)
	must(t, os.WriteFile(filepath.Join(munge, "key"), key, 0o400))
	sock := filepath.Join(munge, "sock")
	c.daemon(t, "munged", "munged", "-F", "-f", "--key-file="+filepath.Join(munge, "key"), "--socket="+sock,
		"--pid-file="+filepath.Join(munge, "pid"), "--log-file="+filepath.Join(munge, "log"), "--seed-file="+filepath.Join(munge, "seed"))
	waitFor(t, 10*time.Second, "munged's socket", func() bool { _, err := os.Stat(sock); return err == nil })

	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	port := freePort(t, c.Addr)
	var conf strings.Builder
	fmt.Fprintf(&conf, `ClusterName=simswarmtest
SlurmctldHost=%s(%s)
SlurmctldPort=%d
SlurmdPort=6818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=%s
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=%s/state
SlurmdSpoolDir=%s/spool/%%n
SlurmctldPidFile=%s/slurmctld.pid
SlurmdPidFile=%s/slurmd-%%n.pid
SlurmctldLogFile=%s/slurmctld.log
SlurmdLogFile=%s/slurmd-%%n.log
MaxArraySize=%d
KillWait=10
MinJobAge=30
SchedulerParameters=sched_min_interval=100000
JobSubmitPlugins=lua
`, host, c.Addr, port, sock, dir, dir, dir, dir, dir, dir, o.MaxArraySize)
	for _, l := range o.Conf {
		conf.WriteString(l + "\n")
	}
	for i, n := range c.Nodes {
		fmt.Fprintf(&conf, "NodeName=%s NodeAddr=%s CPUs=%d RealMemory=1000\n", n, c.Lab.Addr(c.Nodes[i]), o.CPUs)
	}
	fmt.Fprintf(&conf, "PartitionName=%s Nodes=%s Default=YES MaxTime=INFINITE State=UP\n", Partition, strings.Join(c.Nodes, ","))
	must(t, os.WriteFile(c.Conf, []byte(conf.String()), 0o644))
	c.SubmitLimit = filepath.Join(dir, "submit-limit")
	must(t, os.WriteFile(filepath.Join(dir, "job_submit.lua"), []byte(fmt.Sprintf(jobSubmit, c.SubmitLimit)), 0o644))
	must(t, os.MkdirAll(filepath.Join(dir, "state"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "spool"), 0o755))

	c.daemon(t, "slurmctld", "slurmctld", "-D")
	for _, n := range c.Nodes {
		c.Lab.StartNsenter(n, nil, "slurmd", "-D", "-N", n)
	}
	t.Cleanup(func() { c.drain(t) })
	waitFor(t, 60*time.Second, "every node idle", func() bool {
		out, err := c.Command("sinfo", "--noheader", "--format=%T %D")
		return err == nil && strings.TrimSpace(out) == fmt.Sprintf("idle %d", o.Nodes)
	})
	return c
}

// jobSubmit refuses accounts other than Account, with the message and
// error code a site's account check gives. It also plays a site's
// MaxSubmitJobs for pilots where the test wrote a limit to SubmitLimit
// (MaxSubmitJobs proper needs slurmdbd and a database, which the test
// Slurm does not run): a pilot array that would bring the pilot tasks
// submitted past it is refused with the error Slurm gives at that limit,
// ESLURM_ACCOUNTING_POLICY.
const jobSubmit = `local pilots = 0
function slurm_job_submit(job_desc, part_list, submit_uid)
	if job_desc.account ~= nil and job_desc.account ~= "` + Account + `" then
		slurm.log_user("Invalid account: %%s", job_desc.account)
		return slurm.ESLURM_INVALID_ACCOUNT
	end
	local f = io.open("%s", "r")
	if f ~= nil then
		local limit = tonumber(f:read("*l"))
		f:close()
		if limit ~= nil and job_desc.name == "simswarm-pilot" and job_desc.array_inx ~= nil then
			local a, b = string.match(job_desc.array_inx, "^(%%d+)-(%%d+)")
			local n = tonumber(b) - tonumber(a) + 1
			if pilots + n > limit then
				return slurm.ESLURM_ACCOUNTING_POLICY
			end
			pilots = pilots + n
		end
	end
	return slurm.SUCCESS
end
function slurm_job_modify(job_desc, job_rec, part_list, modify_uid)
	return slurm.SUCCESS
end
`

// Command runs a Slurm command against the cluster.
func (c *Cluster) Command(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = c.Env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Jobs lists the job ids squeue shows (pending, running or completing).
func (c *Cluster) Jobs(t testing.TB) []string {
	t.Helper()
	out, err := c.Command("squeue", "--noheader", "--array", "--format=%i %T %N")
	if err != nil {
		t.Fatalf("squeue: %v: %s", err, out)
	}
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			ids = append(ids, l)
		}
	}
	return ids
}

// daemon starts a process in the root namespace, logging into Dir, and
// kills it when the test ends.
func (c *Cluster) daemon(t testing.TB, name string, argv ...string) {
	t.Helper()
	f, err := os.Create(filepath.Join(c.Dir, name+".out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = c.Env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
}

// drain cancels every job and waits (bounded) until squeue shows none, so
// that no job's processes outlive the test; it shows the controller's log
// of a failed test.
func (c *Cluster) drain(t testing.TB) {
	if out, err := c.Command("squeue", "--noheader", "--format=%A"); err == nil && strings.TrimSpace(out) != "" {
		_, _ = c.Command("scancel", strings.Fields(out)...)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out, err := c.Command("squeue", "--noheader")
		if err != nil || strings.TrimSpace(out) == "" {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if t.Failed() {
		for _, f := range []string{"slurmctld.log"} {
			b, _ := os.ReadFile(filepath.Join(c.Dir, f))
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("--- %s:\n%s", f, b)
		}
	}
}

func freePort(t testing.TB, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitFor(t testing.TB, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("test Slurm: no %s within %s", what, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
