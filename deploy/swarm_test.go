package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSwarm deploys the stack on a real Docker Swarm and uses it as the
// guide does, by running the guide's own commands (docs/deploy-swarm.md,
// every block marked <!-- test: NAME -->; step 0's machine-specific lines
// set to the lab's). The swarm's machines are Docker engines in network
// namespaces of this machine (swarmlab_test.go): first one, a single-node
// swarm, then three. Nothing is pulled: the images are built from a base
// made with debootstrap from Debian's packages, and every engine's pulls
// go to a dead proxy.
//
// It runs in `go test ./...` wherever its tools are (root, Debian's
// docker.io, debootstrap, iproute2; .ci/run installs them), as every
// other test of the project does, and skips naming what is missing.
// -short skips it: it takes minutes.
//
// What it checks, in order: deploying without the label and the secrets,
// or without SIMSWARM_TAG, fails naming them; the images build offline
// with BuildKit and with the legacy builder, on the local base, the
// runtime from the local OMNeT++; the stack gets healthy; the bundled
// campaign runs from the host through the published engine port; a real
// OMNeT++ campaign runs on the runtime image; scaling runner-pool adds
// the slots the dashboard counts; a runner killed mid-campaign is
// replaced by Swarm and every run completes exactly once; a runner image
// without OMNeT++'s libraries fails the campaign naming the library; two
// more nodes join (images loaded without a registry), get runners and
// compile servers, the builder compiles on them over distcc, the engine
// stays on its labelled node, and a campaign completes although one worker
// node dies in the middle of it; the stack and the swarm are removed.
func TestSwarm(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the real-swarm test takes minutes")
	}
	if os.Geteuid() != 0 {
		t.Skip("the swarm lab starts Docker engines in network namespaces: it needs root (CI runs as root)")
	}
	need := map[string]string{}
	for _, tool := range []string{"dockerd", "docker", "debootstrap", "ip", "unshare", "openssl", "curl", "zstd", "tar"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s not installed: the real-swarm test needs Debian's docker.io, debootstrap, iproute2, util-linux, openssl, curl and zstd (.ci/run installs them)", tool)
		}
		need[tool] = p
	}
	// The CLI of the engine's own package: Debian's 20.10 builds with
	// BuildKit without the buildx plugin that a newer CLI would want.
	docker := need["docker"]
	if p := filepath.Join(filepath.Dir(filepath.Dir(need["dockerd"])), "bin", "docker"); fileExists(p) {
		docker = p
	}
	omnetppArchive, _ := filepath.Abs("../../shared/omnetpp/omnetpp-6.1-linux-x86_64.tar.zst")
	if !fileExists(omnetppArchive) {
		t.Skipf("%s is absent: the runtime image is built from that OMNeT++ release (the test never downloads one)", omnetppArchive)
	}
	if err := overlaySupport(); err != nil {
		t.Skip(err.Error())
	}
	blocks := guideBlocks(t)
	var names []string
	for n := range blocks {
		names = append(names, n)
	}
	sort.Strings(names)
	if want := "base build campaign client deploy drain join label leave load remove scale secrets swarm variables volumes"; strings.Join(names, " ") != want {
		t.Fatalf("the guide marks the blocks %v; the test runs %s: keep them in step", names, want)
	}
	began := time.Now()
	figures := &figureLog{t: t}
	defer figures.print()

	// The base image, as the guide's "Without Docker Hub" makes it.
	m := regexp.MustCompile(`debootstrap --variant=minbase --include=(\S+) (\S+) "\$BASE_ROOT" (\S+)`).FindStringSubmatch(blocks["base"])
	im := regexp.MustCompile(`docker import - (\S+)`).FindStringSubmatch(blocks["base"])
	ex := regexp.MustCompile(`export SIMSWARM_BASE_IMAGE=(\S+)`).FindStringSubmatch(blocks["base"])
	if m == nil || im == nil || ex == nil || ex[1] != im[1] || !strings.Contains(blocks["base"], `chroot "$BASE_ROOT" apt-get clean`) {
		t.Fatalf("the guide's base block no longer reads as debootstrap, docker import and SIMSWARM_BASE_IMAGE:\n%s", blocks["base"])
	}
	step := time.Now()
	tarball := baseTarball(t, need["debootstrap"], m[1], m[2], m[3])
	figures.add("base tarball (debootstrap, cached)", time.Since(step))

	lab := newSwarmLab(t, need["dockerd"], docker)
	n1 := lab.addNode("n1")
	step = time.Now()
	n1.must("import", tarball, im[1])
	figures.add("docker import of the base", time.Since(step))

	g := newGuideRunner(t, lab, docker)
	g.env = append(g.env, "SIMSWARM_BASE_IMAGE="+im[1])

	// Step 1, and a deploy before the label and the secrets exist.
	g.must("swarm")
	out, err := g.run(nil, "deploy")
	if err == nil || !strings.Contains(out, "simswarm.engine=true") || !strings.Contains(out, "simswarm_creds") {
		t.Fatalf("deploy without label and secrets: err %v, want preflight naming the label and the secret:\n%s", err, out)
	}
	t.Logf("without label and secrets:\n%s", grepLines(out, "preflight:"))
	g.must("label")

	// Step 3: the images, offline, with BuildKit; then with the legacy
	// builder (and the bare runtime, for the bad-image case below).
	step = time.Now()
	g.must("build", "DOCKER_BUILDKIT=1", "SIMSWARM_BUILD_NETWORK=none", "SIMSWARM_OMNETPP_ARCHIVE="+omnetppArchive)
	figures.add("build-images.sh, BuildKit (simswarm, runtime)", time.Since(step))
	step = time.Now()
	legacy := g.tag + "-legacy"
	g.script("deploy/build-images.sh", "DOCKER_BUILDKIT=0", "SIMSWARM_BUILD_NETWORK=none", "SIMSWARM_OMNETPP_ARCHIVE="+omnetppArchive,
		"SIMSWARM_REGISTRY="+g.registry, "SIMSWARM_TAG="+legacy, "SIMSWARM_IMAGES=simswarm runtime base")
	figures.add("build-images.sh, legacy builder (simswarm, runtime, base)", time.Since(step))
	checkImages(t, n1, g.registry, g.tag, legacy)

	// A deploy without SIMSWARM_TAG.
	out, err = g.runVars(map[string]string{"TAG": ""}, "deploy")
	if err == nil || !strings.Contains(out, "SIMSWARM_TAG") {
		t.Fatalf("deploy without SIMSWARM_TAG: err %v, want an error naming SIMSWARM_TAG:\n%s", err, out)
	}
	t.Logf("without SIMSWARM_TAG:\n%s", grepLines(out, "SIMSWARM_TAG"))

	// Steps 4 and 5.
	g.must("secrets")
	step = time.Now()
	out = g.must("deploy")
	figures.add("deploy to healthy (single node)", time.Since(step))
	t.Logf("deploy:\n%s", grepLines(out, "wait-stack:"))
	if engineNode := strings.TrimSpace(n1.must("service", "ps", "--filter", "desired-state=running", "--format", "{{.Node}}", "simswarm_engine")); engineNode != n1.host {
		t.Errorf("engine runs on %q, want the labelled %s", engineNode, n1.host)
	}

	// Step 6: the bundled campaign from the host, through the published
	// port; the same campaign embedded, for comparison.
	g.must("client")
	step = time.Now()
	out = g.must("campaign")
	swarmWall := time.Since(step)
	if !regexp.MustCompile(`: 42 runs: 42 succeeded, 0 failed; 42 executed`).MatchString(out) {
		t.Fatalf("the guide's campaign on the swarm: want 42 runs executed and succeeded:\n%s", out)
	}
	if n := countFiles(t, filepath.Join(g.checkout, "examples/aloha/results"), ".sca"); n != 42 {
		t.Errorf("the campaign left %d .sca files in examples/aloha/results, want 42", n)
	}
	embedded := embeddedBaseline(t, g)
	figures.add("bundled aloha campaign (42 runs), swarm: 1 slot", swarmWall)
	figures.add("bundled aloha campaign (42 runs), embedded on the host: 2 slots", embedded)

	// A real OMNeT++ campaign: the aloha sample of OMNeT++ 6.1, built by
	// the builder on the runtime image, run by its runners.
	omnet := omnetppSample(t, omnetppArchive)
	step = time.Now()
	sum := g.simswarmRun(t, omnet, "./aloha", "-u", "Cmdenv", "-c", "PureAlohaExperiment", "-r", "0..5", "--sim-time-limit=30min")
	figures.add("OMNeT++ aloha sample (6 runs, build included), swarm", time.Since(step))
	if sum.Runs != 6 || sum.Succeeded != 6 || sum.Build == nil {
		t.Fatalf("OMNeT++ campaign: %+v, want 6 runs succeeded after a build", sum)
	}
	if n := countFiles(t, filepath.Join(omnet, "results"), ".sca"); n != 6 {
		t.Errorf("OMNeT++ campaign left %d .sca files, want 6", n)
	}

	// Step 7: scale runner-pool; the dashboard counts the slots.
	dash := &dashboard{t: t, url: "http://" + n1.addr + ":9181", tokenFile: filepath.Join(g.home, ".config/simswarm/dashboard.token")}
	before := dash.slots()
	step = time.Now()
	out = g.must("scale")
	scaled := time.Since(step)
	after := dash.waitSlots(before+2, 3*time.Minute)
	figures.add("scale runner-pool 0 -> 2: docker service scale converged", scaled)
	figures.add("scale runner-pool 0 -> 2 until the dashboard counts the slots", time.Since(step))
	t.Logf("scale: dashboard slots %d -> %d; the guide's command printed %s", before, after, strings.TrimSpace(lastLine(out)))

	// A runner killed mid-campaign.
	killRunner(t, g, n1, dash, figures)

	// A runner image without OMNeT++'s libraries.
	badRuntime(t, g, n1, omnet, legacy, figures)

	// More nodes: the images loaded without a registry, then joined.
	multiNode(t, g, lab, omnet, figures)

	// Step 9, and leaving the swarm.
	step = time.Now()
	g.must("remove")
	g.must("volumes")
	g.must("leave")
	figures.add("remove the stack, its volumes and the swarm", time.Since(step))
	if out := n1.must("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left after the teardown: %s", out)
	}
	figures.add("whole test", time.Since(began))
}

// ---------------------------------------------------------------------

// guideRunner runs the guide's blocks as the guide's user would: in a copy
// of the checkout (the guide works in its top directory and leaves
// results there), with step 0 first, a HOME of its own, and `docker` on
// the PATH as a shim that sends `DOCKER_HOST=ssh://USER@ADDR` to the lab
// engine with that address: it stands in for SSH to other machines.
type guideRunner struct {
	t                   *testing.T
	lab                 *swarmLab
	blocks              map[string]string
	checkout, home, bin string
	tag, registry       string
	vars                map[string]string
	env                 []string
}

func newGuideRunner(t *testing.T, lab *swarmLab, docker string) *guideRunner {
	t.Helper()
	g := &guideRunner{t: t, lab: lab, blocks: guideBlocks(t), home: filepath.Join(lab.dir, "home"), bin: filepath.Join(lab.dir, "bin"),
		tag: "swarmtest" + lab.id, registry: "127.0.0.1:5000"}
	g.checkout = copyCheckout(t, filepath.Join(lab.dir, "checkout"))
	for _, d := range []string{g.home, g.bin, filepath.Join(lab.dir, "by-addr")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	shim := `#!/bin/sh
case "${DOCKER_HOST:-}" in
ssh://*@*)
  addr=${DOCKER_HOST#ssh://*@}
  [ -S "` + lab.dir + `/by-addr/$addr" ] || { echo "docker shim: no lab node at $addr" >&2; exit 1; }
  DOCKER_HOST="unix://` + lab.dir + `/by-addr/$addr"; export DOCKER_HOST ;;
esac
exec ` + docker + ` "$@"
`
	if err := os.WriteFile(filepath.Join(g.bin, "docker"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	g.vars = map[string]string{"MANAGER_ADDR": lab.nodes[0].addr, "WORKERS": "", "SSH_USER": "root", "TAG": g.tag, "RESOLVE_IMAGE": "never"}
	goenv, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	ge := strings.Fields(string(goenv))
	g.env = append(labEnv(), "HOME="+g.home, "PATH="+g.bin+":"+os.Getenv("PATH"), "GOCACHE="+ge[0], "GOMODCACHE="+ge[1], "GOPATH="+ge[2],
		"GOFLAGS=", "SIMSWARM_VISUALIZER_REPLICAS=0", "DOCKER_CONFIG="+filepath.Join(g.home, ".docker"))
	g.link(lab.nodes[0])
	return g
}

// link lets the shim reach a node by its address.
func (g *guideRunner) link(n *dockerNode) {
	if err := os.Symlink(n.sock, filepath.Join(g.lab.dir, "by-addr", n.addr)); err != nil && !os.IsExist(err) {
		g.t.Fatal(err)
	}
}

// run runs step 0 (with the lab's values, and vars over them) then the
// named blocks, in one shell that stops at the first failing command.
func (g *guideRunner) runVars(vars map[string]string, names ...string) (string, error) {
	return g.runEnv(vars, nil, names...)
}

func (g *guideRunner) run(extraEnv []string, names ...string) (string, error) {
	return g.runEnv(nil, extraEnv, names...)
}

func (g *guideRunner) runEnv(vars map[string]string, extraEnv []string, names ...string) (string, error) {
	g.t.Helper()
	values := map[string]string{}
	for k, v := range g.vars {
		values[k] = v
	}
	for k, v := range vars {
		values[k] = v
	}
	script := "set -eo pipefail\n" + setVariables(g.t, g.blocks["variables"], values)
	for _, n := range names {
		b, ok := g.blocks[n]
		if !ok {
			g.t.Fatalf("the guide has no block %q", n)
		}
		// No SSH tunnel (see the guide's step 6): the ports are reached
		// where they are published, on the manager.
		b = strings.ReplaceAll(b, "localhost:", values["MANAGER_ADDR"]+":")
		script += "\n# --- " + n + "\n" + b
	}
	return g.shell(script, extraEnv)
}

func (g *guideRunner) shell(script string, extraEnv []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = g.checkout
	cmd.Env = append(append([]string(nil), g.env...), extraEnv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// must runs blocks that must succeed.
func (g *guideRunner) must(name string, extraEnv ...string) string {
	g.t.Helper()
	out, err := g.run(extraEnv, name)
	if err != nil {
		g.t.Fatalf("the guide's block %q: %v\n%s", name, err, tail(out, 6000))
	}
	return out
}

// script runs a command of the checkout that the guide's blocks run too,
// after step 0 (which points docker at the manager).
func (g *guideRunner) script(argv0 string, env ...string) string {
	g.t.Helper()
	out, err := g.shell("set -eo pipefail\n"+setVariables(g.t, g.blocks["variables"], g.vars)+"\n"+argv0, env)
	if err != nil {
		g.t.Fatalf("%s: %v\n%s", argv0, err, tail(out, 6000))
	}
	return out
}

// simswarmRun runs the guide's client on a project against the swarm and
// returns its JSON summary.
func (g *guideRunner) simswarmRun(t *testing.T, dir string, args ...string) *campaignSummary {
	t.Helper()
	out, err := g.simswarm(dir, args...)
	var sum campaignSummary
	if jerr := json.Unmarshal([]byte(jsonPart(out)), &sum); jerr != nil {
		t.Fatalf("simswarm run %v: %v, no JSON summary (%v):\n%s", args, err, jerr, tail(out, 4000))
	}
	if err != nil {
		t.Fatalf("simswarm run %v: %v\n%s", args, err, tail(out, 4000))
	}
	return &sum
}

func (g *guideRunner) simswarm(dir string, args ...string) (string, error) {
	argv := append([]string{filepath.Join(g.checkout, "simswarm"), "run", "--json", "-q",
		"--server", "nats://" + g.lab.nodes[0].addr + ":4222", "--creds", filepath.Join(g.home, ".config/simswarm/client.creds"),
		"-C", dir}, args...)
	if len(args) > 0 {
		argv = append(argv[:len(argv)-len(args)], append([]string{"--"}, args...)...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = g.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

type campaignSummary struct {
	Runs, Succeeded, Failed, Executed, Cached int
	Failures                                  []struct {
		Run    int
		Reason string
		Errors []string
	}
	Hosts map[string]int
	Wall  float64 `json:"wall_seconds"`
	Build *struct {
		Cached   bool
		Compiled int
		Warnings []string
	}
}

// jsonPart is the JSON object simswarm --json prints, without the lines
// around it.
func jsonPart(out string) string {
	i, j := strings.Index(out, "{\n"), strings.LastIndex(out, "}")
	if i < 0 || j < i {
		return ""
	}
	return out[i : j+1]
}

// ---------------------------------------------------------------------

// checkImages: BuildKit and the legacy builder made images with the same
// simswarm, the runtime's OMNeT++ runs, and the user is the service user.
func checkImages(t *testing.T, n *dockerNode, registry, tag, legacy string) {
	t.Helper()
	sums := map[string]string{}
	for _, tg := range []string{tag, legacy} {
		for _, img := range []string{"simswarm", "simswarm-runtime"} {
			ref := registry + "/" + img + ":" + tg
			out := n.must("run", "--rm", "--network", "none", "--entrypoint", "sh", ref, "-c",
				"id -u; sha256sum /usr/local/bin/simswarm | cut -c1-64; simswarm version")
			lines := strings.Fields(out)
			if len(lines) < 3 || lines[0] != "10001" {
				t.Errorf("%s: runs as %q, want the service user 10001:\n%s", ref, lines, out)
				continue
			}
			sums[ref] = lines[1]
		}
		ref := registry + "/simswarm-runtime:" + tg
		if out, err := n.run("run", "--rm", "--network", "none", ref, "opp_run", "-v"); err != nil || !strings.Contains(out, "OMNeT++") {
			t.Errorf("%s: opp_run -v: %v\n%s", ref, err, out)
		}
	}
	var first string
	for ref, s := range sums {
		if first == "" {
			first = s
		} else if s != first {
			t.Errorf("%s holds another simswarm binary than the others: %v", ref, sums)
		}
	}
}

func embeddedBaseline(t *testing.T, g *guideRunner) time.Duration {
	t.Helper()
	dir := filepath.Join(g.lab.dir, "aloha-embedded")
	if out, err := exec.Command("cp", "-a", filepath.Join(g.checkout, "examples/aloha"), dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	_ = os.RemoveAll(filepath.Join(dir, "results"))
	start := time.Now()
	cmd := exec.Command(filepath.Join(g.checkout, "simswarm"), "run", "-q", "--state", filepath.Join(g.lab.dir, "embedded-state"), "-C", dir, "--", "./aloha", "-c", "PureAlohaExperiment")
	cmd.Env = g.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("embedded baseline: %v\n%s", err, out)
	}
	return time.Since(start)
}

// omnetppSample unpacks OMNeT++'s aloha sample (sources, Makefile,
// omnetpp.ini) into a project directory of its own.
func omnetppSample(t *testing.T, archive string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "omnetpp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `zstd -dc "$1" | tar -x -C "$2" --strip-components=3 omnetpp-6.1/samples/aloha`, "sh", archive, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("unpack the aloha sample: %v\n%s", err, out)
	}
	for _, junk := range []string{"out", "results", "aloha"} {
		_ = os.RemoveAll(filepath.Join(dir, junk))
	}
	return dir
}

// ---------------------------------------------------------------------

type dashboard struct {
	t              *testing.T
	url, tokenFile string
}

func (d *dashboard) get(path string, v any) error {
	tok, err := os.ReadFile(d.tokenFile)
	if err != nil {
		return err
	}
	req, _ := http.NewRequest("GET", d.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return json.Unmarshal(b, v)
}

type workersView struct {
	Counts struct{ Online, Lost, Slots, Busy int }
	Hosts  []struct {
		Host    string
		Workers []struct {
			ID, Host, Role, State string
			Slots, Busy           int
			CurrentRuns           []struct{ Run int } `json:"current_runs"`
		}
	}
}

func (d *dashboard) workers() (*workersView, error) {
	var w workersView
	err := d.get("/api/workers", &w)
	return &w, err
}

func (d *dashboard) slots() int {
	d.t.Helper()
	w, err := d.workers()
	if err != nil {
		d.t.Fatalf("dashboard: %v", err)
	}
	return w.Counts.Slots
}

func (d *dashboard) waitSlots(want int, limit time.Duration) int {
	d.t.Helper()
	deadline := time.Now().Add(limit)
	got := -1
	for time.Now().Before(deadline) {
		if w, err := d.workers(); err == nil {
			if got = w.Counts.Slots; got >= want {
				return got
			}
		}
		time.Sleep(time.Second)
	}
	d.t.Fatalf("the dashboard counts %d slots after %s, want %d", got, limit, want)
	return got
}

// ---------------------------------------------------------------------

// execLog is where the counting campaign's runs note that they started and
// ended: on the runner-cache volume, which every runner of a node mounts.
const execLog = "/var/lib/simswarm/runner/swarmtest-exec.log"

// countingProject writes a project whose runs append "start N" and "end N"
// to execLog around a few seconds' sleep, and leave one result file.
func countingProject(t *testing.T, dir, nonce string, runs int, sleep string) {
	t.Helper()
	toml := fmt.Sprintf(`[build]
command = ""

[run]
command = "echo start %[1]s-{run} >> %[2]s && sleep %[3]s && echo {run} > {resultdir}/run-{run}.txt && echo end %[1]s-{run} >> %[2]s"
repeat = %[4]d
`, nonce, execLog, sleep, runs)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "simswarm.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readExecLog collects the log from every node that still runs a runner.
func readExecLog(t *testing.T, nodes []*dockerNode, nonce string) (starts, ends map[int]int) {
	t.Helper()
	starts, ends = map[int]int{}, map[int]int{}
	for _, n := range nodes {
		if n.stopped {
			continue
		}
		ids := strings.Fields(n.must("ps", "-q", "--filter", "label=com.docker.stack.namespace=simswarm", "--filter", "label=com.docker.swarm.service.name=simswarm_runner-manager"))
		ids = append(ids, strings.Fields(n.must("ps", "-q", "--filter", "label=com.docker.swarm.service.name=simswarm_runner"))...)
		if len(ids) == 0 {
			continue
		}
		out, err := n.run("exec", ids[0], "cat", execLog)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 2 || !strings.HasPrefix(f[1], nonce+"-") {
				continue
			}
			run, err := strconv.Atoi(strings.TrimPrefix(f[1], nonce+"-"))
			if err != nil {
				continue
			}
			if f[0] == "start" {
				starts[run]++
			} else {
				ends[run]++
			}
		}
	}
	return starts, ends
}

// killRunner: `docker kill` the manager's runner while it runs runs; Swarm
// starts another; every run of the campaign ends exactly once, and those
// the killed runner had are started again.
func killRunner(t *testing.T, g *guideRunner, n1 *dockerNode, dash *dashboard, figures *figureLog) {
	t.Helper()
	const runs = 18
	nonce := fmt.Sprintf("kill%d", time.Now().UnixNano()%1e6)
	dir := filepath.Join(g.lab.dir, "counting-kill")
	countingProject(t, dir, nonce, runs, "4")
	done := make(chan struct{})
	var sum campaignSummary
	var out string
	var runErr error
	var ended time.Time
	start := time.Now()
	go func() {
		defer close(done)
		out, runErr = g.simswarm(dir)
		ended = time.Now()
		_ = json.Unmarshal([]byte(jsonPart(out)), &sum)
	}()
	// Wait until the manager's runner holds runs.
	var victim string
	var held []int
	deadline := time.Now().Add(2 * time.Minute)
	for victim == "" && time.Now().Before(deadline) {
		if w, err := dash.workers(); err == nil {
			for _, h := range w.Hosts {
				for _, wk := range h.Workers {
					if wk.Role == "runner" && wk.Host == n1.host && wk.State == "online" && len(wk.CurrentRuns) > 0 {
						for _, r := range wk.CurrentRuns {
							held = append(held, r.Run)
						}
						victim = wk.ID
					}
				}
			}
		}
		if victim == "" {
			time.Sleep(300 * time.Millisecond)
		}
	}
	if victim == "" {
		<-done
		t.Fatalf("the manager's runner never held a run of the counting campaign:\n%s", out)
	}
	old := strings.TrimSpace(n1.must("ps", "-q", "--filter", "label=com.docker.swarm.service.name=simswarm_runner-manager"))
	if old == "" || strings.Contains(old, "\n") {
		t.Fatalf("want one runner-manager container, have %q", old)
	}
	n1.must("kill", old)
	killed := time.Now()
	t.Logf("killed runner %s (container %.12s) holding runs %v, %.1fs into the campaign", victim, old, held, killed.Sub(start).Seconds())
	// Swarm's replacement: a new task, running (that is, healthy).
	var replaced time.Duration
	for time.Since(killed) < 3*time.Minute {
		id := strings.TrimSpace(n1.must("ps", "-q", "--filter", "label=com.docker.swarm.service.name=simswarm_runner-manager", "--filter", "health=healthy"))
		if id != "" && id != old {
			replaced = time.Since(killed)
			break
		}
		time.Sleep(time.Second)
	}
	if replaced == 0 {
		t.Fatalf("Swarm did not replace the killed runner within 3 minutes:\n%s", n1.must("service", "ps", "--no-trunc", "simswarm_runner-manager"))
	}
	<-done
	finished := ended.Sub(killed)
	if runErr != nil || sum.Runs != runs || sum.Succeeded != runs || sum.Executed != runs {
		t.Fatalf("counting campaign with a killed runner: %v, summary %+v:\n%s", runErr, sum, tail(out, 3000))
	}
	starts, ends := readExecLog(t, []*dockerNode{n1}, nonce)
	for r := 0; r < runs; r++ {
		if ends[r] != 1 {
			t.Errorf("run %d ended %d times, want exactly once (starts %d)", r, ends[r], starts[r])
		}
	}
	for _, r := range held {
		// A runner reports a run as current from the moment it takes it for
		// a slot, while its tree is still being fetched, so a held run may
		// not have started on the killed runner: it must have started
		// somewhere and ended once.
		if starts[r] < 1 {
			t.Errorf("run %d, held by the killed runner, never started: want it run elsewhere", r)
		}
	}
	if n := countFiles(t, filepath.Join(dir, "results"), ".txt"); n != runs {
		t.Errorf("%d result files, want %d", n, runs)
	}
	figures.add("killed runner: until Swarm's replacement is healthy", replaced)
	figures.add(fmt.Sprintf("killed runner: until all %d runs finished", runs), finished)
	figures.add(fmt.Sprintf("counting campaign (%d runs of 4 s) with the kill, total", runs), time.Since(start))
}

// badRuntime: runners on an image without OMNeT++ (the runtime's base
// target) fail an OMNeT++ campaign, saying which library is missing.
func badRuntime(t *testing.T, g *guideRunner, n1 *dockerNode, omnet, legacy string, figures *figureLog) {
	t.Helper()
	step := time.Now()
	bare := g.registry + "/simswarm-runtime-base:" + legacy
	n1.must("service", "scale", "-d", "simswarm_runner-pool=0")
	n1.must("service", "update", "-d", "--no-resolve-image", "--image", bare, "simswarm_runner-manager")
	waitService(t, n1, "simswarm_runner-manager", bare, 3*time.Minute)
	out, err := g.simswarm(omnet, "./aloha", "-u", "Cmdenv", "-c", "PureAlohaExperiment", "-r", "0..1", "--sim-time-limit=20min")
	// The run list already needs the simulator: simswarm names the
	// library the runner's environment lacks (exit 2, nothing ran).
	if err == nil || !strings.Contains(out, "the runner's environment lacks the shared library libopp") {
		t.Errorf("OMNeT++ campaign on runners without OMNeT++: err %v, want a failure naming the missing libopp* library:\n%s", err, tail(out, 3000))
	} else {
		t.Logf("runner image without the simulator's libraries:\n%s", grepLines(out, "shared libraries"))
	}
	n1.must("service", "rollback", "-d", "simswarm_runner-manager")
	waitService(t, n1, "simswarm_runner-manager", g.registry+"/simswarm-runtime:"+g.tag, 3*time.Minute)
	figures.add("runner image without OMNeT++: update, failing campaign, rollback", time.Since(step))
}

// waitService waits until a service's running tasks all have the image
// and are running.
func waitService(t *testing.T, n *dockerNode, service, image string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		out, err := n.run("service", "ps", "--filter", "desired-state=running", "--format", "{{.Image}} {{.CurrentState}}", service)
		if err == nil {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			ok := len(lines) > 0 && lines[0] != ""
			for _, l := range lines {
				ok = ok && strings.HasPrefix(l, image+" Running")
			}
			if ok {
				return
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("%s does not run %s after %s:\n%s", service, image, limit, n.must("service", "ps", "--no-trunc", service))
}

// multiNode: two more engines join as workers. Runners and compile servers
// come to them (global services), the builder compiles on them, the
// engine stays on its label, and a campaign survives losing one of them.
func multiNode(t *testing.T, g *guideRunner, lab *swarmLab, omnet string, figures *figureLog) {
	t.Helper()
	n1 := lab.nodes[0]
	n2, n3 := lab.addNode("n2"), lab.addNode("n3")
	g.link(n2)
	g.link(n3)
	workers := n2.addr + " " + n3.addr
	step := time.Now()
	if out, err := g.runVars(map[string]string{"WORKERS": workers}, "load"); err != nil {
		t.Fatalf("the guide's load block: %v\n%s", err, tail(out, 4000))
	}
	figures.add("load the images into two more nodes (docker save | docker load)", time.Since(step))
	step = time.Now()
	for _, n := range []*dockerNode{n2, n3} {
		b := strings.Replace(g.blocks["join"], "NEW_NODE=192.168.1.13", "NEW_NODE="+n.addr, 1)
		if b == g.blocks["join"] {
			t.Fatalf("the guide's join block no longer sets NEW_NODE=192.168.1.13:\n%s", b)
		}
		script := "set -eo pipefail\n" + setVariables(t, g.blocks["variables"], g.vars) + "\n" + b
		if out, err := g.shell(script, nil); err != nil {
			t.Fatalf("the guide's join block for %s: %v\n%s", n.name, err, out)
		}
	}
	g.script("deploy/wait-stack.sh simswarm")
	figures.add("two nodes join until runner and distcc run healthy on them", time.Since(step))
	for _, svc := range []string{"simswarm_runner", "simswarm_distcc"} {
		nodes := strings.Fields(n1.must("service", "ps", "--filter", "desired-state=running", "--format", "{{.Node}}", svc))
		sort.Strings(nodes)
		want := []string{n2.host, n3.host}
		if svc == "simswarm_distcc" {
			want = []string{n1.host, n2.host, n3.host}
		}
		sort.Strings(want)
		if strings.Join(nodes, " ") != strings.Join(want, " ") {
			t.Errorf("%s runs on %v, want %v", svc, nodes, want)
		}
	}
	for _, svc := range []string{"simswarm_engine", "simswarm_builder"} {
		if got := strings.TrimSpace(n1.must("service", "ps", "--filter", "desired-state=running", "--format", "{{.Node}}", svc)); got != n1.host {
			t.Errorf("%s runs on %q, want the labelled %s", svc, got, n1.host)
		}
	}

	// A changed source (code, not a comment, which the preprocessor would
	// drop): ccache cannot answer, so the builder compiles, over distcc.
	src, _ := filepath.Glob(filepath.Join(omnet, "*.cc"))
	if len(src) == 0 {
		t.Fatalf("no .cc files in %s", omnet)
	}
	for i, f := range src {
		fh, err := os.OpenFile(f, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(fh, "\n[[maybe_unused]] static int swarmtest%d_%d = %d;\n", i, time.Now().UnixNano(), i)
		fh.Close()
	}
	since := strings.TrimSpace(n1.must("run", "--rm", "--network", "none", "--entrypoint", "date", g.registry+"/simswarm:"+g.tag, "-u", "+%Y-%m-%dT%H:%M:%SZ"))
	step = time.Now()
	sum := g.simswarmRun(t, omnet, "./aloha", "-u", "Cmdenv", "-c", "PureAlohaExperiment", "-r", "0..8", "--sim-time-limit=30min")
	figures.add("OMNeT++ rebuild over distcc + 9 runs on three nodes", time.Since(step))
	if sum.Build == nil || sum.Build.Cached || len(sum.Build.Warnings) > 0 {
		t.Errorf("the rebuild: %+v, want a build that compiled, without warnings", sum.Build)
	}
	// Which compile servers did the work: distccd logs every job.
	logs := n1.must("service", "logs", "--since", since, "simswarm_distcc")
	jobs := map[string]int{}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "COMPILE_OK") {
			// "simswarm_distcc.<node id>.<task>@<hostname>    | ..."
			if at := strings.Index(line, "@"); at >= 0 {
				host, _, _ := strings.Cut(line[at+1:], " ")
				jobs[host]++
			}
		}
	}
	t.Logf("compile jobs per distcc node in the rebuild: %v", jobs)
	if len(jobs) == 0 {
		t.Errorf("no distccd of the swarm logged a compile job (COMPILE_OK) of the rebuild:\n%s", tail(logs, 2000))
	}

	// A worker node dies in the middle of a campaign.
	const runs = 24
	nonce := fmt.Sprintf("lose%d", time.Now().UnixNano()%1e6)
	dir := filepath.Join(lab.dir, "counting-lose")
	countingProject(t, dir, nonce, runs, "4")
	done := make(chan struct{})
	var out string
	var runErr error
	start := time.Now()
	go func() {
		defer close(done)
		out, runErr = g.simswarm(dir)
	}()
	dash := &dashboard{t: t, url: "http://" + n1.addr + ":9181", tokenFile: filepath.Join(g.home, ".config/simswarm/dashboard.token")}
	for time.Since(start) < 2*time.Minute {
		w, err := dash.workers()
		busy := false
		if err == nil {
			for _, h := range w.Hosts {
				for _, wk := range h.Workers {
					busy = busy || (wk.Host == n3.host && len(wk.CurrentRuns) > 0)
				}
			}
		}
		if busy {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	n3.stop()
	lost := time.Now()
	t.Logf("node %s stopped %.1fs into the campaign", n3.name, lost.Sub(start).Seconds())
	<-done
	var sumLose campaignSummary
	_ = json.Unmarshal([]byte(jsonPart(out)), &sumLose)
	if runErr != nil || sumLose.Succeeded != runs {
		t.Fatalf("campaign losing a node: %v, %+v\n%s", runErr, sumLose, tail(out, 3000))
	}
	figures.add("node lost: until the campaign finished", time.Since(lost))
	t.Logf("runs per host with a node lost: %v", sumLose.Hosts)
	if n := countFiles(t, filepath.Join(dir, "results"), ".txt"); n != runs {
		t.Errorf("%d result files, want %d", n, runs)
	}
	if sumLose.Hosts[n3.host] == 0 {
		t.Logf("no run of the campaign finished on %s before it stopped", n3.name)
	}
	// From here on the guide's WORKERS are the nodes still there.
	g.vars["WORKERS"] = n2.addr
	g.must("drain")
}

// ---------------------------------------------------------------------

type figureLog struct {
	t     *testing.T
	lines []string
}

func (f *figureLog) add(what string, d time.Duration) {
	f.lines = append(f.lines, fmt.Sprintf("%-70s %7.1fs", what, d.Seconds()))
}

func (f *figureLog) print() {
	load, _ := os.ReadFile("/proc/loadavg")
	f.t.Logf("figures (load average %s):\n%s", strings.TrimSpace(string(load)), strings.Join(f.lines, "\n"))
}

func copyCheckout(t *testing.T, to string) string {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `tar -C .. --exclude=./.git --exclude='./examples/*/results' -cf - . | tar -C "$1" -xf -`, "sh", to)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("copy the checkout: %v\n%s", err, out)
	}
	return to
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func countFiles(t *testing.T, dir, ext string) int {
	t.Helper()
	n := 0
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && filepath.Ext(p) == ext {
			n++
		}
		return nil
	})
	return n
}

func grepLines(out, substr string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, substr) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
