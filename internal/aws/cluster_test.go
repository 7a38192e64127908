package aws

// A cluster's life against stand-ins: AWS cannot be reached from tests, so
// awstest answers the SDK's requests locally (and records them for the
// assertions below), while the manager is a real sshd on a loopback port
// (sshdtest) whose "docker" is a script recording what it is asked.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/aws/awstest"
	"github.com/simswarm/simswarm/internal/tunnel/sshdtest"
	"golang.org/x/crypto/ssh"
)

const fakeDocker = `#!/bin/sh
# Stands in for docker on the manager (no Docker engine here): records its
# arguments and answers the few commands simswarm aws runs.
d=%q
echo "$*" >> "$d/log"
case "$*" in
"node ls --format {{.Status}}")
	i=0; n=$(cat "$d/ready"); while [ $i -lt $n ]; do echo Ready; i=$((i+1)); done ;;
"node ls --format {{.ID}} {{.Status}} {{.ManagerStatus}}")
	echo "mgr1 Ready Leader"; cat "$d/down" 2>/dev/null; true ;;
"node rm "*|"node update "*) ;;
"info --format "*) echo nodeid-1 ;;
"secret inspect simswarm_creds") test -f "$d/secret" ;;
"secret create simswarm_creds "*) cp "$4" "$d/secret" ;;
"stack deploy "*)
	echo "deployed in $(pwd) tag=${SIMSWARM_TAG:-} registry=${SIMSWARM_REGISTRY:-}" >> "$d/log"
	cp stack.yml "$d/deployed.yml"; echo "Creating service simswarm_engine" ;;
*) echo "fake docker: unexpected: $*" >&2; exit 2 ;;
esac
`

type rig struct {
	fake    *awstest.Fake
	sshd    *sshdtest.Server
	docker  string // the fake docker's directory (log, ready, down ...)
	remote  string // the manager's remote dir
	opts    InitOptions
	out     *bytes.Buffer
	name    string
	stack   string // local stack file
	ipCalls int
}

// newRig points the tool at the stand-ins with a fresh config dir.
func newRig(t *testing.T, name string) *rig {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("TMPDIR", t.TempDir())
	r := &rig{fake: awstest.Start(t), sshd: sshdtest.Start(t), out: &bytes.Buffer{}, name: name}
	r.docker = t.TempDir()
	r.remote = filepath.Join(t.TempDir(), "remote")
	script := filepath.Join(r.docker, "docker")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(fakeDocker, r.docker)), 0o755); err != nil {
		t.Fatal(err)
	}
	r.setReady(3)
	ip := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.ipCalls++
		fmt.Fprintln(w, "203.0.113.7")
	}))
	t.Cleanup(ip.Close)
	r.stack = filepath.Join(t.TempDir(), "stack.yml")
	if err := os.WriteFile(r.stack, []byte("version: \"3.8\"\nservices: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(r.sshd.Addr, ":")
	sshPort, _ := strconv.Atoi(port)
	r.opts = InitOptions{
		Workers: 2, ManagerType: "c5.xlarge", WorkerType: "c5.4xlarge", IPEndpoint: ip.URL,
		StackFile: r.stack, StackEnv: map[string]string{"SIMSWARM_TAG": "v9"},
		SSHPort: sshPort, User: r.sshd.User, Docker: script, RemoteDir: r.remote,
	}
	r.fake.KeyMaterial = string(r.sshd.KeyPEM)
	r.fake.ManagerAddress = "127.0.0.1"
	hostKey := strings.TrimSpace(string(sshAuthorized(r.sshd)))
	r.fake.Outputs = func(s *awstest.Stack) map[string]string {
		return map[string]string{
			"ManagerInstanceId":  "i-manager",
			"ManagerPublicIp":    "127.0.0.1",
			"ManagerPrivateIp":   "10.42.0.10",
			"ManagerHostKey":     `{"manager":"` + hostKey + `"}`,
			"WorkerGroupName":    s.Name + "-Workers-ABC",
			"IdleAlarmName":      s.Name + "-idle",
			"JoinTokenParameter": "/simswarm/" + s.Name + "/join-token",
		}
	}
	return r
}

func (r *rig) setReady(n int) {
	if err := os.WriteFile(filepath.Join(r.docker, "ready"), []byte(strconv.Itoa(n)), 0o644); err != nil {
		panic(err)
	}
}

func (r *rig) dockerLog(t *testing.T) string {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(r.docker, "log"))
	return string(b)
}

func (r *rig) cluster(t *testing.T) *Cluster {
	t.Helper()
	c, err := Load(context.Background(), Settings{})
	if err != nil {
		t.Fatal(err)
	}
	return &Cluster{Name: r.name, C: c, Out: r.out, Poll: 5 * time.Millisecond, SSHTimeout: 2 * time.Second, NodeTimeout: 2 * time.Second}
}

func (r *rig) init(t *testing.T) *Profile {
	t.Helper()
	p, err := r.cluster(t).Init(context.Background(), r.opts)
	if err != nil {
		t.Fatalf("init: %v\noutput:\n%s\nsshd:\n%s", err, r.out, r.sshd.Log())
	}
	return p
}

func TestAWSInitMakesClusterThroughStandIn(t *testing.T) {
	r := newRig(t, "alpha")
	p := r.init(t)

	// The key pair: ed25519, tagged, private key kept 0600 and never shown.
	kp := r.fake.CallsOf("CreateKeyPair")
	if len(kp) != 1 {
		t.Fatalf("CreateKeyPair calls: %d", len(kp))
	}
	f := kp[0].Form
	if f.Get("KeyName") != "alpha" || f.Get("KeyType") != "ed25519" || f.Get("TagSpecification.1.ResourceType") != "key-pair" ||
		f.Get("TagSpecification.1.Tag.1.Key") != TagCluster || f.Get("TagSpecification.1.Tag.1.Value") != "alpha" {
		t.Errorf("CreateKeyPair %v", f)
	}
	fi, err := os.Stat(p.KeyPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key %s: %v %v", p.KeyPath, fi, err)
	}
	if b, _ := os.ReadFile(p.KeyPath); string(b) != string(r.sshd.KeyPEM) {
		t.Error("the private key on disk is not the key material EC2 returned")
	}
	if strings.Contains(r.out.String(), "PRIVATE KEY") {
		t.Error("the output shows the private key")
	}

	// The stack: the embedded template, parameters from the options,
	// tags, IAM capability, an idempotency token.
	cs := r.fake.CallsOf("CreateStack")
	if len(cs) != 1 {
		t.Fatalf("CreateStack calls: %d", len(cs))
	}
	f = cs[0].Form
	if f.Get("TemplateBody") != Template() {
		t.Error("TemplateBody is not the embedded template")
	}
	params := map[string]string{}
	for _, m := range membersOf(f, "Parameters.member") {
		params[m["ParameterKey"]] = m["ParameterValue"]
	}
	want := map[string]string{
		"ClusterName": "alpha", "KeyName": "alpha", "ManagerInstanceType": "c5.xlarge", "WorkerInstanceType": "c5.4xlarge",
		"WorkerCount": "2", "SshCidr": "203.0.113.7/32", "ImageId": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
	}
	for k, v := range want {
		if params[k] != v {
			t.Errorf("parameter %s = %q, want %q", k, params[k], v)
		}
	}
	tags := map[string]string{}
	for _, m := range membersOf(f, "Tags.member") {
		tags[m["Key"]] = m["Value"]
	}
	if tags[TagCluster] != "alpha" || tags[tagInit] == "" {
		t.Errorf("stack tags %v", tags)
	}
	if f.Get("Capabilities.member.1") != "CAPABILITY_IAM" || f.Get("ClientRequestToken") != tags[tagInit] || f.Get("OnFailure") != "ROLLBACK" {
		t.Errorf("CreateStack capabilities/token/on-failure: %v", f)
	}
	if r.ipCalls != 1 {
		t.Errorf("the public address was asked %d times", r.ipCalls)
	}

	// The profile and the pinned host key.
	if p.State != StateReady || p.Region != "us-east-1" || p.ManagerAddress != "127.0.0.1" || p.ManagerID != "i-manager" ||
		p.WorkerGroup != "alpha-Workers-ABC" || p.AlarmName != "alpha-idle" || p.Workers != 2 {
		t.Errorf("profile %+v", p)
	}
	if f := p.TunnelConfig().Forwards; len(f) != 3 || f[0].Local != "127.0.0.1:4222" || f[0].Remote != "10.42.0.10:4222" {
		t.Errorf("tunnel forwards %v, want 4222, 9181, 8080 to the manager's private address", f)
	}
	again, err := LoadProfile("alpha")
	if err != nil || again.StackID != p.StackID || again.KnownHosts != p.KnownHosts {
		t.Fatalf("profile on disk: %+v %v", again, err)
	}
	if fi, err := os.Stat(filepath.Join(filepath.Dir(p.KeyPath), "profile.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("profile.json mode: %v %v", fi, err)
	}
	kh, _ := os.ReadFile(p.KnownHosts)
	if !strings.Contains(string(kh), strings.Fields(string(sshAuthorized(r.sshd)))[1]) {
		t.Errorf("known_hosts %q lacks the manager's host key", kh)
	}

	// On the manager: label, secret, stack copied and deployed with the
	// stack's variables.
	log := r.dockerLog(t)
	for _, want := range []string{"node update --label-add simswarm.engine=true nodeid-1", "secret create simswarm_creds",
		"stack deploy --with-registry-auth -c stack.yml simswarm", "deployed in " + r.remote + " tag=v9"} {
		if !strings.Contains(log, want) {
			t.Errorf("docker on the manager was not asked %q; log:\n%s", want, log)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(r.docker, "deployed.yml")); !bytes.Equal(b, mustRead(t, r.stack)) {
		t.Error("the deployed stack file is not the local one")
	}
	local, remote := mustRead(t, p.CredsPath), mustRead(t, filepath.Join(r.remote, "client.creds"))
	if !bytes.Equal(local, remote) || !bytes.Contains(local, []byte("password")) {
		t.Error("the engine's credentials differ between this machine and the manager")
	}
	for _, c := range []string{p.CredsPath, filepath.Join(r.remote, "client.creds")} {
		if fi, _ := os.Stat(c); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", c, fi.Mode())
		}
	}
	if strings.Contains(r.out.String(), "password") {
		t.Error("the output shows the engine's password")
	}
}

func membersOf(form map[string][]string, prefix string) []map[string]string {
	var out []map[string]string
	for i := 1; ; i++ {
		p := fmt.Sprintf("%s.%d.", prefix, i)
		m := map[string]string{}
		for k, v := range form {
			if strings.HasPrefix(k, p) {
				m[strings.TrimPrefix(k, p)] = v[0]
			}
		}
		if len(m) == 0 {
			return out
		}
		out = append(out, m)
	}
}

func sshAuthorized(s *sshdtest.Server) []byte { return ssh.MarshalAuthorizedKey(s.HostKey) }

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAWSStatusHaltResumeRemove(t *testing.T) {
	r := newRig(t, "beta")
	p := r.init(t)
	cl := r.cluster(t)

	st, err := cl.Status(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if st.StackStatus != "CREATE_COMPLETE" || len(st.Instances) != 3 || st.AlarmState != "INSUFFICIENT_DATA" || st.TunnelUp {
		t.Errorf("status %+v", st)
	}
	if want := 0.17 + 2*0.68; st.HourlyUSD < want-1e-9 || st.HourlyUSD > want+1e-9 {
		t.Errorf("hourly estimate %.4f, want %.4f", st.HourlyUSD, want)
	}
	da := r.fake.CallsOf("DescribeAlarms")
	if len(da) != 1 || fmt.Sprint(da[0].CBOR["AlarmNames"]) != "[beta-idle]" {
		t.Errorf("DescribeAlarms asked %v", da)
	}
	var w bytes.Buffer
	st.Write(&w)
	for _, want := range []string{"stack CREATE_COMPLETE", "manager", "i-manager", "c5.xlarge", "worker", "idle alarm beta-idle: INSUFFICIENT_DATA", "tunnel: down", "estimated cost: $1.53/hour", "estimate"} {
		if !strings.Contains(w.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, w.String())
		}
	}

	if err := cl.Halt(context.Background(), p); err != nil {
		t.Fatalf("halt: %v", err)
	}
	up := r.fake.CallsOf("UpdateAutoScalingGroup")
	if len(up) != 1 || up[0].Form.Get("AutoScalingGroupName") != "beta-Workers-ABC" || up[0].Form.Get("DesiredCapacity") != "0" || up[0].Form.Get("MinSize") != "0" {
		t.Errorf("halt's UpdateAutoScalingGroup %v", up)
	}
	if s := r.fake.CallsOf("StopInstances"); len(s) != 1 || s[0].Form.Get("InstanceId.1") != "i-manager" {
		t.Errorf("halt's StopInstances %v", s)
	}
	if r.fake.CallsOf("DeleteStack") != nil || r.fake.CallsOf("DeleteKeyPair") != nil {
		t.Error("halt deleted something")
	}
	st, _ = cl.Status(context.Background(), p)
	if len(st.Instances) != 1 || st.Instances[0].State != "stopped" || st.HourlyUSD != 0 {
		t.Errorf("status after halt %+v", st)
	}

	// The halted workers are gone; the swarm still lists one as Down.
	if err := os.WriteFile(filepath.Join(r.docker, "down"), []byte("w1 Down\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cl.Resume(context.Background(), p, ""); err != nil {
		t.Fatalf("resume: %v\n%s", err, r.out)
	}
	if s := r.fake.CallsOf("StartInstances"); len(s) != 1 || s[0].Form.Get("InstanceId.1") != "i-manager" {
		t.Errorf("resume's StartInstances %v", s)
	}
	up = r.fake.CallsOf("UpdateAutoScalingGroup")
	if len(up) != 2 || up[1].Form.Get("DesiredCapacity") != "2" {
		t.Errorf("resume's UpdateAutoScalingGroup %v", up)
	}
	log := r.dockerLog(t)
	if !strings.Contains(log, "node rm w1") || strings.Count(log, "stack deploy") != 2 {
		t.Errorf("resume on the manager:\n%s", log)
	}
	st, _ = cl.Status(context.Background(), p)
	if len(st.Instances) != 3 {
		t.Errorf("status after resume %+v", st)
	}

	if err := cl.Remove(context.Background()); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if d := r.fake.CallsOf("DeleteStack"); len(d) != 1 || !strings.HasPrefix(d[0].Form.Get("StackName"), "arn:aws:cloudformation:") {
		t.Errorf("DeleteStack %v", d)
	}
	if d := r.fake.CallsOf("DeleteKeyPair"); len(d) != 1 || d[0].Form.Get("KeyName") != "beta" {
		t.Errorf("DeleteKeyPair %v", d)
	}
	if d := r.fake.CallsOf("DeleteParameter"); len(d) != 1 || d[0].JSON["Name"] != "/simswarm/beta/join-token" {
		t.Errorf("DeleteParameter %v", d)
	}
	dir, _ := Dir("beta")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the local profile %s is still there: %v", dir, err)
	}
	err = cl.Remove(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no cluster named beta in us-east-1") {
		t.Errorf("removing a removed cluster: %v", err)
	}
}

// An init interrupted while CloudFormation works (here: it gave up
// waiting) carries on when run again, reusing the key pair and the stack.
func TestAWSInitInterruptedCarriesOn(t *testing.T) {
	r := newRig(t, "gamma")
	r.fake.CreateStatuses = []string{"CREATE_IN_PROGRESS", "CREATE_IN_PROGRESS", "CREATE_IN_PROGRESS", "CREATE_IN_PROGRESS", "CREATE_IN_PROGRESS", "CREATE_COMPLETE"}
	cl := r.cluster(t)
	cl.Poll, cl.StackTimeout = 20*time.Millisecond, 30*time.Millisecond
	_, err := cl.Init(context.Background(), r.opts)
	if err == nil || !strings.Contains(err.Error(), "still CREATE_IN_PROGRESS") || !strings.Contains(err.Error(), "running the same command again") {
		t.Fatalf("first init: %v", err)
	}
	p, err := LoadProfile("gamma")
	if err != nil || p.State != StateCreating {
		t.Fatalf("profile after an interrupted init: %+v %v", p, err)
	}
	r.out.Reset()
	p = r.init(t)
	if p.State != StateReady {
		t.Errorf("state %s", p.State)
	}
	if n := len(r.fake.CallsOf("CreateStack")); n != 1 {
		t.Errorf("CreateStack called %d times", n)
	}
	if n := len(r.fake.CallsOf("CreateKeyPair")); n != 1 {
		t.Errorf("CreateKeyPair called %d times", n)
	}
	if !strings.Contains(r.out.String(), "carrying on with cluster gamma") {
		t.Errorf("output:\n%s", r.out)
	}
	_, err = r.cluster(t).Init(context.Background(), r.opts)
	if err == nil || !strings.Contains(err.Error(), "cluster gamma already exists") {
		t.Errorf("init of a ready cluster: %v", err)
	}
}

// A key pair left by an interrupted init (before its stack was asked for)
// is reused when its private key is here.
func TestAWSInitReusesKeyPair(t *testing.T) {
	r := newRig(t, "delta")
	dir, _ := Dir("delta")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), r.sshd.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	r.fake.KeyPairs["delta"] = &awstest.KeyPair{Name: "delta", Tags: map[string]string{TagCluster: "delta"}}
	r.init(t)
	if n := len(r.fake.CallsOf("CreateKeyPair")); n != 0 {
		t.Errorf("CreateKeyPair called %d times", n)
	}
	if !strings.Contains(r.out.String(), "reusing key pair delta") {
		t.Errorf("output:\n%s", r.out)
	}
}

func TestAWSInitFailedStackExplains(t *testing.T) {
	r := newRig(t, "eps")
	r.fake.CreateStatuses = []string{"CREATE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE"}
	for range 2 { // the same explanation when run again
		_, err := r.cluster(t).Init(context.Background(), r.opts)
		if err == nil || !strings.Contains(err.Error(), "ROLLBACK_COMPLETE") || !strings.Contains(err.Error(), "sufficient c5.4xlarge capacity") ||
			!strings.Contains(err.Error(), "simswarm aws remove --name eps first") {
			t.Fatalf("init of a rolled-back stack: %v", err)
		}
	}
	if n := len(r.fake.CallsOf("CreateStack")); n != 1 {
		t.Errorf("CreateStack called %d times", n)
	}
}

func TestAWSInitNameTaken(t *testing.T) {
	r := newRig(t, "taken")
	r.fake.Stacks["taken"] = &awstest.Stack{Name: "taken", ID: "arn:aws:cloudformation:us-east-1:1:stack/taken/x", Status: "CREATE_COMPLETE"}
	_, err := r.cluster(t).Init(context.Background(), r.opts)
	if err == nil || !strings.Contains(err.Error(), "the name taken is taken") {
		t.Fatalf("init over someone's stack: %v", err)
	}
	delete(r.fake.Stacks, "taken")
	r.fake.KeyPairs["taken"] = &awstest.KeyPair{Name: "taken"}
	_, err = r.cluster(t).Init(context.Background(), r.opts)
	if err == nil || !strings.Contains(err.Error(), "key pair taken exists") || !strings.Contains(err.Error(), "private key is not on this machine") {
		t.Fatalf("init over someone's key pair: %v", err)
	}
	if r.fake.CallsOf("CreateStack") != nil || r.fake.CallsOf("CreateKeyPair") != nil {
		t.Error("init created something under a taken name")
	}
}

func TestAWSInitSSHCIDR(t *testing.T) {
	r := newRig(t, "zeta")
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusServiceUnavailable) }))
	defer down.Close()
	r.opts.IPEndpoint = down.URL
	_, err := r.cluster(t).Init(context.Background(), r.opts)
	if err == nil || !strings.Contains(err.Error(), "pass --ssh-cidr") {
		t.Fatalf("init without a discoverable address: %v", err)
	}
	for _, bad := range []string{"0.0.0.0/0", "nonsense", "2001:db8::1/128"} {
		r.opts.SSHCIDR = bad
		_, err := r.cluster(t).Init(context.Background(), r.opts)
		if err == nil || !strings.Contains(err.Error(), "--ssh-cidr") {
			t.Errorf("--ssh-cidr %s: %v", bad, err)
		}
	}
	if r.fake.CallsOf("CreateStack") != nil || r.fake.CallsOf("CreateKeyPair") != nil {
		t.Error("init created something without an SSH rule")
	}
	r.opts.SSHCIDR = "198.51.100.9/32"
	r.init(t)
	if f := r.fake.CallsOf("CreateStack")[0].Form; !strings.Contains(f.Encode(), "198.51.100.9%2F32") {
		t.Errorf("--ssh-cidr not passed: %v", f)
	}
}

func TestAWSBadInputs(t *testing.T) {
	r := newRig(t, "eta")
	for _, c := range []struct {
		mutate func(*InitOptions)
		want   string
	}{
		{func(o *InitOptions) { o.Workers = -1 }, "--workers -1"},
		{func(o *InitOptions) { o.WorkerType = "huge" }, "--instance-type \"huge\" is not an EC2 instance type"},
		{func(o *InitOptions) { o.ManagerType = "c7g.large" }, "different CPU architectures"},
		{func(o *InitOptions) { o.StackFile = "/nonexistent/stack.yml" }, "stack file /nonexistent/stack.yml: no such file"},
	} {
		o := r.opts
		c.mutate(&o)
		_, err := r.cluster(t).Init(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("got %v, want one line with %q", err, c.want)
		}
	}
	cl := r.cluster(t)
	cl.Name = "Bad_Name"
	if _, err := cl.Init(context.Background(), r.opts); err == nil || !strings.Contains(err.Error(), "cluster name \"Bad_Name\"") {
		t.Errorf("bad name: %v", err)
	}
	if _, err := LoadProfile("nothing"); err == nil || !strings.Contains(err.Error(), "no cluster named \"nothing\" on this machine") {
		t.Errorf("missing profile: %v", err)
	}
	// remove of a stack that exists but was not made by the tool
	r.fake.Stacks["eta"] = &awstest.Stack{Name: "eta", ID: "arn:x", Status: "CREATE_COMPLETE"}
	if err := r.cluster(t).Remove(context.Background()); err == nil || !strings.Contains(err.Error(), "was not made by simswarm aws") {
		t.Errorf("remove of a foreign stack: %v", err)
	}
	if r.fake.CallsOf("DeleteStack") != nil {
		t.Error("a foreign stack was deleted")
	}
	// halt without a stack
	delete(r.fake.Stacks, "eta")
	if err := r.cluster(t).Halt(context.Background(), &Profile{Name: "eta"}); err == nil || !strings.Contains(err.Error(), "stack eta does not exist in us-east-1") {
		t.Errorf("halt without a stack: %v", err)
	}
}

func TestAWSNoCredentials(t *testing.T) {
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": "/nonexistent/config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "",
	} {
		t.Setenv(k, v)
		if v == "" {
			os.Unsetenv(k)
		}
	}
	_, err := Load(context.Background(), Settings{})
	if err == nil {
		t.Fatal("no error without credentials")
	}
	for _, want := range []string{"no AWS credentials", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "~/.aws/credentials"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %s", err, want)
		}
	}
	_, err = Load(context.Background(), Settings{Profile: "nosuch"})
	if err == nil || !strings.Contains(err.Error(), `AWS profile "nosuch"`) {
		t.Errorf("missing profile: %v", err)
	}
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	_, err = Load(context.Background(), Settings{})
	if err == nil || !strings.Contains(err.Error(), "--region") {
		t.Errorf("no region: %v", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Error("timed out")
	}
}
