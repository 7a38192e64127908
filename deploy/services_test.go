package deploy

// The stack's services, run for real without Docker: no Docker engine
// exists on the machines that run these tests, so each service's exact
// command from stack.yml runs as a process in a network namespace named
// after the service, all of them on one bridge whose subnet is buildnet's
// (so distccd's --allow is exercised as deployed). Swarm's DNS is stood in
// for by hosts files (ip netns exec mounts /etc/netns/<ns>/hosts over
// /etc/hosts): `engine` and `tasks.distcc` answer as they would in the
// stack. Container paths (volumes, the secret) are mapped to temporary
// directories by string replacement. The visualizer (a foreign image that
// needs the Docker API) is not run.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/testkit"
	"github.com/simswarm/simswarm/internal/testkit/netlab"
)

// cleanEnv keeps simswarm's variables of the test's environment out of the
// services.
func cleanEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SIMSWARM_") && !strings.HasPrefix(e, "DISTCC_") && !strings.HasPrefix(e, "CCACHE_") {
			env = append(env, e)
		}
	}
	return env
}

// pathMap maps a service's container paths (volume mount points, secrets)
// to places on this machine.
type pathMap struct {
	from, to []string
}

func (m *pathMap) add(from, to string) {
	m.from = append(m.from, from)
	m.to = append(m.to, to)
}

// apply rewrites args: "simswarm" becomes the built binary, mapped paths
// (as a whole argument, a prefix of one, or after "=") become their
// replacements. It reports arguments still naming an absolute path.
func (m *pathMap) apply(argv []string) (out []string, unmapped []string) {
	// Longest container paths first.
	idx := make([]int, len(m.from))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return len(m.from[idx[a]]) > len(m.from[idx[b]]) })
	if script, ok := shellScript(argv); ok {
		for _, j := range idx {
			script = strings.ReplaceAll(script, m.from[j], m.to[j])
		}
		script = strings.ReplaceAll(script, "exec simswarm ", "exec "+simswarmBin+" ")
		for _, p := range regexp.MustCompile(`(?:^|[\s"=(])(/[^\s"')]*)`).FindAllStringSubmatch(script, -1) {
			if !strings.HasPrefix(p[1], os.TempDir()) && p[1] != simswarmBin {
				unmapped = append(unmapped, p[1])
			}
		}
		return []string{"/bin/sh", "-c", script}, unmapped
	}
	for i, a := range argv {
		if i == 0 && isSimswarm(a) {
			out = append(out, simswarmBin)
			continue
		}
		mapped := false
		for _, j := range idx {
			from, to := m.from[j], m.to[j]
			prefix, val := "", a
			if strings.HasPrefix(a, "--") {
				if k, v, ok := strings.Cut(a, "="); ok {
					prefix, val = k+"=", v
				}
			}
			if val == from || strings.HasPrefix(val, from+"/") {
				a = prefix + to + strings.TrimPrefix(val, from)
				mapped = true
				break
			}
		}
		if !mapped {
			v := a
			if strings.HasPrefix(a, "--") {
				_, v, _ = strings.Cut(a, "=")
			}
			if strings.HasPrefix(v, "/") {
				unmapped = append(unmapped, a)
			}
		}
		out = append(out, a)
	}
	return out, unmapped
}

// TestStackServicesInNamespaces runs the stack's engine, distcc, builder,
// runners and dashboard (when this simswarm has one) with their exact
// commands, waits for each health check to pass in the service's
// namespace (and checks that each fails where nothing runs), then runs a
// campaign from the root namespace whose build is distributed to distccd
// through tasks.distcc.
func TestStackServicesInNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root (CI runs as root); without a Docker engine, namespaces are the closest to a Swarm run this machine allows")
	}
	for _, tool := range []string{"ip", "distccd", "distcc", "ccache", "make", "gcc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (.ci/run installs iproute2, distcc, ccache, make and gcc)", tool)
		}
	}
	st := loadStack(t)
	_, subnet, err := net.ParseCIDR(st.Networks["buildnet"].IPAM.Config[0].Subnet)
	if err != nil {
		t.Fatal(err)
	}

	// The services of ours, in the order Swarm would make them healthy.
	rank := map[string]int{"server": 0, "distccd": 1, "builder": 2, "runner": 3, "dashboard": 4}
	var names []string
	for name, s := range st.Services {
		if _, ours := ourImage(s.Image); !ours {
			t.Logf("%s: image %s is not ours and needs a Docker engine: not run", name, s.Image)
			continue
		}
		args := simswarmArgs(s.Command)
		if len(args) == 0 {
			t.Fatalf("%s: command %v is not simswarm's", name, s.Command)
		}
		if _, known := rank[args[0]]; !known {
			t.Fatalf("%s: simswarm %s: the test does not know this kind of service", name, args[0])
		}
		if args[0] == "dashboard" && flagsOf("dashboard") == nil {
			t.Logf("%s: this simswarm has no dashboard command yet: not run", name)
			continue
		}
		if r, _ := strconv.Atoi(flagValue(args, "--reserve")); r >= runtime.NumCPU() {
			t.Logf("%s: --reserve %d leaves no core of %d: not run", name, r, runtime.NumCPU())
			continue
		}
		names = append(names, name)
	}
	sort.Slice(names, func(a, b int) bool {
		ra, rb := rank[simswarmArgs(st.Services[names[a]].Command)[0]], rank[simswarmArgs(st.Services[names[b]].Command)[0]]
		if ra != rb {
			return ra < rb
		}
		return names[a] < names[b]
	})

	l := netlab.New(t, subnet)
	l.Env = cleanEnv()
	l.Add(names...)
	l.Add("idle") // nothing runs here: every health check must fail in it
	if !l.Has("engine") {
		t.Fatal("no engine service to run")
	}
	if !l.Has("distcc") {
		t.Fatal("no distcc service to run")
	}
	// Swarm's DNS: the engine's service name, and tasks.distcc for every
	// distcc task (one here).
	hosts := fmt.Sprintf("127.0.0.1 localhost\n%s engine\n%s distcc\n%s tasks.distcc\n",
		l.Addr("engine"), l.Addr("distcc"), l.Addr("distcc"))
	for _, name := range l.Nodes() {
		l.SetHosts(name, hosts)
	}

	// The secrets, as `docker secret create` would hold them.
	root := t.TempDir()
	secrets := map[string]string{
		"simswarm_creds":           fmt.Sprintf("user = \"simswarm\"\npassword = \"%d-%d-deploy-test\"\n", time.Now().UnixNano(), os.Getpid()),
		"simswarm_dashboard_token": fmt.Sprintf("%x\n", time.Now().UnixNano()),
	}
	for name, body := range secrets {
		if _, ok := st.Secrets[name]; !ok {
			t.Fatalf("stack.yml declares no secret %s", name)
		}
		path := filepath.Join(root, "secrets", name)
		os.MkdirAll(filepath.Dir(path), 0o700)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(root, "secrets", "simswarm_creds")

	maps := map[string]*pathMap{}
	procs := map[string]*netlab.Proc{}
	for _, name := range names {
		s := st.Services[name]
		m := &pathMap{}
		for _, ref := range s.Secrets {
			target := ref.Target
			if target == "" {
				target = ref.Source
			}
			if _, ok := secrets[ref.Source]; !ok {
				t.Fatalf("%s: the test has no value for the secret %s", name, ref.Source)
			}
			m.add("/run/secrets/"+target, filepath.Join(root, "secrets", ref.Source))
		}
		// Every node has its own volumes: one directory per service here.
		for target, source := range volumeTargets(t, s) {
			dir := filepath.Join(root, "nodes", name, strings.ReplaceAll(source, "/", "_"))
			os.MkdirAll(dir, 0o755)
			m.add(target, dir)
		}
		maps[name] = m
		argv, unmapped := m.apply(s.Command)
		if len(unmapped) > 0 {
			t.Errorf("%s: %v name container paths that are neither a volume nor a secret: lost with the container", name, unmapped)
		}
		procs[name] = l.Start(name, nil, argv...)
		// Wait until healthy, as Swarm would before counting the task
		// running; dependents start after.
		waitHealthy(t, l, name, s, m, procs[name])
	}

	// Health checks are not vacuous: each fails where its service is not.
	for _, name := range names {
		s := st.Services[name]
		if err := runHealthcheck(l, "idle", s, maps[name]); err == nil {
			t.Errorf("%s: health check %v passes in a namespace where nothing runs", name, s.Healthcheck.Test)
		}
	}

	// The dashboard got its token from the secret through its shell: it
	// refuses a reader without it and serves one with it.
	if l.Has("dashboard") && flagsOf("dashboard")["--token"] {
		url := "http://" + net.JoinHostPort(l.Addr("dashboard"), "9181") + "/"
		token := strings.TrimSpace(secrets["simswarm_dashboard_token"])
		get := func(auth string) int {
			req, _ := http.NewRequest("GET", url, nil)
			if auth != "" {
				req.Header.Set("Authorization", "Bearer "+auth)
			}
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Fatalf("dashboard: %v", err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if code := get(""); code != http.StatusForbidden && code != http.StatusUnauthorized {
			t.Errorf("dashboard without its token: HTTP %d, want it refused", code)
		}
		if code := get(token); code >= 400 {
			t.Errorf("dashboard with the token of the secret: HTTP %d", code)
		}
	}

	// A campaign from the root namespace, through the engine's address.
	proj := filepath.Join(t.TempDir(), "aloha")
	copyExample(t, "../examples/aloha", proj)
	sources, _ := filepath.Glob(filepath.Join(proj, "src", "*.c"))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	engineURL := "nats://" + net.JoinHostPort(l.Addr("engine"), "4222")
	cmd := exec.CommandContext(ctx, simswarmBin, "run", "--server", engineURL,
		"--creds", secret, "-C", proj, "--json", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "0..3")
	cmd.Env = append(cleanEnv(), "XDG_CACHE_HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var sum struct {
		Runs, Succeeded, Failed int
	}
	if jerr := json.Unmarshal(stdout.Bytes(), &sum); err != nil || jerr != nil || sum.Runs != 4 || sum.Succeeded != 4 {
		t.Fatalf("simswarm run: %v (summary %+v, %v)\nstdout:\n%s\nstderr:\n%s", err, sum, jerr, stdout.String(), stderr.String())
	}
	results, _ := filepath.Glob(filepath.Join(proj, "results", "*.sca"))
	if len(results) != 4 {
		t.Errorf("%d .sca files in results/, want 4: %v", len(results), results)
	}
	// The build went to distccd in the distcc namespace: every source file
	// was compiled there (its log, on stderr as in `docker service logs`).
	compiled := map[string]int{}
	for _, m := range regexp.MustCompile(`COMPILE_OK .* (\S+\.c)\n`).FindAllStringSubmatch(procs["distcc"].Log(), -1) {
		compiled[filepath.Base(m[1])]++
	}
	var missing []string
	for _, src := range sources {
		if compiled[filepath.Base(src)] == 0 {
			missing = append(missing, filepath.Base(src))
		}
	}
	if n := strings.Count(procs["distcc"].Log(), "COMPILE_OK"); n > len(sources) {
		// ccache 4.7 under distcc misses the -MD dependency file of the
		// first compile and compiles again (see the report of issue 6).
		t.Logf("distccd compiled %d times for %d source files", n, len(sources))
	}
	if got := len(sources) - len(missing); len(missing) > 0 {
		buildLog := "(no build id printed)"
		if m := regexp.MustCompile(`\(build ([0-9a-f]{12})\)`).FindStringSubmatch(stderr.String()); m != nil {
			out, _ := exec.Command(simswarmBin, "logs", "--server", engineURL, "--creds", secret, "build", m[1]).CombinedOutput()
			buildLog = string(out)
		}
		t.Errorf("distccd compiled %d of the example's %d files (not %v):\n%s\nbuild log:\n%s\nclient:\n%s", got, len(sources), missing, procs["distcc"].Log(), buildLog, stderr.String())
	}
	for _, name := range names {
		if procs[name].Exited() {
			t.Errorf("%s exited during the campaign:\n%s", name, procs[name].Log())
		}
	}
}

// runHealthcheck runs a service's health check in a namespace, as Docker
// runs it in the container: CMD as an argument list, CMD-SHELL with
// /bin/sh -c.
func runHealthcheck(l *netlab.Lab, ns string, s service, m *pathMap) error {
	hc := s.Healthcheck
	if hc == nil || len(hc.Test) < 2 {
		return fmt.Errorf("no health check")
	}
	var argv []string
	switch hc.Test[0] {
	case "CMD":
		argv, _ = m.apply(hc.Test[1:])
	case "CMD-SHELL":
		argv = []string{"/bin/sh", "-c", strings.Join(hc.Test[1:], " ")}
	default:
		return fmt.Errorf("unknown health check kind %q", hc.Test[0])
	}
	timeout := 10 * time.Second
	if d, err := time.ParseDuration(hc.Timeout); err == nil {
		timeout = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.NS(ns)}, argv...)...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

func waitHealthy(t *testing.T, l *netlab.Lab, name string, s service, m *pathMap, p *netlab.Proc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := runHealthcheck(l, name, s, m)
		if err == nil {
			return
		}
		if p.Exited() {
			t.Fatalf("%s exited:\n%s", name, p.Log())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy after 30 s: %v\n%s", name, err, p.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// copyExample copies a source tree, leaving out build outputs and results
// that other tests may have left in it.
func copyExample(t *testing.T, from, to string) {
	t.Helper()
	if err := testkit.CopySources(from, to); err != nil {
		t.Fatal(err)
	}
}
