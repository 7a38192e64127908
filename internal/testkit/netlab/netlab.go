// Package netlab is a network lab for multi-host tests: network namespaces
// on a bridge, each a node with its own address, running real processes.
// The test process stays in the root namespace, on the bridge, as a client
// would. Every namespace, interface and process a lab makes is removed when
// the test ends.
package netlab

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Lab is a bridge with one network namespace per node, addressed from the
// subnet's first host address on; the root namespace has the subnet's last
// host address.
type Lab struct {
	t      testing.TB
	id     string
	bridge string
	subnet *net.IPNet
	addrs  map[string]net.IP
	order  []string
	procs  []*Proc
	logs   string
	// Env is the environment of the processes started after it is set
	// (default: the test's own).
	Env []string
}

// Proc is a process started in a node's namespace, in a process group of
// its own, logging to a file.
type Proc struct {
	Node string   // the node it runs on
	Name string   // what logs call it (default: the node)
	Args []string // argv, changed before Restart to restart differently
	Env  []string // extra variables, on top of the lab's Env
	lab  *Lab
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	// nsenter: enter the namespace with nsenter, which leaves /sys as it
	// is (ip netns exec remounts it, and slurmd then finds no cgroup fs).
	nsenter bool
}

var seq atomic.Int32

// Require skips the test where namespaces cannot be made (not root, no
// iproute2); CI runs as root with iproute2 installed.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) not installed; .ci/run installs it")
	}
}

// New makes a lab on subnet, or, when subnet is nil, on a /24 of
// 10.200.0.0/13 that no interface of this machine uses, picked from the
// process id so that concurrent test processes stay apart. It skips the
// test where namespaces cannot be made, or where this machine already
// uses the subnet it was given.
func New(t testing.TB, subnet *net.IPNet) *Lab {
	t.Helper()
	Require(t)
	n := seq.Add(1)
	if subnet == nil {
		subnet = freeSubnet(t, int(n))
	} else if used := inUse(subnet); used != "" {
		t.Skipf("this machine already uses the subnet %s (%s): the lab would collide with it", subnet, used)
	}
	ones, bits := subnet.Mask.Size()
	if subnet.IP.To4() == nil || bits != 32 || ones > 28 {
		t.Fatalf("subnet %s: the lab needs an IPv4 subnet of at least 16 addresses", subnet)
	}
	// Interface names have at most 15 bytes: "sw" + id + "a" + index.
	id := fmt.Sprintf("%dl%d", os.Getpid()%100000, n)
	// Logs are world-readable, for services that drop privileges; removed
	// after close has shown them.
	logs, err := os.MkdirTemp("", "netlab-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(logs, 0o755)
	t.Cleanup(func() { os.RemoveAll(logs) })
	l := &Lab{t: t, id: id, bridge: "sw" + id + "b", subnet: subnet, addrs: map[string]net.IP{}, Env: os.Environ(), logs: logs}
	t.Cleanup(l.close)
	if err := l.sh("ip", "link", "add", l.bridge, "type", "bridge"); err != nil {
		t.Skipf("cannot create a bridge here: %v", err)
	}
	last := uint32(1)<<(bits-ones) - 2
	l.must("ip", "addr", "add", fmt.Sprintf("%s/%d", hostAddr(subnet, last), ones), "dev", l.bridge)
	l.must("ip", "link", "set", l.bridge, "up")
	return l
}

// freeSubnet picks a /24 no interface uses, starting from one derived
// from the process id and the lab's number.
func freeSubnet(t testing.TB, n int) *net.IPNet {
	t.Helper()
	start := (os.Getpid()*7 + n*131) % 2048
	for i := 0; i < 2048; i++ {
		k := (start + i) % 2048
		_, s, _ := net.ParseCIDR(fmt.Sprintf("10.%d.%d.0/24", 200+k/256, k%256))
		if inUse(s) == "" {
			return s
		}
	}
	t.Skip("no free /24 in 10.200.0.0/13 for a test lab")
	return nil
}

// inUse names an address of this machine inside subnet, or is "".
func inUse(subnet *net.IPNet) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && subnet.Contains(ipn.IP) {
			return ipn.String()
		}
	}
	return ""
}

// hostAddr is the i-th address of the subnet (IPv4).
func hostAddr(n *net.IPNet, i uint32) net.IP {
	base := binary.BigEndian.Uint32(n.IP.To4())
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, base+i)
	return ip
}

// Add makes one namespace per name, numbered after the lab's other nodes.
func (l *Lab) Add(names ...string) {
	l.t.Helper()
	ones, _ := l.subnet.Mask.Size()
	for _, name := range names {
		i := len(l.order)
		ip := hostAddr(l.subnet, uint32(i+1))
		ns := l.NS(name)
		outer, inner := fmt.Sprintf("sw%sa%d", l.id, i), fmt.Sprintf("sw%sn%d", l.id, i)
		l.must("ip", "netns", "add", ns)
		l.addrs[name] = ip
		l.order = append(l.order, name)
		l.must("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
		l.must("ip", "link", "set", inner, "netns", ns)
		l.must("ip", "link", "set", outer, "master", l.bridge)
		l.must("ip", "link", "set", outer, "up")
		l.must("ip", "netns", "exec", ns, "ip", "addr", "add", fmt.Sprintf("%s/%d", ip, ones), "dev", inner)
		l.must("ip", "netns", "exec", ns, "ip", "link", "set", inner, "up")
		l.must("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
	}
}

// Unplug takes a node off the bridge (its link down), as a cable pulled:
// its processes live on and reach nobody.
func (l *Lab) Unplug(name string) {
	l.t.Helper()
	i := slices.Index(l.order, name)
	if i < 0 {
		l.t.Fatalf("netlab: no node %s", name)
	}
	_ = l.sh("ip", "link", "set", fmt.Sprintf("sw%sa%d", l.id, i), "down")
}

// ID tells this lab's names apart from other labs' (interfaces, hosts).
func (l *Lab) ID() string { return l.id }

// NS is the name of a node's namespace.
func (l *Lab) NS(name string) string { return "sw" + l.id + "-" + name }

// HostAddr is the root namespace's address on the bridge.
func (l *Lab) HostAddr() string {
	ones, bits := l.subnet.Mask.Size()
	return hostAddr(l.subnet, uint32(1)<<(bits-ones)-2).String()
}

// Addr is a node's address.
func (l *Lab) Addr(name string) string { return l.addrs[name].String() }

// Has says whether the lab has a node of that name.
func (l *Lab) Has(name string) bool { _, ok := l.addrs[name]; return ok }

// Nodes are the lab's node names in the order they were added.
func (l *Lab) Nodes() []string { return append([]string(nil), l.order...) }

// Procs are the processes started so far.
func (l *Lab) Procs() []*Proc { return append([]*Proc(nil), l.procs...) }

// SetHosts gives a node's processes their own /etc/hosts (ip netns exec
// mounts /etc/netns/<ns>/hosts over it).
func (l *Lab) SetHosts(name, text string) {
	l.t.Helper()
	dir := filepath.Join("/etc/netns", l.NS(name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(text), 0o644); err != nil {
		l.t.Fatal(err)
	}
}

func (l *Lab) sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (l *Lab) must(args ...string) {
	l.t.Helper()
	if err := l.sh(args...); err != nil {
		l.t.Fatal(err)
	}
}

// Start runs argv on a node with extra environment variables env; its
// output goes to a log file that is shown if the test fails.
func (l *Lab) Start(name string, env []string, argv ...string) *Proc {
	l.t.Helper()
	return l.start(name, env, false, argv)
}

// StartNsenter is Start through nsenter: the node's network, this
// machine's /sys (for daemons that look at cgroups, such as slurmd).
func (l *Lab) StartNsenter(name string, env []string, argv ...string) *Proc {
	l.t.Helper()
	return l.start(name, env, true, argv)
}

func (l *Lab) start(name string, env []string, nsenter bool, argv []string) *Proc {
	l.t.Helper()
	p := &Proc{Node: name, Name: name, Args: argv, Env: env, lab: l, nsenter: nsenter,
		log: filepath.Join(l.logs, fmt.Sprintf("%s-%d.log", name, len(l.procs)))}
	p.launch()
	l.procs = append(l.procs, p)
	return p
}

func (p *Proc) launch() {
	t := p.lab.t
	t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", p.lab.NS(p.Node)}, p.Args...)...)
	if p.nsenter {
		p.cmd = exec.Command("nsenter", append([]string{"--net=/var/run/netns/" + p.lab.NS(p.Node)}, p.Args...)...)
	}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Env = append(append([]string(nil), p.lab.Env...), p.Env...)
	// A group of its own: a signal then reaches what the process started
	// too (distccd's pre-forked children, simulations).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	p.done = done
	cmd := p.cmd
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
}

// Restart starts the process again with its Args (after it ended).
func (p *Proc) Restart() {
	p.lab.t.Helper()
	p.launch()
}

// Pid is the process's id (ip netns exec execs the command, so it is the
// command's own); its process group has the same id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process's group.
func (p *Proc) Signal(sig syscall.Signal) {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// Kill SIGKILLs the process group and waits (at most 5 s) until the
// process is gone.
func (p *Proc) Kill() {
	p.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// Exited says whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Log is what the process has written so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

func (l *Lab) close() {
	// TERM to all at once, then KILL what is left after 3 s.
	for _, p := range l.procs {
		p.Signal(syscall.SIGTERM)
	}
	deadline := time.After(3 * time.Second)
	for _, p := range l.procs {
		select {
		case <-p.done:
		case <-deadline:
		}
	}
	for _, p := range l.procs {
		p.Signal(syscall.SIGKILL)
	}
	for _, p := range l.procs {
		select {
		case <-p.done:
		case <-time.After(2 * time.Second):
		}
	}
	if l.t.Failed() {
		for _, p := range l.procs {
			text := p.Log()
			if len(text) > 4000 {
				text = text[len(text)-4000:]
			}
			l.t.Logf("--- log of %s (%s):\n%s", p.Name, filepath.Base(p.Args[0]), text)
		}
	}
	for _, name := range l.order {
		_ = l.sh("ip", "netns", "del", l.NS(name))
		os.RemoveAll(filepath.Join("/etc/netns", l.NS(name)))
	}
	_ = l.sh("ip", "link", "del", l.bridge)
}
