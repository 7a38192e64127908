package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitLog waits until a node's log says something.
func waitLog(t *testing.T, n *node, what string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(n.Log(), what) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %q within %s:\n%s", n.Name, what, within, n.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type cluster struct {
	lab     *netlab
	server  *node
	runners []*node
	url     string
	creds   string
	state   string
}

// newCluster starts a server, a builder and n runners, each on its own
// node, with a short lease so that lost runners are noticed quickly.
func newCluster(t *testing.T, runners int, serverArgs ...string) *cluster {
	t.Helper()
	names := []string{"server", "builder"}
	for i := 1; i <= runners; i++ {
		names = append(names, "runner"+strconv.Itoa(i))
	}
	lab := newNetlab(t, names...)
	c := &cluster{lab: lab, state: t.TempDir()}
	c.url = "nats://" + lab.addr("server") + ":4222"
	c.creds = filepath.Join(c.state, "client.creds")
	args := append([]string{"server", "--listen", lab.addr("server") + ":4222", "--state", c.state, "--lease", "4s"}, serverArgs...)
	c.server = lab.start("server", args...)
	waitLog(t, c.server, "listening", 30*time.Second)
	dir := t.TempDir()
	lab.start("builder", "builder", "--server", c.url, "--creds", c.creds, "--dir", filepath.Join(dir, "ws"), "--ccache-dir", filepath.Join(dir, "ccache"), "-v")
	for i := 1; i <= runners; i++ {
		name := "runner" + strconv.Itoa(i)
		c.runners = append(c.runners, lab.start(name, "runner", "--server", c.url, "--creds", c.creds, "--slots", "2",
			"--name", name, "--cache", filepath.Join(dir, name), "-v"))
	}
	for _, r := range c.runners {
		waitLog(t, r, "connected", 30*time.Second)
	}
	return c
}

// client runs simswarm in the root namespace against the cluster.
func (c *cluster) client(t *testing.T, dir string, args ...string) result {
	t.Helper()
	full := append([]string{args[0], "--server", c.url, "--creds", c.creds}, args[1:]...)
	return runSimswarm(t, dir, t.TempDir(), full...)
}

func (c *cluster) clientCmd(dir string, args ...string) *exec.Cmd {
	full := append([]string{args[0], "--server", c.url, "--creds", c.creds}, args[1:]...)
	cmd := exec.Command(binary, full...)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	return cmd
}

// background is a client started and left running while a test breaks
// something under it.
type background struct {
	cmd       *exec.Cmd
	out, errb strings.Builder
}

func startBackground(t *testing.T, cmd *exec.Cmd) *background {
	t.Helper()
	b := &background{cmd: cmd}
	cmd.Stdout, cmd.Stderr = &b.out, &b.errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return b
}

// summary waits for the client to end and reads its --json summary.
func (b *background) summary(t *testing.T, within time.Duration, after string) summary {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- b.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(within):
		b.cmd.Process.Kill()
		t.Fatalf("campaign did not complete %s within %s\n%s", after, within, b.errb.String())
	}
	return jsonSummary(t, result{stdout: b.out.String(), stderr: b.errb.String()})
}

// executions counts, from the runners' logs, how often each run of a
// campaign was executed.
func executions(runners []*node, campaign string) map[int]int {
	out := map[int]int{}
	re := regexp.MustCompile(`msg="process ended" campaign=` + campaign + ` runs=([0-9,]+) how="exit status 0"`)
	for _, r := range runners {
		for _, m := range re.FindAllStringSubmatch(r.Log(), -1) {
			for _, s := range strings.Split(m[1], ",") {
				n, _ := strconv.Atoi(s)
				out[n]++
			}
		}
	}
	return out
}

// TestClusterCampaign: the example sweep across a server, a builder and
// three runners on separate hosts, driven from a client that has no
// simulator installed (the run list is resolved on a runner).
func TestClusterCampaign(t *testing.T) {
	c := newCluster(t, 3)
	dir := example(t, "aloha")
	r := c.client(t, dir, "run", "--json", "--", "./aloha", "-c", "PureAlohaExperiment")
	s := jsonSummary(t, r)
	if r.code != 0 || s.Succeeded != 42 || s.Executed != 42 {
		t.Fatalf("exit %d %+v\n%s", r.code, s, r.stderr)
	}
	if n := len(files(t, filepath.Join(dir, "results"), "PureAlohaExperiment-*.sca")); n != 42 {
		t.Fatalf("%d result files, want 42", n)
	}
	var hosts summaryHosts
	hosts.parse(t, r.stdout)
	if len(hosts.Hosts) < 2 {
		t.Fatalf("runs went to %v; want them spread over the runners", hosts.Hosts)
	}
	// The status command sees the campaign and the workers.
	st := c.client(t, dir, "status")
	if st.code != 0 || !strings.Contains(st.stdout, s.Campaign) || strings.Count(st.stdout, "runner ") < 3 {
		t.Fatalf("status: exit %d\n%s%s", st.code, st.stdout, st.stderr)
	}
}

// TestClusterRunnerKilled: a runner SIGKILLed mid-campaign loses its runs
// only until their lease runs out; every run completes exactly once.
func TestClusterRunnerKilled(t *testing.T) {
	c := newCluster(t, 3)
	dir := example(t, "aloha")
	client := startBackground(t, c.clientCmd(dir, "run", "--json", "-q", "--", "./aloha", "-c", "Sleepy", "--repeat=24", "--sleep=1"))
	victim := c.runners[0]
	waitLog(t, victim, `msg="process ended"`, time.Minute)
	killed := time.Now()
	victim.Signal(syscall.SIGKILL)
	s := client.summary(t, 2*time.Minute, "after losing a runner")
	took := time.Since(killed)
	if s.Succeeded != 24 || s.Failed != 0 {
		t.Fatalf("after losing a runner: %+v", s)
	}
	scas := files(t, filepath.Join(dir, "results"), "Sleepy-*.sca")
	if len(scas) != 24 {
		t.Fatalf("%d result files, want 24", len(scas))
	}
	t.Logf("campaign finished %s after the runner was killed (lease 4s)", took.Round(100*time.Millisecond))
}

// TestClusterServerRestart: the server is SIGKILLed and restarted
// mid-campaign; workers and client reconnect and the campaign completes.
func TestClusterServerRestart(t *testing.T) {
	c := newCluster(t, 2)
	dir := example(t, "aloha")
	client := startBackground(t, c.clientCmd(dir, "run", "--json", "-q", "--", "./aloha", "-c", "Sleepy", "--repeat=24", "--sleep=0.5"))
	waitLog(t, c.runners[0], `msg="process ended"`, time.Minute)
	c.server.Kill()
	time.Sleep(time.Second)
	c.server.Restart()
	s := client.summary(t, 3*time.Minute, "after the server restart")
	if s.Succeeded != 24 {
		t.Fatalf("after a server restart: %+v\n%s", s, client.errb.String())
	}
	if n := len(files(t, filepath.Join(dir, "results"), "Sleepy-*.sca")); n != 24 {
		t.Fatalf("%d result files, want 24", n)
	}
}

// TestClusterThreeServers: with a 3-server JetStream cluster and every
// stream replicated three times, losing one server loses nothing.
func TestClusterThreeServers(t *testing.T) {
	lab := newNetlab(t, "s1", "s2", "s3", "builder", "runner1", "runner2")
	state := t.TempDir()
	var servers []*node
	var urls []string
	// One set of credentials for all three servers, as a Docker secret would.
	credsFile := filepath.Join(state, "client.creds")
	writeCreds(t, credsFile)
	for _, name := range []string{"s1", "s2", "s3"} {
		var routes []string
		for _, other := range []string{"s1", "s2", "s3"} {
			if other != name {
				routes = append(routes, "nats://"+lab.addr(other)+":6222")
			}
		}
		dir := filepath.Join(state, name)
		args := []string{"server", "--listen", lab.addr(name) + ":4222", "--state", dir, "--name", name,
			"--cluster", lab.addr(name) + ":6222", "--routes", strings.Join(routes, ","), "--replicas", "3", "--lease", "4s",
			"--creds", credsFile}
		servers = append(servers, lab.start(name, args...))
		urls = append(urls, "nats://"+lab.addr(name)+":4222")
	}
	for _, s := range servers {
		waitLog(t, s, "listening", 2*time.Minute)
	}
	url := strings.Join(urls, ",")
	work := t.TempDir()
	lab.start("builder", "builder", "--server", url, "--creds", credsFile, "--dir", filepath.Join(work, "ws"), "--ccache-dir", filepath.Join(work, "ccache"))
	runners := []*node{
		lab.start("runner1", "runner", "--server", url, "--creds", credsFile, "--slots", "2", "--name", "runner1", "--cache", filepath.Join(work, "r1"), "-v"),
		lab.start("runner2", "runner", "--server", url, "--creds", credsFile, "--slots", "2", "--name", "runner2", "--cache", filepath.Join(work, "r2"), "-v"),
	}
	dir := example(t, "aloha")
	cmd := exec.Command(binary, "run", "--server", url, "--creds", credsFile, "--json", "-q", "--", "./aloha", "-c", "Sleepy", "--repeat=24", "--sleep=0.5")
	cmd.Dir, cmd.Env = dir, cleanEnv()
	client := startBackground(t, cmd)
	waitLog(t, runners[0], `msg="process ended"`, 2*time.Minute)
	servers[1].Signal(syscall.SIGKILL)
	s := client.summary(t, 3*time.Minute, "after losing one of three servers")
	if s.Succeeded != 24 {
		t.Fatalf("after losing a server: %+v\n%s", s, client.errb.String())
	}
	if n := len(files(t, filepath.Join(dir, "results"), "Sleepy-*.sca")); n != 24 {
		t.Fatalf("%d result files, want 24", n)
	}
}

func writeCreds(t *testing.T, path string) {
	t.Helper()
	body := "user = \"simswarm\"\npassword = \"" + strconv.FormatInt(time.Now().UnixNano(), 36) + "x-test-secret\"\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestClusterClientKilled: a client SIGKILLed mid-campaign and started
// again executes nothing twice: runs finished meanwhile are fetched, the
// rest keep running on the runners.
func TestClusterClientKilled(t *testing.T) {
	c := newCluster(t, 2)
	dir := example(t, "aloha")
	cmd := c.clientCmd(dir, "run", "-q", "--", "./aloha", "-c", "Sleepy", "--repeat=16", "--sleep=0.5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for len(files(t, filepath.Join(dir, "results"), "Sleepy-*.sca")) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	r := c.client(t, dir, "run", "--json", "-q", "--", "./aloha", "-c", "Sleepy", "--repeat=16", "--sleep=0.5")
	s := jsonSummary(t, r)
	if r.code != 0 || s.Succeeded != 16 {
		t.Fatalf("restarted client: exit %d %+v\n%s", r.code, s, r.stderr)
	}
	for run, n := range executions(c.runners, s.Campaign) {
		if n != 1 {
			t.Errorf("run %d executed %d times", run, n)
		}
	}
	if got := len(executions(c.runners, s.Campaign)); got != 16 {
		t.Errorf("runner logs show %d runs executed, want 16", got)
	}
}

// TestClusterInterrupt: Ctrl-C in the client cancels the campaign on every
// host: within a few seconds no simulation process of it is left.
func TestClusterInterrupt(t *testing.T) {
	c := newCluster(t, 2)
	dir := example(t, "aloha")
	cmd := c.clientCmd(dir, "run", "-q", "--", "./aloha", "-c", "Sleepy", "--repeat=20", "--sleep=60")
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until simulations run on the runners.
	deadline := time.Now().Add(time.Minute)
	for countProcs(t, "Sleepy") < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("the simulations never started\n%s", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err == nil {
		t.Fatal("an interrupted campaign exited 0")
	}
	deadline = time.Now().Add(5 * time.Second)
	for countProcs(t, "Sleepy") > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d simulation processes still running 5s after Ctrl-C", countProcs(t, "Sleepy"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := c.client(t, dir, "status", "--json")
	if !regexp.MustCompile(`"name": "run",\s*"waiting": 0`).MatchString(st.stdout) {
		t.Fatalf("jobs still waiting after cancel:\n%s", st.stdout)
	}
}

// countProcs counts running aloha processes of a config, on every node
// (namespaces share the process table).
func countProcs(t *testing.T, config string) int {
	out, _ := exec.Command("pgrep", "-f", "aloha .*-c "+config).Output()
	return len(strings.Fields(string(out)))
}

// TestClusterAuth: a client without or with wrong credentials is refused
// with a clear error, and nothing is enqueued.
func TestClusterAuth(t *testing.T) {
	c := newCluster(t, 1)
	dir := example(t, "aloha")
	r := runSimswarm(t, dir, t.TempDir(), "run", "--server", c.url, "--", "./aloha", "-c", "PureAlohaExperiment")
	if r.code != 2 || !strings.Contains(r.stderr, "refused the credentials") || !strings.Contains(r.stderr, "--creds") {
		t.Fatalf("no credentials: exit %d %s", r.code, r.stderr)
	}
	wrong := filepath.Join(t.TempDir(), "wrong.creds")
	writeCreds(t, wrong)
	r = runSimswarm(t, dir, t.TempDir(), "run", "--server", c.url, "--creds", wrong, "--", "./aloha", "-c", "PureAlohaExperiment")
	if r.code != 2 || !strings.Contains(r.stderr, "refused the credentials") {
		t.Fatalf("wrong credentials: exit %d %s", r.code, r.stderr)
	}
	st := c.client(t, dir, "status", "--json")
	if st.code != 0 || !strings.Contains(st.stdout, `"campaigns": null`) {
		t.Fatalf("something was submitted without credentials:\n%s%s", st.stdout, st.stderr)
	}
}

// TestClusterArtifactOnce: many slots of two runner processes on one host
// ask for a 100 MB artifact at once; the host fetches it once.
func TestClusterArtifactOnce(t *testing.T) {
	lab := newNetlab(t, "server", "host")
	state := t.TempDir()
	url := "nats://" + lab.addr("server") + ":4222"
	credsFile := filepath.Join(state, "client.creds")
	srv := lab.start("server", "server", "--listen", lab.addr("server")+":4222", "--state", state)
	waitLog(t, srv, "listening", 30*time.Second)
	work := t.TempDir()
	lab.start("host", "builder", "--server", url, "--creds", credsFile, "--dir", filepath.Join(work, "ws"), "--ccache-dir", filepath.Join(work, "ccache"))
	cache := filepath.Join(work, "cache")
	var runners []*node
	for i := 0; i < 2; i++ {
		n := lab.start("host", "runner", "--server", url, "--creds", credsFile, "--slots", "4", "--name", "host", "--cache", cache, "-v")
		n.Name = "runner" + strconv.Itoa(i)
		runners = append(runners, n)
	}
	dir := example(t, "aloha")
	toml := "[build]\ncommand = \"make MODE=release -j{jobs} && head -c 100000000 /dev/urandom > data.bin\"\n"
	if err := os.WriteFile(filepath.Join(dir, "simswarm.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "run", "--server", url, "--creds", credsFile, "--json", "-q", "--", "./aloha", "-c", "Sleepy", "--repeat=16", "--sleep=0.2")
	cmd.Dir, cmd.Env = dir, cleanEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("campaign: %v\n%s", err, out)
	}
	s := jsonSummary(t, result{stdout: string(out)})
	if s.Succeeded != 16 {
		t.Fatalf("%+v", s)
	}
	fetched := 0
	for _, r := range runners {
		fetched += strings.Count(r.Log(), `msg="tree ready"`)
	}
	if fetched != 1 {
		t.Fatalf("the artifact was fetched %d times on one host, want once", fetched)
	}
}

// summaryHosts reads the per-host counts of a JSON summary.
type summaryHosts struct {
	Hosts map[string]int `json:"hosts"`
}

func (h *summaryHosts) parse(t *testing.T, s string) {
	t.Helper()
	if err := jsonUnmarshal(s, h); err != nil {
		t.Fatal(err)
	}
}
