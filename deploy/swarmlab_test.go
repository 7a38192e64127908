package deploy

// A lab of Docker engines for the real-swarm test: one network namespace
// per node on a bridge of the test's own, each node a dockerd with its own
// data root, exec root, socket, cgroup parent and host name (its own UTS
// namespace), so that several engines on one machine are separate swarm
// nodes and nothing of them touches the machine's own Docker, if it has
// one. The test process stays in the root namespace, on the bridge: the
// workstation of the guide.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/testkit/netlab"
)

type swarmLab struct {
	t       *testing.T
	id      string
	net     *netlab.Lab
	dir     string // data roots, sockets, logs, the docker shim
	dockerd string
	docker  string // the Docker CLI the nodes are driven with
	nodes   []*dockerNode
}

type dockerNode struct {
	lab        *swarmLab
	name, host string // lab name (n1), host name (swarm node's)
	ns, addr   string
	dir, sock  string
	cmd        *exec.Cmd
	stopped    bool
}

// newSwarmLab makes the network (netlab: a bridge of the test's own);
// nodes come with addNode. The subnet is in 192.168.0.0/16 so that it
// stays clear of the 10.0.0.0/8 Swarm takes its overlay networks from.
func newSwarmLab(t *testing.T, dockerd, docker string) *swarmLab {
	t.Helper()
	_, subnet, _ := net.ParseCIDR(fmt.Sprintf("192.168.%d.0/24", 200+os.Getpid()%50))
	nl := netlab.New(t, subnet)
	l := &swarmLab{t: t, id: nl.ID(), net: nl, dir: t.TempDir(), dockerd: dockerd, docker: docker}
	// Registered after netlab's: the engines stop before their namespaces
	// go.
	t.Cleanup(l.close)
	return l
}

// nodeStart is run by `ip netns exec`, which gives the engine a mount
// namespace with a fresh /sys but without the cgroup hierarchies: mount
// them again there (as Docker-in-Docker does), then start dockerd in a UTS
// namespace of its own, named. Pulls go through a proxy on a loopback
// port nobody listens on: nothing is ever fetched from outside.
const nodeStart = `set -e
if [ "$HOST_CGROUP2" != 1 ] && [ -d /sys/fs/cgroup ] && ! mountpoint -q /sys/fs/cgroup; then
  mount -t tmpfs -o mode=0755 cgroup /sys/fs/cgroup
  for c in $(awk '!/^#/ && $4 == 1 {print $1}' /proc/cgroups); do
    mkdir -p /sys/fs/cgroup/$c && mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c || rmdir /sys/fs/cgroup/$c
  done
  mkdir -p /sys/fs/cgroup/systemd && mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd || true
  mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified || true
fi
if [ "$HOST_CGROUP2" = 1 ]; then
  # A unified hierarchy: mount it whole where dockerd looks for it.
  mount -t cgroup2 cgroup2 /sys/fs/cgroup
fi
hostname "$NODE_HOST"
exec env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= "$DOCKERD" \
  --data-root "$NODE_DIR/data" --exec-root "$NODE_DIR/exec" --pidfile "$NODE_DIR/dockerd.pid" \
  -H "unix://$NODE_DIR/docker.sock" --cgroup-parent "$NODE_CGROUP"
`

// addNode starts one more engine, addressed .1, .2, ... in order.
func (l *swarmLab) addNode(name string) *dockerNode {
	l.t.Helper()
	l.net.Add(name)
	n := &dockerNode{lab: l, name: name, host: "ssw" + l.id + name, ns: l.net.NS(name), addr: l.net.Addr(name), dir: filepath.Join(l.dir, name)}
	n.sock = filepath.Join(n.dir, "docker.sock")
	l.nodes = append(l.nodes, n)
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		l.t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(n.dir, "dockerd.log"))
	if err != nil {
		l.t.Fatal(err)
	}
	defer logf.Close()
	n.cmd = exec.Command("ip", "netns", "exec", n.ns, "unshare", "--uts", "sh", "-c", nodeStart)
	n.cmd.Env = append(labEnv(), "NODE_HOST="+n.host, "NODE_DIR="+n.dir, "DOCKERD="+l.dockerd, "NODE_CGROUP="+l.cgroup(name), "HOST_CGROUP2="+hostCgroup2())
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := n.cmd.Start(); err != nil {
		l.t.Fatalf("start dockerd of %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(exited) }()
	for {
		if out, err := n.run("version", "--format", "{{.Server.Version}}"); err == nil {
			l.t.Logf("node %s (%s, %s): dockerd %s ready in %.1fs", name, n.host, n.addr, strings.TrimSpace(out), time.Since(start).Seconds())
			return n
		}
		select {
		case <-exited:
			l.t.Fatalf("dockerd of %s exited:\n%s", name, n.log())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Since(start) > 60*time.Second {
			l.t.Fatalf("dockerd of %s does not answer after 60s:\n%s", name, n.log())
		}
	}
}

func (l *swarmLab) cgroup(name string) string { return "/ssw" + l.id + name }

func (n *dockerNode) log() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "dockerd.log"))
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// run runs the Docker CLI against this node.
func (n *dockerNode) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.lab.docker, args...)
	cmd.Env = append(labEnv(), "DOCKER_HOST=unix://"+n.sock, "DOCKER_CONFIG="+filepath.Join(n.lab.dir, "docker-config"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

func (n *dockerNode) must(args ...string) string {
	n.lab.t.Helper()
	out, err := n.run(args...)
	if err != nil {
		n.lab.t.Fatal(err)
	}
	return out
}

// stop fails the node as a machine fails: off the network first, then
// every process of it killed at once, with no chance to shut down.
func (n *dockerNode) stop() {
	if n.stopped {
		return
	}
	n.stopped = true
	n.lab.net.Unplug(n.name)
	n.killAll(false)
}

// procs lists the node's processes: those of its network namespace (the
// engine, containerd, the shims) and those of its cgroups (the
// containers, which have network namespaces of their own and outlive
// their shims).
func (n *dockerNode) procs() []int {
	var pids []int
	out, _ := exec.Command("ip", "netns", "pids", n.ns).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			pids = append(pids, pid)
		}
	}
	for _, ctl := range []string{"pids", "memory", "cpu"} {
		root := filepath.Join("/sys/fs/cgroup", ctl, strings.TrimPrefix(n.lab.cgroup(n.name), "/"))
		if _, err := os.Stat(root); err != nil {
			continue
		}
		_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.Name() == "cgroup.procs" {
				b, _ := os.ReadFile(p)
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
						pids = append(pids, pid)
					}
				}
			}
			return nil
		})
		break
	}
	return pids
}

// killAll ends every process of the node: gracefully first (dockerd stops
// its containers when it is told to end) unless abrupt, then with SIGKILL.
func (n *dockerNode) killAll(graceful bool) {
	if graceful && n.cmd != nil && n.cmd.Process != nil {
		_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGTERM)
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end) && syscall.Kill(n.cmd.Process.Pid, 0) == nil; {
			time.Sleep(200 * time.Millisecond)
		}
	}
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
		pids := n.procs()
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(200 * time.Millisecond)
	}
	n.lab.t.Errorf("node %s: processes left after 20s: %v", n.name, n.procs())
}

// close stops every node and removes the cgroups its engines made (netlab
// removes the namespaces, links and bridge after). The data roots go with the
// test's temporary directory (their mounts lived in the engines' own mount
// namespaces and ended with them).
func (l *swarmLab) close() {
	for _, n := range l.nodes {
		n.killAll(!n.stopped)
	}
	for _, n := range l.nodes {
		l.removeCgroups(n.name)
	}
}

func (l *swarmLab) removeCgroups(name string) {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", strings.TrimPrefix(l.cgroup(name), "/")))
	for _, d := range dirs {
		// Children first: a cgroup directory goes only when empty.
		var all []string
		_ = filepath.Walk(d, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		for i := len(all) - 1; i >= 0; i-- {
			_ = os.Remove(all[i])
		}
	}
}

// ---------------------------------------------------------------------
// The base image: Debian 12 from Debian's packages, with what the runtime
// image installs, as the guide makes it. debootstrap downloads ~100 MB and
// takes minutes, so its tarball is kept in the user's cache directory,
// under a name that depends on the package list: the guide's list changed
// is a new tarball.

func baseTarball(t *testing.T, debootstrap, include, suite, mirror string) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Skipf("no cache directory for the base image's tarball: %v", err)
	}
	sum := sha256.Sum256([]byte(include + " " + suite + " " + mirror))
	dir := filepath.Join(cache, "simswarm-test", "swarm")
	path := filepath.Join(dir, "debian-"+suite+"-"+hex.EncodeToString(sum[:6])+".tar")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := os.MkdirTemp(dir, "root-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, debootstrap, "--variant=minbase", "--include="+include, suite, root, mirror)
	if out, err := cmd.CombinedOutput(); err != nil {
		tail := out
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		t.Fatalf("debootstrap %s (the guide's base image): %v\n%s", suite, err, tail)
	}
	// As the guide: the downloaded packages stay out of the image.
	if out, err := exec.Command("chroot", root, "apt-get", "clean").CombinedOutput(); err != nil {
		t.Fatalf("apt-get clean in the base: %v\n%s", err, out)
	}
	tmp := path + ".tmp"
	if out, err := exec.Command("tar", "-C", root, "-cf", tmp, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar of the base: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	t.Logf("debootstrap %s: %.0fs, kept in %s", suite, time.Since(start).Seconds(), path)
	return path
}

// ---------------------------------------------------------------------
// The guide's blocks.

var guideBlockRE = regexp.MustCompile("(?s)<!-- test: ([a-z-]+) -->\n```sh\n(.*?)```")

// guideBlocks returns the guide's marked blocks by name.
func guideBlocks(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile("../docs/deploy-swarm.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string]string{}
	for _, m := range guideBlockRE.FindAllStringSubmatch(string(raw), -1) {
		if _, dup := blocks[m[1]]; dup {
			t.Fatalf("the guide marks two blocks %q", m[1])
		}
		blocks[m[1]] = m[2]
	}
	return blocks
}

// setVariables replaces the assignments of step 0 the test gives its own
// values to; each must be there, so that a guide whose variables change
// fails the test instead of silently running with the guide's values.
func setVariables(t *testing.T, block string, values map[string]string) string {
	t.Helper()
	for name, v := range values {
		re := regexp.MustCompile(`(?m)^` + name + `=.*$`)
		if !re.MatchString(block) {
			t.Fatalf("step 0 of the guide no longer sets %s", name)
		}
		block = re.ReplaceAllLiteralString(block, name+"="+shellQuote(v))
	}
	return block
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// labEnv is the test's environment without what would point Docker or
// simswarm elsewhere.
func labEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		if strings.HasPrefix(k, "SIMSWARM_") || strings.HasPrefix(k, "DOCKER_") || strings.HasPrefix(k, "DISTCC_") ||
			strings.HasPrefix(k, "CCACHE_") || strings.HasSuffix(strings.ToUpper(k), "_PROXY") {
			continue
		}
		env = append(env, e)
	}
	return env
}

// hostCgroup2 is "1" when the machine mounts the unified cgroup hierarchy
// alone at /sys/fs/cgroup.
func hostCgroup2() string {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == 0x63677270 {
		return "1"
	}
	return "0"
}

// overlaySupport says why Swarm's overlay networks cannot work here, if
// they cannot: they are VXLAN tunnels between the nodes, and a service's
// tasks on one node use them too. (IPVS, which some kernels lack, the
// stack does not need: its services use DNS round robin.)
func overlaySupport() error {
	ns := fmt.Sprintf("sswvx%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add: %v %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "-n", ns, "link", "add", "vx0", "type", "vxlan", "id", "42", "dstport", "4789").CombinedOutput(); err != nil {
		return fmt.Errorf("this kernel cannot make a VXLAN interface (ip link add type vxlan: %v %s), which Swarm's overlay networks are; "+
			"load the vxlan module (modprobe vxlan) or run the test on a kernel built with CONFIG_VXLAN", err, strings.TrimSpace(string(out)))
	}
	return nil
}
