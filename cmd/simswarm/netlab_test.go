package main

// A network lab for multi-host tests: network namespaces on a bridge, each a
// "node" with its own address, running real simswarm processes. The test
// process itself stays in the root namespace, on the bridge, as a client.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type netlab struct {
	t      *testing.T
	id     string
	bridge string
	subnet string // first three octets
	nodes  map[string]int
	procs  []*node
}

type node struct {
	name, ns string
	cmd      *exec.Cmd
	log      string
	args     []string
}

var labSeq atomic.Int32

// newNetlab makes one namespace per name, addressed .1, .2, ... in order;
// the root namespace is .254. It skips the test where namespaces cannot be
// made (not root, no iproute2); CI runs as root with iproute2 installed.
func newNetlab(t *testing.T, names ...string) *netlab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) not installed; .ci/run installs it")
	}
	seq := labSeq.Add(1)
	id := fmt.Sprintf("%d%d", os.Getpid()%1000, seq)
	l := &netlab{t: t, id: id, bridge: "sw" + id + "b", subnet: fmt.Sprintf("10.%d.%d", 200+os.Getpid()%50, seq), nodes: map[string]int{}}
	t.Cleanup(l.close)
	if err := l.sh("ip", "link", "add", l.bridge, "type", "bridge"); err != nil {
		t.Skipf("cannot create a bridge here: %v", err)
	}
	l.must("ip", "addr", "add", l.subnet+".254/24", "dev", l.bridge)
	l.must("ip", "link", "set", l.bridge, "up")
	newNetlabOn(t, l, names...)
	return l
}

// newNetlabOn adds nodes to an existing lab, numbered after its others.
func newNetlabOn(t *testing.T, l *netlab, names ...string) []string {
	t.Helper()
	for _, name := range names {
		i := len(l.nodes)
		ns := l.ns(name)
		outer, inner := fmt.Sprintf("sw%sa%d", l.id, i), fmt.Sprintf("sw%sn%d", l.id, i)
		l.must("ip", "netns", "add", ns)
		l.must("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
		l.must("ip", "link", "set", inner, "netns", ns)
		l.must("ip", "link", "set", outer, "master", l.bridge)
		l.must("ip", "link", "set", outer, "up")
		l.must("ip", "netns", "exec", ns, "ip", "addr", "add", fmt.Sprintf("%s.%d/24", l.subnet, i+1), "dev", inner)
		l.must("ip", "netns", "exec", ns, "ip", "link", "set", inner, "up")
		l.must("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
		l.nodes[name] = i + 1
	}
	return names
}

func (l *netlab) ns(name string) string { return "sw" + l.id + "-" + name }

// addr is a node's address.
func (l *netlab) addr(name string) string { return fmt.Sprintf("%s.%d", l.subnet, l.nodes[name]) }

func (l *netlab) sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (l *netlab) must(args ...string) {
	l.t.Helper()
	if err := l.sh(args...); err != nil {
		l.t.Fatal(err)
	}
}

// start runs simswarm with args on a node; its output goes to a log file
// that is shown if the test fails.
func (l *netlab) start(name string, args ...string) *node {
	l.t.Helper()
	log := filepath.Join(l.t.TempDir(), name+".log")
	n := &node{name: name, ns: l.ns(name), log: log, args: args}
	l.launch(n)
	l.procs = append(l.procs, n)
	return n
}

func (l *netlab) launch(n *node) {
	l.t.Helper()
	f, err := os.OpenFile(n.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		l.t.Fatal(err)
	}
	n.cmd = exec.Command("ip", append([]string{"netns", "exec", n.ns, binary}, n.args...)...)
	n.cmd.Stdout, n.cmd.Stderr = f, f
	n.cmd.Env = cleanEnv()
	// A group of its own: a kill then reaches what the node started too
	// (distccd's pre-forked children).
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	go func() { _ = n.cmd.Wait(); f.Close() }()
}

// restart starts a node's process again with the same arguments.
func (l *netlab) restart(n *node) {
	l.t.Helper()
	l.launch(n)
}

// kill sends sig to the node's simswarm (ip netns exec execs it, so the
// pid is simswarm's own).
func (n *node) kill(sig syscall.Signal) {
	if n.cmd != nil && n.cmd.Process != nil {
		_ = syscall.Kill(-n.cmd.Process.Pid, sig)
	}
}

func (n *node) logText() string {
	b, _ := os.ReadFile(n.log)
	return string(b)
}

func (l *netlab) close() {
	for _, n := range l.procs {
		n.kill(syscall.SIGKILL)
	}
	time.Sleep(100 * time.Millisecond)
	if l.t.Failed() {
		for _, n := range l.procs {
			text := n.logText()
			if len(text) > 3000 {
				text = text[len(text)-3000:]
			}
			l.t.Logf("--- log of %s:\n%s", n.name, text)
		}
	}
	for name := range l.nodes {
		_ = l.sh("ip", "netns", "del", l.ns(name))
	}
	_ = l.sh("ip", "link", "del", l.bridge)
}

// cleanEnv keeps simswarm's own variables of the test environment from
// leaking into the processes under test.
func cleanEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SIMSWARM_") {
			env = append(env, e)
		}
	}
	return env
}
