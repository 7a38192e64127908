package deploy

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// simswarmBin is the simswarm the services run. It is built as the other
// packages' tests build it (sharing their build cache); the image builds it
// with CGO_ENABLED=0, which TestDockerfiles checks the sources allow.
var simswarmBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "simswarm-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	simswarmBin = filepath.Join(dir, "simswarm")
	build := exec.Command("go", "build", "-o", simswarmBin, "./cmd/simswarm")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/simswarm: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ---------------------------------------------------------------------
// The stack file, as docker stack deploy reads it.

type stackFile struct {
	Version  string
	Services map[string]service
	Networks map[string]network
	Volumes  map[string]any
	Secrets  map[string]struct {
		External bool
	}
}

type service struct {
	Image       string
	Command     []string
	Hostname    string
	Volumes     []any // short ("name:/path") or long ({type, source, target}) syntax
	Secrets     []secretRef
	Networks    []string
	Ports       []port
	Healthcheck *healthcheck
	Deploy      deploy
}

type secretRef struct {
	Source, Target, UID, GID string
	Mode                     *int
}

type port struct {
	Target, Published int
	Protocol, Mode    string
}

type healthcheck struct {
	Test              []string
	Interval, Timeout string
	StartPeriod       string `yaml:"start_period"`
	Retries           int
}

type deploy struct {
	Mode         string
	Replicas     *int
	EndpointMode string `yaml:"endpoint_mode"`
	Placement    struct{ Constraints []string }
	Resources    struct {
		Reservations struct{ CPUs string }
	}
	RestartPolicy *struct {
		Condition, Delay string
	} `yaml:"restart_policy"`
	UpdateConfig *struct {
		Parallelism    int
		Order          string
		FailureAction  string `yaml:"failure_action"`
		Delay, Monitor string
	} `yaml:"update_config"`
}

type network struct {
	Driver     string
	Attachable *bool
	IPAM       struct {
		Config []struct{ Subnet string }
	} `yaml:"ipam"`
}

// stackEnv is the environment the tests deploy the stack with.
var stackEnv = map[string]string{"SIMSWARM_TAG": "test"}

// interpolate expands ${VAR}, ${VAR:-default}, ${VAR-default},
// ${VAR:?message} and $$ as docker stack deploy does.
func interpolate(text string, env map[string]string) (string, error) {
	re := regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)
	var firstErr error
	out := re.ReplaceAllStringFunc(text, func(m string) string {
		if m == "$$" {
			return "$"
		}
		g := re.FindStringSubmatch(m)
		name, op, arg := g[1], g[2], g[3]
		if name == "" {
			name = g[4]
		}
		v, set := env[name]
		switch op {
		case ":-":
			if v == "" {
				return arg
			}
		case "-":
			if !set {
				return arg
			}
		case ":?", "?":
			if v == "" && (op == ":?" || !set) {
				if firstErr == nil {
					firstErr = fmt.Errorf("required variable %s is missing a value: %s", name, arg)
				}
			}
		}
		return v
	})
	return out, firstErr
}

func loadStack(t *testing.T) *stackFile {
	t.Helper()
	raw, err := os.ReadFile("stack.yml")
	if err != nil {
		t.Fatal(err)
	}
	text, err := interpolate(string(raw), stackEnv)
	if err != nil {
		t.Fatalf("stack.yml: %v", err)
	}
	var st stackFile
	if err := yaml.Unmarshal([]byte(text), &st); err != nil {
		t.Fatalf("stack.yml: %v", err)
	}
	if len(st.Services) == 0 {
		t.Fatal("stack.yml defines no services")
	}
	return &st
}

// ourImage tells whether an image is one of ours (built by a Dockerfile in
// this directory) and which.
func ourImage(image string) (name string, ok bool) {
	for _, n := range []string{"simswarm", "simswarm-runtime"} {
		if image == "127.0.0.1:5000/"+n+":"+stackEnv["SIMSWARM_TAG"] {
			return n, true
		}
	}
	return "", false
}

// flagValues returns the values of every --name in args (as "--name v" or
// "--name=v").
func flagValues(args []string, name string) []string {
	var vs []string
	for i, a := range args {
		if a == name && i+1 < len(args) {
			vs = append(vs, args[i+1])
		} else if strings.HasPrefix(a, name+"=") {
			vs = append(vs, strings.TrimPrefix(a, name+"="))
		}
	}
	return vs
}

func flagValue(args []string, name string) string {
	if vs := flagValues(args, name); len(vs) > 0 {
		return vs[len(vs)-1]
	}
	return ""
}

// simswarmArgs is the part of a command after "simswarm", or nil when the
// command is not simswarm's. A command may be a shell that sets up the
// environment and then runs `exec simswarm ...` (the dashboard reads its
// token so).
func simswarmArgs(cmd []string) []string {
	if sh, ok := shellScript(cmd); ok {
		_, rest, found := strings.Cut(sh, "exec simswarm ")
		if !found {
			return nil
		}
		return strings.Fields(rest)
	}
	if len(cmd) == 0 || !isSimswarm(cmd[0]) {
		return nil
	}
	return cmd[1:]
}

func isSimswarm(argv0 string) bool { return argv0 == "simswarm" || argv0 == "/usr/local/bin/simswarm" }

// shellScript returns the script of a `sh -c SCRIPT` command.
func shellScript(cmd []string) (string, bool) {
	if len(cmd) == 3 && (cmd[0] == "sh" || cmd[0] == "/bin/sh") && cmd[1] == "-c" {
		return cmd[2], true
	}
	return "", false
}

func hasConstraint(s service, c string) bool {
	norm := func(x string) string { return strings.Join(strings.Fields(x), "") }
	for _, x := range s.Deploy.Placement.Constraints {
		if norm(x) == norm(c) {
			return true
		}
	}
	return false
}

// volumeTargets maps a service's mount points to the volume or host path
// behind them.
func volumeTargets(t *testing.T, s service) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, v := range s.Volumes {
		switch v := v.(type) {
		case string:
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Errorf("volume %q has no target", v)
				continue
			}
			m[parts[1]] = parts[0]
		case map[string]any:
			target, _ := v["target"].(string)
			source, _ := v["source"].(string)
			m[target] = source
		default:
			t.Errorf("volume %v: unknown syntax", v)
		}
	}
	return m
}

// subcommands caches which simswarm subcommands the built binary has, and
// their flags.
var (
	subMu    sync.Mutex
	subFlags = map[string]map[string]bool{}
)

// flagsOf returns the flags `simswarm <sub> --help` lists, or nil when the
// binary has no such command.
func flagsOf(sub string) map[string]bool {
	subMu.Lock()
	defer subMu.Unlock()
	if f, ok := subFlags[sub]; ok {
		return f
	}
	out, err := exec.Command(simswarmBin, sub, "--help").CombinedOutput()
	var flags map[string]bool
	if err == nil {
		flags = map[string]bool{}
		for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)`).FindAllStringSubmatch(string(out), -1) {
			flags[m[1]] = true
		}
	}
	subFlags[sub] = flags
	return flags
}

// ---------------------------------------------------------------------
// The schema: docker stack config validates it without a daemon.

// TestStackConfig: `docker stack config` (the Docker CLI, offline: no
// Docker engine exists here) accepts the stack, interpolates the images,
// and refuses to deploy without SIMSWARM_TAG, naming it.
func TestStackConfig(t *testing.T) {
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker CLI not installed: the schema check needs `docker stack config` (Docker CLI 23 or later, no daemon needed)")
	}
	if out, err := exec.Command(docker, "stack", "config", "--help").CombinedOutput(); err != nil {
		t.Skipf("this docker CLI has no `docker stack config` (added in Docker 23; Debian bookworm's docker.io 20.10 lacks it): %v %s", err, bytes.TrimSpace(out))
	}
	env := func(extra ...string) []string {
		var e []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "SIMSWARM_") {
				e = append(e, kv)
			}
		}
		return append(e, extra...)
	}
	cmd := exec.Command(docker, "stack", "config", "-c", "stack.yml")
	cmd.Env = env("SIMSWARM_TAG=test")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("docker stack config -c deploy/stack.yml: %v\n%s", err, stderr.String())
	}
	var cfg struct {
		Services map[string]struct{ Image string }
	}
	if err := yaml.Unmarshal(stdout.Bytes(), &cfg); err != nil {
		t.Fatalf("docker stack config printed no YAML: %v\n%s", err, stdout.String())
	}
	st := loadStack(t)
	if len(cfg.Services) != len(st.Services) {
		t.Errorf("docker stack config shows %d services, the file has %d", len(cfg.Services), len(st.Services))
	}
	for name, s := range cfg.Services {
		if want := st.Services[name].Image; s.Image != want {
			t.Errorf("%s: docker interpolates the image to %q, the test to %q", name, s.Image, want)
		}
	}

	cmd = exec.Command(docker, "stack", "config", "-c", "stack.yml")
	cmd.Env = env()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "SIMSWARM_TAG") {
		t.Errorf("without SIMSWARM_TAG: err %v, want an error naming SIMSWARM_TAG:\n%s", err, out)
	}
}

// ---------------------------------------------------------------------
// What the schema cannot say.

// TestStackSemantics checks the deployment's promises: distcc global and on
// buildnet only, admitting that subnet alone; runners on every node with
// headroom on managers; engine, builder, dashboard and visualizer on a
// manager; the credentials secret everywhere it is needed; the published
// ports; restart policies and health checks; pinned images; data on
// volumes; commands and flags the binary knows.
func TestStackSemantics(t *testing.T) {
	st := loadStack(t)
	for _, name := range []string{"engine", "builder", "runner", "distcc", "dashboard", "visualizer"} {
		if _, ok := st.Services[name]; !ok {
			t.Fatalf("stack.yml has no service %q", name)
		}
	}
	names := make([]string, 0, len(st.Services))
	for name := range st.Services {
		names = append(names, name)
	}
	sort.Strings(names)

	// Networks.
	buildnet, ok := st.Networks["buildnet"]
	if !ok {
		t.Fatal("no network buildnet")
	}
	if buildnet.Driver != "overlay" || st.Networks["interlink"].Driver != "overlay" {
		t.Errorf("interlink and buildnet must be overlay networks (drivers %q, %q)", st.Networks["interlink"].Driver, buildnet.Driver)
	}
	if buildnet.Attachable == nil || *buildnet.Attachable {
		t.Error("buildnet must say attachable: false (no container outside the stack on the compile servers' network)")
	}
	if len(buildnet.IPAM.Config) != 1 {
		t.Fatalf("buildnet needs exactly one fixed subnet (ipam config), has %d", len(buildnet.IPAM.Config))
	}
	_, subnet, err := net.ParseCIDR(buildnet.IPAM.Config[0].Subnet)
	if err != nil {
		t.Fatalf("buildnet subnet: %v", err)
	}
	if subnet.String() != buildnet.IPAM.Config[0].Subnet {
		t.Errorf("buildnet subnet %s is not a network address (%s)", buildnet.IPAM.Config[0].Subnet, subnet)
	}
	if ones, _ := subnet.Mask.Size(); ones < 16 {
		t.Errorf("buildnet subnet %s is wider than a /16", subnet)
	}
	for _, name := range names {
		s := st.Services[name]
		onBuild, onInter := false, false
		for _, n := range s.Networks {
			if _, ok := st.Networks[n]; !ok {
				t.Errorf("%s: network %s is not declared", name, n)
			}
			onBuild = onBuild || n == "buildnet"
			onInter = onInter || n == "interlink"
		}
		switch name {
		case "distcc":
			if onInter || !onBuild || len(s.Networks) != 1 {
				t.Errorf("distcc must be on buildnet only, is on %v", s.Networks)
			}
		case "builder":
			if !onInter || !onBuild {
				t.Errorf("builder must be on interlink and buildnet, is on %v", s.Networks)
			}
		default:
			if !onInter || onBuild {
				t.Errorf("%s must be on interlink and not on buildnet, is on %v", name, s.Networks)
			}
		}
	}

	// distcc: global, unpublished, admitting buildnet only.
	distcc := st.Services["distcc"]
	if distcc.Deploy.Mode != "global" {
		t.Errorf("distcc must be mode: global (one compile server per node), is %q", distcc.Deploy.Mode)
	}
	if len(distcc.Ports) != 0 {
		t.Errorf("distcc publishes ports %v: it must be reachable from buildnet only", distcc.Ports)
	}
	dargs := simswarmArgs(distcc.Command)
	if len(dargs) == 0 || dargs[0] != "distccd" {
		t.Fatalf("distcc runs %v, want simswarm distccd", distcc.Command)
	}
	if allow := flagValues(dargs, "--allow"); len(allow) != 1 || allow[0] != subnet.String() {
		t.Errorf("distcc --allow %v, want exactly buildnet's subnet %s", allow, subnet)
	}
	for _, name := range names {
		for _, a := range flagValues(st.Services[name].Command, "--allow") {
			for _, part := range strings.Split(a, ",") {
				if _, n, err := net.ParseCIDR(part); err == nil {
					if ones, _ := n.Mask.Size(); ones == 0 {
						t.Errorf("%s: --allow %s admits every address", name, part)
					}
				}
			}
		}
	}

	// The builder finds the compile servers by the distcc service's name.
	builder := st.Services["builder"]
	if v := flagValue(simswarmArgs(builder.Command), "--distcc-dns"); v != "tasks.distcc" {
		t.Errorf("builder --distcc-dns %q, want tasks.distcc (Swarm's DNS name for every task of the distcc service)", v)
	}
	if r := builder.Deploy.Replicas; r == nil || *r != 1 {
		t.Errorf("builder must have exactly 1 replica (its workspaces are a local volume)")
	}

	// Runners: global, every core, headroom on managers, every node
	// covered; or replicated (scaled by hand), with as many slots as cores
	// reserved, and a host name per task.
	var runners []string
	workerCovered, managerCovered := false, false
	for _, name := range names {
		s := st.Services[name]
		args := simswarmArgs(s.Command)
		if len(args) == 0 || args[0] != "runner" {
			continue
		}
		if s.Deploy.Mode != "global" {
			slots := flagValue(args, "--slots")
			if slots == "" || s.Deploy.Resources.Reservations.CPUs != slots {
				t.Errorf("%s is replicated: it must give --slots (%q) and reserve as many CPUs (%q)", name, slots, s.Deploy.Resources.Reservations.CPUs)
			}
			if !strings.Contains(s.Hostname, "{{.Task.Slot}}") {
				t.Errorf("%s is replicated: its hostname %q must tell its tasks apart ({{.Task.Slot}})", name, s.Hostname)
			}
			continue
		}
		runners = append(runners, name)
		if flagValue(args, "--slots") != "" {
			t.Errorf("%s sets --slots: a runner uses every core of its node", name)
		}
		onManagers := !hasConstraint(s, "node.role == worker")
		onWorkers := !hasConstraint(s, "node.role == manager")
		managerCovered = managerCovered || onManagers
		workerCovered = workerCovered || onWorkers
		if onManagers {
			if r := flagValue(args, "--reserve"); r == "" || r == "0" {
				t.Errorf("%s runs on managers without --reserve: keep headroom for the engine and the builder", name)
			}
		}
	}
	if !workerCovered || !managerCovered {
		t.Errorf("runners %v leave out the workers (%v) or the managers (%v)", runners, workerCovered, managerCovered)
	}

	// Placement on a manager.
	for _, name := range []string{"engine", "builder", "dashboard", "visualizer"} {
		if !hasConstraint(st.Services[name], "node.role == manager") {
			t.Errorf("%s must be constrained to a manager (node.role == manager), has %v", name, st.Services[name].Deploy.Placement.Constraints)
		}
	}
	// The engine's data is a local volume: it must not wander between
	// managers, and the builder stays beside it.
	for _, name := range []string{"engine", "builder"} {
		if !hasConstraint(st.Services[name], "node.labels.simswarm.engine == true") {
			t.Errorf("%s must be pinned to the labelled manager (node.labels.simswarm.engine == true)", name)
		}
	}
	if r := st.Services["engine"].Deploy.Replicas; r == nil || *r != 1 {
		t.Error("engine must have exactly 1 replica")
	}

	// Credentials.
	if s, ok := st.Secrets["simswarm_creds"]; !ok || !s.External {
		t.Error("secret simswarm_creds must be declared external (created with docker secret create)")
	}
	for _, name := range names {
		s := st.Services[name]
		args := simswarmArgs(s.Command)
		needs := len(args) > 0 && (args[0] == "server" || args[0] == "builder" || args[0] == "runner" || args[0] == "dashboard")
		var target string
		for _, ref := range s.Secrets {
			if ref.Source == "simswarm_creds" {
				target = ref.Target
				if target == "" {
					target = ref.Source
				}
				if ref.Mode != nil && *ref.Mode&0o077 != 0 {
					t.Errorf("%s: secret mode %o lets others read the credentials", name, *ref.Mode)
				}
				if ref.UID != "" && ref.UID != "10001" {
					t.Errorf("%s: secret owned by uid %s, the images' user is 10001", name, ref.UID)
				}
			}
		}
		if needs {
			if target == "" {
				t.Errorf("%s does not mount the secret simswarm_creds", name)
			} else if got := flagValue(args, "--creds"); got != "/run/secrets/"+target {
				t.Errorf("%s: --creds %q, want /run/secrets/%s", name, got, target)
			}
		}
	}
	// Every secret a command reads is one the service mounts, and declared.
	for _, name := range names {
		s := st.Services[name]
		text := strings.Join(s.Command, " ")
		if s.Healthcheck != nil {
			text += " " + strings.Join(s.Healthcheck.Test, " ")
		}
		for _, m := range regexp.MustCompile(`/run/secrets/([A-Za-z0-9_.-]+)`).FindAllStringSubmatch(text, -1) {
			mounted := false
			for _, ref := range s.Secrets {
				target := ref.Target
				if target == "" {
					target = ref.Source
				}
				if _, declared := st.Secrets[ref.Source]; !declared {
					t.Errorf("%s: secret %s is not declared", name, ref.Source)
				}
				mounted = mounted || target == m[1]
			}
			if !mounted {
				t.Errorf("%s reads /run/secrets/%s but does not mount that secret", name, m[1])
			}
		}
		// A token on the command line shows in docker service inspect.
		if v := flagValue(simswarmArgs(s.Command), "--token"); v != "" {
			t.Errorf("%s passes --token on its command line: visible to anyone who may inspect the service", name)
		}
	}
	for _, name := range []string{"engine", "builder", "runner", "dashboard"} {
		found := false
		for _, ref := range st.Services[name].Secrets {
			found = found || ref.Source == "simswarm_creds"
		}
		if !found {
			t.Errorf("%s does not use the secret simswarm_creds", name)
		}
	}

	// No virtual IP anywhere: Swarm's VIPs and its routing mesh need IPVS,
	// which some kernels lack (connections then fail with "No route to
	// host"). Names resolve to the tasks' own addresses; ports are
	// published on the node of the task.
	for _, name := range names {
		s := st.Services[name]
		if s.Deploy.EndpointMode != "dnsrr" {
			t.Errorf("%s: endpoint_mode %q, want dnsrr (no IPVS needed)", name, s.Deploy.EndpointMode)
		}
		for _, p := range s.Ports {
			if p.Mode != "host" {
				t.Errorf("%s publishes %d in mode %q: only host mode works with dnsrr and without IPVS", name, p.Published, p.Mode)
			}
		}
	}
	// The visualizer can be switched off where its image cannot be had.
	for _, v := range []string{"0", "1"} {
		raw, err := os.ReadFile("stack.yml")
		if err != nil {
			t.Fatal(err)
		}
		text, err := interpolate(string(raw), map[string]string{"SIMSWARM_TAG": "test", "SIMSWARM_VISUALIZER_REPLICAS": v})
		if err != nil {
			t.Fatal(err)
		}
		var alt stackFile
		if err := yaml.Unmarshal([]byte(text), &alt); err != nil {
			t.Fatal(err)
		}
		if r := alt.Services["visualizer"].Deploy.Replicas; r == nil || strconv.Itoa(*r) != v {
			t.Errorf("SIMSWARM_VISUALIZER_REPLICAS=%s: visualizer replicas %v", v, r)
		}
	}

	// Published ports.
	published := map[int]string{}
	for _, name := range names {
		for _, p := range st.Services[name].Ports {
			if other, dup := published[p.Published]; dup {
				t.Errorf("port %d published by %s and %s", p.Published, other, name)
			}
			published[p.Published] = name
		}
	}
	for port, want := range map[int]string{9181: "dashboard", 8080: "visualizer", 4222: "engine"} {
		if published[port] != want {
			t.Errorf("port %d: published by %q, want %s", port, published[port], want)
		}
	}
	if got := flagValue(simswarmArgs(st.Services["dashboard"].Command), "--listen"); !strings.HasSuffix(got, ":9181") {
		t.Errorf("dashboard --listen %q, want port 9181", got)
	}
	// Workers reach the engine by its service name and port.
	_, enginePort, _ := net.SplitHostPort(flagValue(simswarmArgs(st.Services["engine"].Command), "--listen"))
	for _, name := range names {
		args := simswarmArgs(st.Services[name].Command)
		if url := flagValue(args, "--server"); url != "" && url != "nats://engine:"+enginePort {
			t.Errorf("%s: --server %s, want nats://engine:%s", name, url, enginePort)
		}
	}

	// Restart policies, updates, health checks.
	for _, name := range names {
		s := st.Services[name]
		if s.Deploy.RestartPolicy == nil || s.Deploy.RestartPolicy.Condition == "" {
			t.Errorf("%s has no restart policy", name)
		}
		if s.Deploy.UpdateConfig == nil {
			t.Errorf("%s has no update_config", name)
		} else if len(s.Ports) > 0 && s.Deploy.UpdateConfig.Order == "start-first" {
			t.Errorf("%s publishes a host-mode port: start-first updates would collide on it", name)
		}
		if name == "visualizer" {
			continue // its image brings its own HEALTHCHECK
		}
		if s.Healthcheck == nil || len(s.Healthcheck.Test) < 2 {
			t.Errorf("%s has no health check", name)
		}
	}
	if got := st.Services["visualizer"].Image; !strings.HasPrefix(got, "dockersamples/visualizer") {
		t.Errorf("visualizer image %q, want the public dockersamples/visualizer", got)
	}
	if m := volumeTargets(t, st.Services["visualizer"]); m["/var/run/docker.sock"] != "/var/run/docker.sock" {
		t.Error("visualizer must mount /var/run/docker.sock")
	}
	for _, v := range st.Services["visualizer"].Volumes {
		if m, ok := v.(map[string]any); ok && m["target"] == "/var/run/docker.sock" && m["read_only"] != true {
			t.Error("visualizer must mount the Docker socket read-only")
		}
	}

	// Images: ours, or pinned.
	for _, name := range names {
		img := st.Services[name].Image
		if _, ok := ourImage(img); ok {
			continue
		}
		if err := pinned(img); err != nil {
			t.Errorf("%s: image %s: %v", name, img, err)
		}
	}
	// The images of ours are exactly those the Dockerfiles build.
	for _, name := range names {
		if n, ok := ourImage(st.Services[name].Image); ok {
			df := map[string]string{"simswarm": "simswarm.Dockerfile", "simswarm-runtime": "runtime.Dockerfile"}[n]
			if _, err := os.Stat(df); err != nil {
				t.Errorf("%s: image %s has no Dockerfile here: %v", name, n, err)
			}
		}
	}

	// Volumes: declared, and holding every directory a service writes.
	for _, name := range names {
		s := st.Services[name]
		mounts := volumeTargets(t, s)
		for _, source := range mounts {
			if !strings.HasPrefix(source, "/") {
				if _, ok := st.Volumes[source]; !ok {
					t.Errorf("%s: volume %s is not declared", name, source)
				}
			}
		}
		args := simswarmArgs(s.Command)
		for _, f := range []string{"--state", "--dir", "--ccache-dir", "--cache"} {
			dir := flagValue(args, f)
			if dir == "" {
				continue
			}
			if _, ok := mounts[dir]; !ok {
				t.Errorf("%s: %s %s is not on a volume: it would be lost with the container", name, f, dir)
			}
		}
	}

	// Commands and flags the binary knows.
	for _, name := range names {
		s := st.Services[name]
		cmds := [][]string{s.Command}
		if s.Healthcheck != nil && len(s.Healthcheck.Test) > 1 && s.Healthcheck.Test[0] == "CMD" {
			cmds = append(cmds, s.Healthcheck.Test[1:])
		}
		for _, c := range cmds {
			args := simswarmArgs(c)
			if name != "visualizer" && len(c) > 0 && args == nil {
				t.Errorf("%s runs %v: every service of ours runs simswarm's own command line", name, c)
			}
			if len(args) == 0 {
				continue
			}
			flags := flagsOf(args[0])
			if flags == nil {
				if args[0] == "dashboard" {
					t.Logf("this simswarm has no dashboard command yet: its flags are not checked")
					continue
				}
				t.Errorf("%s: simswarm has no command %q", name, args[0])
				continue
			}
			for _, a := range args[1:] {
				if strings.HasPrefix(a, "--") {
					f, _, _ := strings.Cut(a, "=")
					if !flags[f] {
						t.Errorf("%s: simswarm %s has no flag %s", name, args[0], f)
					}
				}
			}
		}
	}
}

// pinned accepts an image reference with a digest, or with a tag that is
// not "latest" and names a version (has a digit, or is the visualizer's
// only published tag, "stable").
func pinned(ref string) error {
	if strings.Contains(ref, "$") {
		return fmt.Errorf("not interpolated")
	}
	if strings.Contains(ref, "@sha256:") {
		return nil
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	_, tag, ok := strings.Cut(last, ":")
	switch {
	case !ok || tag == "":
		return fmt.Errorf("no tag (that is :latest)")
	case tag == "latest":
		return fmt.Errorf(":latest is not pinned")
	case strings.HasPrefix(ref, "dockersamples/visualizer:") && tag == "stable":
		return nil
	case !strings.ContainsAny(tag, "0123456789"):
		return fmt.Errorf("tag %q names no version", tag)
	}
	return nil
}

// ---------------------------------------------------------------------
// Dockerfiles.

type instruction struct {
	line int
	cmd  string // upper case
	args string
}

type stage struct {
	name   string
	from   string // the image or stage it starts from, ARGs resolved
	user   string // the last USER in this stage ("" if none)
	instrs []instruction
}

type dockerfile struct {
	path       string
	globalArgs map[string]*string // ARGs before the first FROM (nil: no default)
	stages     []*stage
}

func parseDockerfile(t *testing.T, path string) *dockerfile {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	df := &dockerfile{path: path, globalArgs: map[string]*string{}}
	var cur *stage
	lines := strings.Split(string(raw), "\n")
	for i := 0; i < len(lines); i++ {
		start := i + 1
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
			i++
			next := strings.TrimSpace(lines[i])
			if strings.HasPrefix(next, "#") {
				next = ""
			}
			line = strings.TrimSuffix(line, "\\") + " " + next
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		switch in.cmd {
		case "FROM":
			f := strings.Fields(in.args)
			var image, name string
			for _, w := range f {
				if strings.HasPrefix(w, "--") {
					continue
				}
				if image == "" {
					image = w
				} else if strings.EqualFold(w, "AS") {
					continue
				} else {
					name = w
				}
			}
			cur = &stage{name: name, from: image}
			df.stages = append(df.stages, cur)
		case "ARG":
			if cur == nil {
				k, v, hasDefault := strings.Cut(in.args, "=")
				if hasDefault {
					v = strings.Trim(v, `"`)
					df.globalArgs[k] = &v
				} else {
					df.globalArgs[k] = nil
				}
				continue
			}
		case "USER":
			if cur != nil {
				cur.user = in.args
			}
		}
		if cur == nil && in.cmd != "ARG" {
			t.Errorf("%s:%d: %s before the first FROM", path, start, in.cmd)
			continue
		}
		if cur != nil {
			cur.instrs = append(cur.instrs, in)
		}
	}
	return df
}

func (df *dockerfile) stage(name string) *stage {
	for _, s := range df.stages {
		if s.name != "" && s.name == name {
			return s
		}
	}
	return nil
}

// effectiveUser is the USER a stage runs with, following its FROM chain
// through earlier stages.
func (df *dockerfile) effectiveUser(s *stage) string {
	for s != nil {
		if s.user != "" {
			return s.user
		}
		s = df.stage(s.from)
	}
	return ""
}

func dockerfiles(t *testing.T) []string {
	t.Helper()
	var files []string
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasSuffix(n, ".dockerignore") {
			continue
		}
		if strings.HasSuffix(n, ".Dockerfile") || strings.HasPrefix(n, "Dockerfile") {
			files = append(files, n)
		}
	}
	if len(files) < 2 {
		t.Fatalf("want simswarm.Dockerfile and runtime.Dockerfile here, found %v", files)
	}
	return files
}

var secretName = regexp.MustCompile(`(?i)(password|passwd|secret|token|creds|credential|api_?key|private_?key)`)

// TestDockerfiles checks the invariants of every Dockerfile here (no
// Docker engine exists to build them): pinned base images, a non-root USER
// in every stage an image is made of, no secrets baked in, a context that
// lets nothing but what the build needs in, RUN commands that parse.
func TestDockerfiles(t *testing.T) {
	for _, path := range dockerfiles(t) {
		t.Run(path, func(t *testing.T) {
			df := parseDockerfile(t, path)
			if len(df.stages) == 0 {
				t.Fatal("no FROM")
			}
			// Base images: earlier stages, or pinned images. A FROM of a
			// build ARG without default is our simswarm image, which the
			// guide passes by its full tag.
			used := map[string]bool{}
			for _, s := range df.stages {
				from := s.from
				if m := regexp.MustCompile(`^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$`).FindStringSubmatch(from); m != nil {
					v, declared := df.globalArgs[m[1]]
					switch {
					case !declared:
						t.Errorf("FROM %s: ARG %s is not declared before the first FROM", from, m[1])
						continue
					case v == nil && (m[1] == "SIMSWARM_IMAGE" || m[1] == "RUNTIME_IMAGE"):
						continue // ours, passed by full tag
					case v == nil:
						t.Errorf("FROM %s: ARG %s has no default, so no pinned image", from, m[1])
						continue
					}
					from = *v
				}
				if df.stage(from) != nil {
					used[from] = true
					continue
				}
				if err := pinned(from); err != nil {
					t.Errorf("FROM %s: %v", s.from, err)
				}
			}
			for _, s := range df.stages {
				for _, in := range s.instrs {
					if in.cmd == "COPY" || in.cmd == "ADD" {
						if m := regexp.MustCompile(`--from=(\S+)`).FindStringSubmatch(in.args); m != nil {
							used[m[1]] = true
						}
					}
				}
			}
			// Every stage an image is made of (not only a step towards
			// another stage, or the last one) runs as a non-root user.
			for i, s := range df.stages {
				final := i == len(df.stages)-1 || s.name == "" || !used[s.name]
				if !final || s.from == "${SIMSWARM_IMAGE}" {
					continue
				}
				u := df.effectiveUser(s)
				uid, _, _ := strings.Cut(u, ":")
				if uid == "" || uid == "root" || uid == "0" {
					t.Errorf("stage %q runs as %q: the services must not run as root", s.name, u)
				}
			}
			// No secrets.
			for _, s := range df.stages {
				for _, in := range s.instrs {
					where := fmt.Sprintf("%s:%d", path, in.line)
					switch in.cmd {
					case "ENV", "ARG", "LABEL":
						for _, kv := range strings.Fields(in.args) {
							k, _, _ := strings.Cut(kv, "=")
							if secretName.MatchString(k) {
								t.Errorf("%s: %s %s: secrets must not be baked into an image (build args and ENV stay in its history)", where, in.cmd, k)
							}
						}
					case "COPY", "ADD":
						for _, w := range strings.Fields(in.args) {
							if !strings.HasPrefix(w, "--") && (strings.HasSuffix(w, ".creds") || secretName.MatchString(filepath.Base(w)) ||
								strings.HasSuffix(w, ".pem") || strings.HasSuffix(w, ".key")) {
								t.Errorf("%s: %s %s copies a secret into the image", where, in.cmd, w)
							}
						}
					case "RUN":
						if strings.Contains(in.args, "password") || strings.Contains(in.args, ".creds") {
							t.Errorf("%s: RUN mentions credentials", where)
						}
					}
				}
			}
			// RUN commands parse as the shell that runs them.
			for _, s := range df.stages {
				for _, in := range s.instrs {
					if in.cmd != "RUN" || strings.HasPrefix(in.args, "[") {
						continue
					}
					script := regexp.MustCompile(`^(--\S+\s+)*`).ReplaceAllString(in.args, "")
					if out, err := exec.Command("bash", "-n", "-c", script).CombinedOutput(); err != nil {
						t.Errorf("%s:%d: RUN does not parse: %v %s", path, in.line, err, out)
					}
				}
			}
			// The context: everything excluded but what the build needs.
			ignore, err := os.ReadFile(path + ".dockerignore")
			if err != nil {
				t.Errorf("no %s.dockerignore: the build context would carry the whole checkout (client credentials, results)", path)
			} else {
				var first string
				for _, l := range strings.Split(string(ignore), "\n") {
					if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
						first = l
						break
					}
				}
				if first != "*" {
					t.Errorf("%s.dockerignore must start by excluding everything (*), starts with %q", path, first)
				}
			}
		})
	}

	// Offline and with either builder: no `# syntax=` line (BuildKit would
	// pull that frontend image), no RUN --mount (the legacy builder has
	// none), and every external base image behind a build ARG, so that a
	// site without Docker Hub names its own.
	for _, path := range dockerfiles(t) {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`(?mi)^#\s*syntax\s*=`).Match(raw) {
			t.Errorf("%s has a # syntax= directive: BuildKit would pull the frontend image", path)
		}
		df := parseDockerfile(t, path)
		for _, st := range df.stages {
			for _, in := range st.instrs {
				if in.cmd == "RUN" && strings.Contains(in.args, "--mount") {
					t.Errorf("%s:%d: RUN --mount: the legacy builder cannot build it", path, in.line)
				}
			}
			if df.stage(st.from) == nil && !strings.HasPrefix(st.from, "$") {
				t.Errorf("%s: FROM %s: name the base image by a build ARG", path, st.from)
			}
		}
	}

	t.Run("simswarm image", func(t *testing.T) {
		df := parseDockerfile(t, "simswarm.Dockerfile")
		build := df.stages[0]
		text := ""
		for _, in := range build.instrs {
			text += in.cmd + " " + in.args + "\n"
		}
		if !strings.Contains(text, "CGO_ENABLED=0") || !strings.Contains(text, "./cmd/simswarm") {
			t.Errorf("the build stage must build ./cmd/simswarm with CGO_ENABLED=0:\n%s", text)
		}
		// Every package of the program builds without cgo (go list only
		// resolves the packages: compiling them in that configuration would
		// cost minutes of a cold build cache).
		list := exec.Command("go", "list", "-e", "-deps", "-f", "{{if .Error}}{{.ImportPath}}: {{.Error}}{{end}}", "./cmd/simswarm")
		list.Dir = ".."
		list.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := list.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("with CGO_ENABLED=0, ./cmd/simswarm does not build: %v\n%s", err, out)
		}
		last := df.stages[len(df.stages)-1]
		copied := false
		for _, in := range last.instrs {
			copied = copied || (in.cmd == "COPY" && strings.Contains(in.args, "--from="+build.name) && strings.Contains(in.args, "/usr/local/bin/simswarm"))
		}
		if !copied {
			t.Error("the final stage must copy the binary from the build stage to /usr/local/bin/simswarm")
		}
	})

	t.Run("runtime image", func(t *testing.T) {
		df := parseDockerfile(t, "runtime.Dockerfile")
		base := df.stage("base")
		if base == nil {
			t.Fatal("runtime.Dockerfile has no stage base")
		}
		// One toolchain: the simulator targets are built on the same base.
		for _, target := range []string{"omnetpp", "omnetpp-build"} {
			s := df.stage(target)
			if s == nil {
				t.Errorf("no stage %s", target)
				continue
			}
			for s != nil && s.name != "base" {
				s = df.stage(s.from)
			}
			if s == nil {
				t.Errorf("stage %s does not derive from base: another toolchain", target)
			}
		}
		if last := df.stages[len(df.stages)-1]; last.name != "omnetpp" {
			t.Errorf("the default target (last stage) is %q, want omnetpp", last.name)
		}
		var baseRun, all string
		for _, s := range df.stages {
			for _, in := range s.instrs {
				all += in.cmd + " " + in.args + "\n"
				if s == base && in.cmd == "RUN" {
					baseRun += in.args + "\n"
				}
			}
		}
		for _, pkg := range []string{"distcc", "ccache", "make", "g++", "tini"} {
			if !regexp.MustCompile(`\s` + regexp.QuoteMeta(pkg) + `(\s|$)`).MatchString(baseRun) {
				t.Errorf("base does not install %s", pkg)
			}
		}
		for _, want := range []string{"WITH_QTENV=no", "WITH_OSG=no", "WITH_OSGEARTH=no", "omnetpp-${OMNETPP_VERSION}", "sha1sum -c",
			"COPY --from=simswarm /usr/local/bin/simswarm", "COPY . /tmp/context/", "bin/opp_run"} {
			if !strings.Contains(all, want) {
				t.Errorf("runtime.Dockerfile lacks %q", want)
			}
		}
		if v := df.globalArgs["OMNETPP_VERSION"]; v == nil || *v == "" {
			t.Error("OMNETPP_VERSION must be a build ARG with a default release")
		}
		// ns-3 builds on the base target, so on the same compiler.
		ns3 := parseDockerfile(t, "runtime-ns3.Dockerfile")
		if len(ns3.stages) != 1 || ns3.stages[0].from != "${RUNTIME_IMAGE}" {
			t.Errorf("runtime-ns3.Dockerfile must be one stage FROM ${RUNTIME_IMAGE} (runtime.Dockerfile's base target)")
		}
		var ns3Run string
		for _, in := range ns3.stages[0].instrs {
			ns3Run += in.cmd + " " + in.args + "\n"
		}
		if !strings.Contains(ns3Run, "libns3-dev") || !strings.Contains(ns3Run, "SIMSWARM_TOOLCHAIN=") {
			t.Errorf("runtime-ns3.Dockerfile must install libns3-dev and name its toolchain:\n%s", ns3Run)
		}
	})

	t.Run("hadolint", func(t *testing.T) {
		hadolint, err := exec.LookPath("hadolint")
		if err != nil {
			t.Skip("hadolint not installed (Debian and the npm registry have no package of it); the invariants above stand in for it")
		}
		// DL3008 asks for apt package versions: the pinned Debian point
		// release pins them instead.
		for _, path := range dockerfiles(t) {
			if out, err := exec.Command(hadolint, "--ignore", "DL3008", path).CombinedOutput(); err != nil {
				t.Errorf("hadolint %s: %v\n%s", path, err, out)
			}
		}
	})
}

// ---------------------------------------------------------------------
// The guide.

// TestGuide checks that every command of docs/deploy-swarm.md can be
// pasted: shell blocks parse, every variable is set in the guide, no
// <placeholder> is left, and the names it uses (images, Dockerfiles,
// secret, label, volumes, stack) are the stack's and the Dockerfiles'.
func TestGuide(t *testing.T) {
	raw, err := os.ReadFile("../docs/deploy-swarm.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	blocks := regexp.MustCompile("(?s)```(?:sh|bash|shell)\n(.*?)```").FindAllStringSubmatch(doc, -1)
	if len(blocks) < 10 {
		t.Fatalf("the guide has %d shell blocks; want its steps as commands", len(blocks))
	}
	var all strings.Builder
	for _, b := range blocks {
		all.WriteString(b[1])
		all.WriteString("\n")
	}
	script := all.String()

	if out, err := exec.Command("bash", "-n", "-c", script).CombinedOutput(); err != nil {
		t.Errorf("the guide's commands do not parse: %v\n%s", err, out)
	}
	if m := regexp.MustCompile(`<[A-Za-z][A-Za-z _-]*>`).FindString(script); m != "" {
		t.Errorf("placeholder %s in a command", m)
	}
	// Every variable a command uses is set by the guide (or is the shell's);
	// quoted here-documents (files the guide writes) expand nothing.
	script = regexp.MustCompile(`(?s)<<'(\w+)'\n.*?\n(\w+)\n`).ReplaceAllStringFunc(script, func(h string) string {
		return h[:strings.Index(h, "\n")+1]
	})
	assigned := map[string]bool{"HOME": true, "PATH": true, "USER": true, "PWD": true}
	for _, m := range regexp.MustCompile(`(?m)(?:^|[\s;(]|export\s+|for\s+)([A-Za-z_][A-Za-z0-9_]*)(?:=|\s+in\s)`).FindAllStringSubmatch(script, -1) {
		assigned[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(script, -1) {
		if !assigned[m[1]] {
			t.Errorf("the guide uses $%s but never sets it", m[1])
			assigned[m[1]] = true // once
		}
	}
	st := loadStack(t)
	wants := []string{
		"docker swarm init", "docker swarm join", "docker service create --name registry",
		`SIMSWARM_REGISTRY="$REGISTRY" SIMSWARM_TAG="$TAG" deploy/build-images.sh`,
		`-f deploy/runtime.Dockerfile`, `-t "$REGISTRY/simswarm-runtime:$TAG"`,
		`--build-arg SIMSWARM_IMAGE="$REGISTRY/simswarm:$TAG"`,
		`SIMSWARM_IMAGES=ns3`, `docker push "$REGISTRY/simswarm:$TAG"`, `docker push "$REGISTRY/simswarm-runtime:$TAG"`,
		"debootstrap --variant=minbase", "docker import", "SIMSWARM_BASE_IMAGE=", `docker save "$REGISTRY/simswarm:$TAG" "$REGISTRY/simswarm-runtime:$TAG"`,
		"docker secret create simswarm_creds", "simswarm.engine=true",
		"deploy/preflight.sh", `docker stack deploy --resolve-image "$RESOLVE_IMAGE" -c deploy/stack.yml simswarm`, "deploy/wait-stack.sh",
		"docker service scale simswarm_runner-pool=",
		"--availability drain", "--availability active",
		`-L "4222:$MANAGER_ADDR:4222"`, `-L "9181:$MANAGER_ADDR:9181"`, `-L "8080:$MANAGER_ADDR:8080"`,
		"simswarm run --server nats://localhost:4222",
		"docker service update --image", "docker stack rm simswarm",
	}
	for _, w := range wants {
		if !strings.Contains(script, w) {
			t.Errorf("the guide's commands lack %q", w)
		}
	}
	for secret := range st.Secrets {
		if !strings.Contains(script, "docker secret create "+secret+" ") || !strings.Contains(script, "docker secret rm") || !regexp.MustCompile(`docker secret rm [^\n]*`+regexp.QuoteMeta(secret)).MatchString(script) {
			t.Errorf("the guide does not create and remove the secret %s", secret)
		}
	}
	for vol := range st.Volumes {
		if !strings.Contains(script, "simswarm_"+vol) {
			t.Errorf("the guide's teardown does not name the volume simswarm_%s", vol)
		}
	}
	// The label the guide sets is the one the stack's constraints need.
	for _, c := range st.Services["engine"].Deploy.Placement.Constraints {
		if strings.HasPrefix(c, "node.labels.") {
			label := strings.TrimPrefix(strings.Fields(c)[0], "node.labels.")
			if !strings.Contains(script, "--label-add "+label+"=true") {
				t.Errorf("the guide never adds the label %s the engine needs", label)
			}
		}
	}
	// Runtime target names the guide builds exist.
	df := parseDockerfile(t, "runtime.Dockerfile")
	for _, m := range regexp.MustCompile(`--target (\S+)`).FindAllStringSubmatch(script, -1) {
		if df.stage(m[1]) == nil {
			t.Errorf("the guide builds --target %s, which runtime.Dockerfile lacks", m[1])
		}
	}
}
