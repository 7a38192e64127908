package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// distccd is a real compile server on a loopback port.
type distccd struct {
	cmd  *exec.Cmd
	log  string
	addr string
}

func startDistccd(t *testing.T, allow string) *distccd {
	t.Helper()
	if _, err := exec.LookPath("distccd"); err != nil {
		t.Skip("distccd not installed (apt-get install distcc; .ci/run does)")
	}
	if _, err := exec.LookPath("ccache"); err != nil {
		t.Skip("ccache not installed (apt-get install ccache; .ci/run does)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	// distccd drops root and writes its log as nobody, who cannot enter the
	// test's private temporary directories.
	dir, err := os.MkdirTemp("", "distccd-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &distccd{log: filepath.Join(dir, "distccd.log"), addr: addr}
	d.cmd = exec.Command(binary, "distccd", "--listen", addr, "--allow", allow, "--log-file", d.log, "--jobs", "2")
	d.cmd.Env = cleanEnv()
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if out, err := os.Create(filepath.Join(dir, "out")); err == nil {
		d.cmd.Stdout, d.cmd.Stderr = out, out
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("distccd on %s did not start", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return d
}

func (d *distccd) stop() {
	if d.cmd.Process != nil {
		// distccd pre-forks: end the whole group of children too.
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
		_ = d.cmd.Wait()
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// compiles counts the files this server compiled.
func (d *distccd) compiles() int {
	b, _ := os.ReadFile(d.log)
	return strings.Count(string(b), "COMPILE_OK")
}

func (d *distccd) text() string {
	b, _ := os.ReadFile(d.log)
	return string(b)
}

// cProject writes a C project of n+1 translation units with a Makefile and
// a simswarm.toml describing two trivial runs.
func cProject(t *testing.T, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "proj")
	os.MkdirAll(dir, 0o755)
	var decls, calls strings.Builder
	for i := 1; i <= n; i++ {
		src := fmt.Sprintf("int f%d(int x) { int s = 0; for (int i = 0; i < x; i++) s += i * %d; return s; }\n", i, i)
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.c", i)), []byte(src), 0o644)
		fmt.Fprintf(&decls, "int f%d(int);\n", i)
		fmt.Fprintf(&calls, "s += f%d(10);\n", i)
	}
	main := "#include <stdio.h>\n" + decls.String() + "int main(int c, char **v) { long s = 0;\n" + calls.String() +
		"FILE *o = fopen(v[1], \"w\"); fprintf(o, \"version 3\\nscalar x sum %ld\\n\", s); fclose(o); return 0; }\n"
	os.WriteFile(filepath.Join(dir, "main.c"), []byte(main), 0o644)
	mk := "SRCS := $(wildcard *.c)\nOBJS := $(SRCS:.c=.o)\nprog: $(OBJS)\n\tgcc -o $@ $(OBJS)\n%.o: %.c\n\tgcc -O2 -c -o $@ $<\n"
	os.WriteFile(filepath.Join(dir, "Makefile"), []byte(mk), 0o644)
	os.WriteFile(filepath.Join(dir, "simswarm.toml"), []byte("[run]\ncommand = \"./prog {resultdir}/r-#{run}.sca\"\nrepeat = 2\n"), 0o644)
	return dir
}

// TestDistributedBuild: a 25-file project builds over two real distccd
// servers, both of which compile; an unchanged snapshot compiles nothing;
// one changed file compiles once; a fresh workspace with a warm ccache sends
// nothing to distcc; with every server down the build is local, with a
// warning; a server whose allow list excludes the builder refuses it.
func TestDistributedBuild(t *testing.T) {
	a, b := startDistccd(t, "127.0.0.1"), startDistccd(t, "127.0.0.1")
	hosts := a.addr + "/2 " + b.addr + "/2"
	state := t.TempDir()
	proj := cProject(t, 24)
	build := func(dir string, extra ...string) result {
		t.Helper()
		args := append([]string{"run", "--json", "--distcc-hosts", hosts}, extra...)
		r := runSimswarm(t, dir, state, args...)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		return r
	}
	build(proj)
	if a.compiles() == 0 || b.compiles() == 0 || a.compiles()+b.compiles() != 25 {
		t.Fatalf("compiles: %d on one server, %d on the other; want both used, 25 in all", a.compiles(), b.compiles())
	}
	total := func() int { return a.compiles() + b.compiles() }

	r := build(proj)
	if total() != 25 || strings.Contains(r.stderr, "built in") {
		t.Fatalf("unchanged snapshot compiled again (%d compiles)\n%s", total(), r.stderr)
	}

	src := filepath.Join(proj, "f7.c")
	os.WriteFile(src, []byte("int f7(int x) { return x * 7; }\n"), 0o644)
	build(proj)
	if total() != 26 {
		t.Fatalf("one changed file: %d compiles in all, want 26", total())
	}

	// The same sources in another directory are another project: a fresh
	// workspace. The compiler cache already knows every file.
	fresh := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-r", proj, fresh).CombinedOutput(); err != nil {
		t.Fatal(err, string(out))
	}
	os.RemoveAll(filepath.Join(fresh, "results"))
	r = build(fresh, "--rebuild")
	if total() != 26 || !strings.Contains(r.stderr, "built in") {
		t.Fatalf("fresh workspace with a warm ccache sent %d compiles to distcc\n%s", total()-26, r.stderr)
	}

	// Every server down: local build, one warning.
	a.stop()
	b.stop()
	os.WriteFile(src, []byte("int f7(int x) { return x * 77; }\n"), 0o644)
	r = build(proj)
	if !strings.Contains(r.stderr, "warning: no distcc server answers: building locally") {
		t.Fatalf("no warning for a local fallback:\n%s", r.stderr)
	}

	// A server that does not admit the builder refuses it; the build still
	// succeeds (distcc compiles locally) and the refusal is in its log.
	closed := startDistccd(t, "10.255.255.1")
	os.WriteFile(src, []byte("int f7(int x) { return x * 777; }\n"), 0o644)
	r = runSimswarm(t, proj, state, "run", "--json", "--distcc-hosts", closed.addr)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if closed.compiles() != 0 || !strings.Contains(closed.text(), "denied by access list") {
		t.Fatalf("a distccd whose allow list excludes the builder compiled %d files; log:\n%s", closed.compiles(), closed.text())
	}

	// The whole log of a build is kept.
	id := findFirst(`\(build ([0-9a-f]{12})\)`, r.stderr)
	if id == "" {
		t.Fatalf("no build id printed:\n%s", r.stderr)
	}
	logs := runSimswarm(t, proj, state, "logs", "build", id)
	if logs.code != 0 || !strings.Contains(logs.stdout, "gcc -O2 -c -o f7.o f7.c") {
		t.Fatalf("simswarm logs build %s: exit %d\n%s%s", id, logs.code, logs.stdout, logs.stderr)
	}
}

func findFirst(pattern, s string) string {
	m := regexp.MustCompile(pattern).FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestBuildBadInputs: build mistakes are exit status 2 with a clear line.
func TestBuildBadInputs(t *testing.T) {
	state := t.TempDir()
	cases := []struct {
		name, toml string
		args       []string
		want       string
	}{
		{"build command missing", "[build]\ncommand = \"nosuchmake -j{jobs}\"\n[run]\ncommand = \"true {resultdir}\"\n", nil, "nosuchmake: not found"},
		{"no artifact files", "[build]\ncommand = \"true\"\nartifacts = [\"prog\"]\n[run]\ncommand = \"./prog {resultdir}\"\n", nil, "produced no files matching"},
		{"malformed distcc hosts", "", []string{"--distcc-hosts", "a:b:c"}, "invalid --distcc-hosts"},
		{"no-build before any build", "", []string{"--no-build"}, "has never been built"},
		{"rebuild and no-build", "", []string{"--rebuild", "--no-build"}, "contradict"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			proj := cProject(t, 1)
			if c.toml != "" {
				os.WriteFile(filepath.Join(proj, "simswarm.toml"), []byte(c.toml), 0o644)
			}
			r := runSimswarm(t, proj, state, append([]string{"run"}, c.args...)...)
			if r.code != 2 || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("exit %d, want 2 saying %q:\n%s", r.code, c.want, r.stderr)
			}
		})
	}

	t.Run("workspace disk full", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("mounting a small tmpfs needs root")
		}
		small := t.TempDir()
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", small).CombinedOutput(); err != nil {
			t.Skipf("cannot mount a tmpfs: %v %s", err, out)
		}
		defer exec.Command("umount", "-l", small).Run()
		proj := cProject(t, 1)
		// Objects that do not fit: a build writing 1 MB into a 256 KB disk.
		os.WriteFile(filepath.Join(proj, "simswarm.toml"), []byte("[build]\ncommand = \"make && head -c 1000000 /dev/zero > big.bin\"\n[run]\ncommand = \"./prog {resultdir}/r.sca\"\n"), 0o644)
		url, credsFile := plainNATS(t)
		if r := runSimswarm(t, proj, t.TempDir(), "init", "--server", url, "--creds", credsFile); r.code != 0 {
			t.Fatal(r.stderr)
		}
		startWorker(t, "builder", "--server", url, "--creds", credsFile, "--dir", small, "--ccache-dir", "")
		r := runSimswarm(t, proj, t.TempDir(), "run", "--server", url, "--creds", credsFile)
		if r.code != 2 || !strings.Contains(r.stderr, "build failed") || !strings.Contains(r.stderr, "No space left on device") {
			t.Fatalf("exit %d, want 2 naming the full disk:\n%s", r.code, r.stderr)
		}
	})
}

// TestDistccAcrossHosts: compile servers on two hosts found through one DNS
// name, as Docker Swarm's tasks.distcc gives them: the builder's host
// resolves the name to both (a hosts file stands in for Swarm's DNS), and
// each server admits only the builder's address.
func TestDistccAcrossHosts(t *testing.T) {
	if _, err := exec.LookPath("distccd"); err != nil {
		t.Skip("distccd not installed (apt-get install distcc; .ci/run does)")
	}
	c := newCluster(t, 1)
	lab := c.lab
	// The compile servers join the lab as extra nodes.
	more := []string{"cc1", "cc2"}
	lab.Add(more...)
	logs, err := os.MkdirTemp("", "distccd-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(logs, 0o755)
	t.Cleanup(func() { os.RemoveAll(logs) })
	for _, name := range more {
		lab.start(name, "distccd", "--listen", lab.addr(name)+":3632", "--allow", lab.addr("builder")+"/32",
			"--log-file", filepath.Join(logs, name+".log"), "--jobs", "2")
	}
	for _, name := range more {
		deadline := time.Now().Add(10 * time.Second)
		for {
			conn, err := net.DialTimeout("tcp", lab.addr(name)+":3632", 200*time.Millisecond)
			if err == nil {
				conn.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("distccd on %s did not start", name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Swarm's DNS answers tasks.distcc with every task; so does this file
	// for processes in the builder's namespace (ip netns exec mounts it).
	hosts := "127.0.0.1 localhost\n" + lab.addr("cc1") + " tasks.distcc\n" + lab.addr("cc2") + " tasks.distcc\n"
	lab.SetHosts("builder", hosts)
	// Restart the builder with the DNS name.
	for _, n := range lab.Procs() {
		if n.Name == "builder" {
			n.Kill()
			n.Args = append(n.Args, "--distcc-dns", "tasks.distcc", "--distcc-per-host", "2")
			n.Restart()
		}
	}
	proj := cProject(t, 24)
	r := c.client(t, proj, "run", "--json")
	if s := jsonSummary(t, r); r.code != 0 || s.Succeeded != 2 {
		t.Fatalf("exit %d %+v\n%s", r.code, s, r.stderr)
	}
	count := func(name string) int {
		b, _ := os.ReadFile(filepath.Join(logs, name+".log"))
		return strings.Count(string(b), "COMPILE_OK")
	}
	if count("cc1") == 0 || count("cc2") == 0 || count("cc1")+count("cc2") != 25 {
		var blog string
		for _, n := range lab.Procs() {
			if n.Name == "builder" {
				blog = n.Log()
			}
		}
		t.Fatalf("compiles on the two hosts: %d and %d; want both, 25 in all\n%s\nbuilder:\n%s", count("cc1"), count("cc2"), r.stderr, blog)
	}
}

// TestDistccDependencyFiles: Makefiles that ask for dependency files with
// -MMD (every one opp_makemake writes, and the example's) compile each file
// once through ccache and distcc, and the compiler cache keeps them.
func TestDistccDependencyFiles(t *testing.T) {
	d := startDistccd(t, "127.0.0.1")
	dir := example(t, "aloha")
	sources := len(files(t, filepath.Join(dir, "src"), "*.c"))
	state := t.TempDir()
	r := runSimswarm(t, dir, state, "run", "-q", "--distcc-hosts", d.addr+"/4", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "0")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if d.compiles() != sources {
		t.Fatalf("distcc compiled %d times for %d source files", d.compiles(), sources)
	}
	// A fresh workspace compiles nothing: ccache kept every object.
	copyDir := filepath.Join(t.TempDir(), "again")
	if out, err := exec.Command("cp", "-r", dir, copyDir).CombinedOutput(); err != nil {
		t.Fatal(err, string(out))
	}
	os.RemoveAll(filepath.Join(copyDir, "results"))
	r = runSimswarm(t, copyDir, state, "run", "-q", "--rebuild", "--distcc-hosts", d.addr+"/4", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "0")
	if r.code != 0 || d.compiles() != sources {
		t.Fatalf("fresh workspace: exit %d, %d compiles in all (want still %d)\n%s", r.code, d.compiles(), sources, r.stderr)
	}
}
