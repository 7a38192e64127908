package main

// simswarm aws through the built binary. AWS cannot be reached from tests:
// the AWS calls go to a local stand-in (awstest) that speaks the SDK's wire
// protocols; the tunnel goes through a real sshd on a loopback port
// (sshdtest) to local echo servers playing the manager's ports.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/aws"
	"github.com/simswarm/simswarm/internal/aws/awstest"
	"github.com/simswarm/simswarm/internal/tunnel"
	"github.com/simswarm/simswarm/internal/tunnel/sshdtest"
	"golang.org/x/crypto/ssh"
)

// awsHome gives the test (and the binaries it runs) a fresh home, config
// dir and temp dir, so profiles and PID files are the test's own.
func awsHome(t *testing.T) {
	t.Helper()
	home := t.TempDir()
	tmp := filepath.Join(home, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("TMPDIR", tmp)
}

// awsEnv is this process's environment without any AWS settings, plus
// extra.
func awsEnv(extra map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "SIMSWARM_AWS_") || k == "SIMSWARM_IP_ENDPOINT" {
			continue
		}
		env = append(env, kv)
	}
	// Never the instance metadata service: no network here.
	env = append(env, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/nonexistent/simswarm-test/config", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent/simswarm-test/credentials")
	for k, v := range extra {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func runAWS(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"aws"}, args...)...)
	cmd.Dir = t.TempDir()
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if cmd.ProcessState == nil {
		t.Fatalf("simswarm aws %v: %v", args, err)
	}
	r.code = cmd.ProcessState.ExitCode()
	return r
}

// oneLineError checks a failure: the exit code and a single error line
// holding every want.
func oneLineError(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "simswarm: ") {
		t.Errorf("last stderr line %q is not the error", last)
	}
	for _, w := range want {
		if !strings.Contains(last, w) {
			t.Errorf("error %q does not mention %q", last, w)
		}
	}
}

func TestAWSCommandNoCredentials(t *testing.T) {
	awsHome(t)
	r := runAWS(t, awsEnv(map[string]string{"AWS_REGION": "us-east-1"}), "status", "--name", "c1")
	oneLineError(t, r, 1, "no AWS credentials", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "~/.aws/credentials")
	if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("more than one line:\n%s", r.stderr)
	}
}

func TestAWSCommandRemove(t *testing.T) {
	awsHome(t)
	fake := awstest.Start(t)
	env := awsEnv(awstest.Env(fake.URL))
	r := runAWS(t, env, "remove", "--name", "nope", "--yes")
	oneLineError(t, r, 1, "no cluster named nope in us-east-1")
	// No terminal to confirm on and no --yes: refused before any call.
	fake.Mu.Lock()
	fake.Calls = nil
	fake.Mu.Unlock()
	r = runAWS(t, env, "remove", "--name", "nope")
	oneLineError(t, r, 2, "refusing to remove cluster nope without confirmation", "--yes")
	if a := fake.Actions(); len(a) != 0 {
		t.Errorf("remove without confirmation called AWS: %v", a)
	}
}

func TestAWSCommandInitBadInputs(t *testing.T) {
	awsHome(t)
	fake := awstest.Start(t)
	fake.Stacks["taken"] = &awstest.Stack{Name: "taken", ID: "arn:aws:cloudformation:us-east-1:1:stack/taken/x", Status: "CREATE_COMPLETE"}
	env := awsEnv(awstest.Env(fake.URL))
	r := runAWS(t, env, "init", "--name", "taken", "--ssh-cidr", "203.0.113.7/32")
	oneLineError(t, r, 1, "the name taken is taken", "choose another --name")

	// The public address cannot be found (nothing listens there).
	r = runAWS(t, append(env, "SIMSWARM_IP_ENDPOINT=http://127.0.0.1:1/"), "init", "--name", "fresh")
	oneLineError(t, r, 1, "pass --ssh-cidr")
	r = runAWS(t, env, "init", "--name", "fresh", "--ssh-cidr", "0.0.0.0/0")
	oneLineError(t, r, 1, "--ssh-cidr", "whole internet")
	r = runAWS(t, env, "init", "--name", "Not_A_Name")
	oneLineError(t, r, 2, `cluster name "Not_A_Name"`)
	for _, a := range fake.Actions() {
		if strings.HasPrefix(a, "cloudformation:Create") || strings.HasPrefix(a, "ec2:Create") {
			t.Errorf("a refused init called %s", a)
		}
	}
}

func TestAWSCommandStatus(t *testing.T) {
	awsHome(t)
	fake := awstest.Start(t)
	fake.Stacks["st"] = &awstest.Stack{Name: "st", ID: "arn:aws:cloudformation:us-east-1:1:stack/st/x", Status: "CREATE_COMPLETE",
		Outputs: map[string]string{"ManagerInstanceId": "i-m", "WorkerGroupName": "st-Workers", "IdleAlarmName": "st-idle"}}
	fake.Instances["i-m"] = &awstest.Instance{ID: "i-m", Type: "c5.2xlarge", State: "running", Address: "192.0.2.10"}
	fake.Instances["i-w"] = &awstest.Instance{ID: "i-w", Type: "x9.weird", State: "running", Address: "192.0.2.11", Group: "st-Workers"}
	fake.Alarms["st-idle"] = "OK"
	r := runAWS(t, awsEnv(awstest.Env(fake.URL)), "status", "--name", "st")
	if r.code != 0 {
		t.Fatalf("status: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"cluster st (us-east-1): stack CREATE_COMPLETE", "i-m", "192.0.2.10", "i-w", "idle alarm st-idle: OK",
		"tunnel: down", "estimated cost: $0.34/hour", "estimate", "price unknown: x9.weird"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
}

// tunnelProfile writes the profile of a cluster whose manager is s, with
// the tunnel's ports carried to local echo servers.
func tunnelProfile(t *testing.T, s *sshdtest.Server, name string) *aws.Profile {
	t.Helper()
	dir, err := aws.Dir(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(key, s.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(s.Addr)
	p := &aws.Profile{Name: name, Region: "us-east-1", Stack: name, State: aws.StateReady, ManagerAddress: host, User: s.User,
		HostKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostKey))), KeyPath: key, KnownHosts: s.KnownHosts(dir)}
	p.SSHPort, _ = strconv.Atoi(port)
	for range 3 {
		p.Forwards = append(p.Forwards, tunnel.Forward{Local: sshdtest.FreeAddr(t), Remote: sshdtest.Echo(t)})
	}
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	return p
}

// gone tells whether pid has exited (a zombie counts: its parent is init).
func gone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}

func TestAWSConnectBackgroundTunnel(t *testing.T) {
	awsHome(t)
	s := sshdtest.Start(t)
	p := tunnelProfile(t, s, "tun")
	env := awsEnv(nil)
	pidPath := tunnel.PIDPath("tun")
	t.Cleanup(func() {
		if pid, running, err := tunnel.ReadPID(pidPath); err == nil && running {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	r := runAWS(t, env, "disconnect", "--name", "tun")
	if r.code != 0 || !strings.Contains(r.stdout, "no tunnel to cluster tun is running") {
		t.Errorf("disconnect with no tunnel: %d %q %q", r.code, r.stdout, r.stderr)
	}

	r = runAWS(t, env, "connect", "--name", "tun")
	if r.code != 0 || !strings.Contains(r.stdout, "up in the background") {
		t.Fatalf("connect: exit %d\n%s\n%s\nsshd:\n%s", r.code, r.stdout, r.stderr, s.Log())
	}
	pid, running, err := tunnel.ReadPID(pidPath)
	if err != nil || !running {
		t.Fatalf("PID file %s after connect: pid %d running %v err %v", pidPath, pid, running, err)
	}
	if !strings.Contains(r.stdout, fmt.Sprintf("pid %d", pid)) {
		t.Errorf("connect names another pid than the PID file's %d:\n%s", pid, r.stdout)
	}
	// Detached: a session of its own, so the terminal's signals miss it.
	if sid, err := sessionID(pid); err != nil || sid != pid {
		t.Errorf("the tunnel (pid %d) is in session %d (%v), want its own", pid, sid, err)
	}
	for i, f := range p.Forwards {
		sshdtest.RoundTrip(t, f.Local, []byte(fmt.Sprintf("through the background tunnel, port %d\n", i)))
		sshdtest.RoundTrip(t, f.Local, bytes.Repeat([]byte{byte(i)}, 256<<10))
	}

	r = runAWS(t, env, "connect", "--name", "tun")
	oneLineError(t, r, 1, "already running", fmt.Sprintf("pid %d", pid))

	r = runAWS(t, env, "disconnect", "--name", "tun")
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("stopped (pid %d)", pid)) {
		t.Fatalf("disconnect: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(pidPath); !os.IsNotExist(err) {
		t.Errorf("PID file after disconnect: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !gone(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !gone(pid) {
		t.Errorf("tunnel pid %d still runs after disconnect", pid)
	}
	if c, err := net.DialTimeout("tcp", p.Forwards[0].Local, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts after disconnect", p.Forwards[0].Local)
	}

	// A stale PID file (its process is gone) is detected and replaced.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := []byte(fmt.Sprintf("%d\n", dead.Process.Pid))
	if err := os.WriteFile(pidPath, stale, 0o644); err != nil {
		t.Fatal(err)
	}
	r = runAWS(t, env, "disconnect", "--name", "tun")
	if r.code != 0 || !strings.Contains(r.stdout, "already gone; removed its stale PID file") {
		t.Errorf("disconnect of a stale PID file: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if err := os.WriteFile(pidPath, stale, 0o644); err != nil {
		t.Fatal(err)
	}
	r = runAWS(t, env, "connect", "--name", "tun")
	if r.code != 0 || !strings.Contains(r.stderr, "replacing the stale PID file") {
		t.Fatalf("connect over a stale PID file: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	sshdtest.RoundTrip(t, p.Forwards[2].Local, []byte("after a stale PID file"))
	if r = runAWS(t, env, "disconnect", "--name", "tun"); r.code != 0 {
		t.Fatalf("disconnect: %q", r.stderr)
	}
}

func sessionID(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return strconv.Atoi(f[3]) // state ppid pgrp session
}

func TestAWSConnectRefusals(t *testing.T) {
	awsHome(t)
	s := sshdtest.Start(t)
	p := tunnelProfile(t, s, "ref")
	env := awsEnv(nil)
	pidPath := tunnel.PIDPath("ref")
	noPID := func() {
		t.Helper()
		if _, err := os.Stat(pidPath); !os.IsNotExist(err) {
			t.Errorf("a refused connect left its PID file: %v", err)
		}
	}

	busy, err := net.Listen("tcp", p.Forwards[1].Local)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(p.Forwards[1].Local)
	r := runAWS(t, env, "connect", "--name", "ref")
	oneLineError(t, r, 1, "local port "+port+" is already in use")
	busy.Close()
	noPID()

	if err := os.Chmod(p.KeyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	r = runAWS(t, env, "connect", "--name", "ref")
	oneLineError(t, r, 1, "SSH key "+p.KeyPath+" is readable by group or others", "chmod 600")
	if err := os.Rename(p.KeyPath, p.KeyPath+".away"); err != nil {
		t.Fatal(err)
	}
	r = runAWS(t, env, "connect", "--name", "ref")
	oneLineError(t, r, 1, "SSH key "+p.KeyPath+" does not exist")
	if err := os.Rename(p.KeyPath+".away", p.KeyPath); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p.KeyPath, 0o600); err != nil {
		t.Fatal(err)
	}
	noPID()

	s.RegenerateHostKey()
	r = runAWS(t, env, "connect", "--name", "ref")
	oneLineError(t, r, 1, "host key mismatch for "+s.Addr, "refusing to connect")
	noPID()

	r = runAWS(t, env, "connect", "--name", "nosuch")
	oneLineError(t, r, 1, `no cluster named "nosuch" on this machine`)
}
