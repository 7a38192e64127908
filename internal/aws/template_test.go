package aws

// Invariants of the embedded CloudFormation template that AWS would not
// check for us: who may reach which port, the idle alarm, where instance
// types come from, how the join token travels.

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

type tmpl struct {
	Parameters map[string]map[string]any
	Resources  map[string]struct {
		Type       string
		DependsOn  any
		Properties map[string]any
	}
	Outputs map[string]map[string]any
}

func parseTemplate(t *testing.T) tmpl {
	t.Helper()
	var tp tmpl
	if err := json.Unmarshal([]byte(Template()), &tp); err != nil {
		t.Fatalf("the embedded template is not JSON: %v", err)
	}
	return tp
}

func ref(name string) map[string]any { return map[string]any{"Ref": name} }

func getAtt(res, attr string) map[string]any {
	return map[string]any{"Fn::GetAtt": []any{res, attr}}
}

func num(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		var f float64
		fmt.Sscan(x, &f)
		return f
	}
	return -1
}

func TestAWSTemplateIngress(t *testing.T) {
	tp := parseTemplate(t)
	self := getAtt("SecurityGroup", "GroupId")
	type rule struct {
		proto string
		port  int
	}
	fromSelf := map[rule]bool{}
	var rules []map[string]any
	if sg := tp.Resources["SecurityGroup"]; sg.Type == "AWS::EC2::SecurityGroup" {
		for _, r := range sg.Properties["SecurityGroupIngress"].([]any) {
			rules = append(rules, r.(map[string]any))
		}
	} else {
		t.Fatal("no security group SecurityGroup")
	}
	for name, r := range tp.Resources {
		switch r.Type {
		case "AWS::EC2::SecurityGroupIngress":
			if !reflect.DeepEqual(r.Properties["GroupId"], self) {
				t.Errorf("%s opens another group than the cluster's", name)
			}
			rules = append(rules, r.Properties)
		case "AWS::EC2::SecurityGroup":
			if name != "SecurityGroup" {
				t.Errorf("unexpected second security group %s", name)
			}
		}
	}
	ssh := 0
	for _, r := range rules {
		for _, k := range []string{"CidrIpv6", "SourcePrefixListId"} {
			if _, ok := r[k]; ok {
				t.Errorf("ingress rule %v admits by %s", r, k)
			}
		}
		from, to := int(num(r["FromPort"])), int(num(r["ToPort"]))
		if from != to {
			t.Errorf("ingress rule %v opens a port range", r)
		}
		if cidr, ok := r["CidrIp"]; ok {
			// The only rule open to addresses: SSH, from the parameter.
			if !reflect.DeepEqual(cidr, ref("SshCidr")) || r["IpProtocol"] != "tcp" || from != 22 {
				t.Errorf("ingress rule %v admits addresses other than SSH from SshCidr", r)
			}
			ssh++
			continue
		}
		if !reflect.DeepEqual(r["SourceSecurityGroupId"], self) {
			t.Errorf("ingress rule %v is neither SSH from SshCidr nor from the group itself", r)
			continue
		}
		fromSelf[rule{r["IpProtocol"].(string), from}] = true
	}
	if ssh != 1 {
		t.Errorf("%d SSH rules, want exactly 1", ssh)
	}
	for _, want := range []rule{{"tcp", 2377}, {"tcp", 7946}, {"udp", 7946}, {"udp", 4789}, {"tcp", 4222}} {
		if !fromSelf[want] {
			t.Errorf("no rule admitting %s/%d from the group itself", want.proto, want.port)
		}
		delete(fromSelf, want)
	}
	for extra := range fromSelf {
		t.Errorf("unexpected port open within the group: %v", extra)
	}
	// No address range anywhere but the default route's.
	walk(tp, "", func(path string, v any) {
		if s, ok := v.(string); ok && s == "0.0.0.0/0" && path != ".Resources.DefaultRoute.Properties.DestinationCidrBlock" {
			t.Errorf("0.0.0.0/0 at %s", path)
		}
	})
}

func walk(v any, path string, f func(string, any)) {
	b, _ := json.Marshal(v)
	var g any
	_ = json.Unmarshal(b, &g)
	var rec func(string, any)
	rec = func(p string, x any) {
		f(p, x)
		switch y := x.(type) {
		case map[string]any:
			for k, c := range y {
				rec(p+"."+k, c)
			}
		case []any:
			for i, c := range y {
				rec(fmt.Sprintf("%s[%d]", p, i), c)
			}
		}
	}
	rec(path, g)
}

func TestAWSTemplateIdleAlarm(t *testing.T) {
	tp := parseTemplate(t)
	var alarms []string
	for name, r := range tp.Resources {
		if r.Type == "AWS::CloudWatch::Alarm" {
			alarms = append(alarms, name)
		}
	}
	if len(alarms) != 1 {
		t.Fatalf("alarms %v, want one", alarms)
	}
	a := tp.Resources[alarms[0]].Properties
	checks := map[string]any{
		"Namespace": "AWS/EC2", "MetricName": "CPUUtilization", "Statistic": "Average",
		"ComparisonOperator": "LessThanThreshold",
	}
	for k, want := range checks {
		if a[k] != want {
			t.Errorf("alarm %s = %v, want %v", k, a[k], want)
		}
	}
	for k, want := range map[string]float64{"Threshold": 10, "Period": 900, "EvaluationPeriods": 4} {
		if num(a[k]) != want {
			t.Errorf("alarm %s = %v, want %v", k, a[k], want)
		}
	}
	dims := a["Dimensions"].([]any)
	if len(dims) != 1 || !reflect.DeepEqual(dims[0], map[string]any{"Name": "InstanceId", "Value": ref("Manager")}) {
		t.Errorf("alarm dimensions %v, want the manager's InstanceId", dims)
	}
	var stop, scale bool
	for _, act := range a["AlarmActions"].([]any) {
		m := act.(map[string]any)
		if s, ok := m["Fn::Sub"].(string); ok && strings.HasSuffix(s, ":ec2:stop") && strings.Contains(s, ":automate:") {
			stop = true
		}
		if r, ok := m["Ref"].(string); ok {
			p := tp.Resources[r]
			if p.Type == "AWS::AutoScaling::ScalingPolicy" && p.Properties["AdjustmentType"] == "ExactCapacity" &&
				num(p.Properties["ScalingAdjustment"]) == 0 && reflect.DeepEqual(p.Properties["AutoScalingGroupName"], ref("Workers")) {
				scale = true
			}
		}
	}
	if !stop || !scale {
		t.Errorf("alarm actions %v: stop the manager %v, workers to 0 %v; want both", a["AlarmActions"], stop, scale)
	}
	// The group may go to 0: a minimum above it would defeat the policy.
	if g := tp.Resources["Workers"].Properties; num(g["MinSize"]) != 0 {
		t.Errorf("worker group MinSize %v, want 0", g["MinSize"])
	}
}

func TestAWSTemplateInstancesFromParameters(t *testing.T) {
	tp := parseTemplate(t)
	m := tp.Resources["Manager"]
	if m.Type != "AWS::EC2::Instance" || !reflect.DeepEqual(m.Properties["InstanceType"], ref("ManagerInstanceType")) {
		t.Errorf("manager instance type %v, want Ref ManagerInstanceType", m.Properties["InstanceType"])
	}
	lt := tp.Resources["WorkerTemplate"].Properties["LaunchTemplateData"].(map[string]any)
	if !reflect.DeepEqual(lt["InstanceType"], ref("WorkerInstanceType")) {
		t.Errorf("worker instance type %v, want Ref WorkerInstanceType", lt["InstanceType"])
	}
	g := tp.Resources["Workers"]
	if g.Type != "AWS::AutoScaling::AutoScalingGroup" || !reflect.DeepEqual(g.Properties["DesiredCapacity"], ref("WorkerCount")) {
		t.Errorf("worker group %v, want an auto-scaling group sized by Ref WorkerCount", g.Properties)
	}
	for _, k := range []string{"ImageId", "KeyName"} {
		if !reflect.DeepEqual(m.Properties[k], ref(k)) || !reflect.DeepEqual(lt[k], ref(k)) {
			t.Errorf("%s of manager %v / workers %v, want Ref %s", k, m.Properties[k], lt[k], k)
		}
	}
	for _, role := range []string{"ManagerRole", "WorkerRole"} {
		if tp.Resources[role].Type != "AWS::IAM::Role" {
			t.Errorf("no instance role %s", role)
		}
	}

	// What the tool passes is what the template declares, and nothing
	// the template needs is left out.
	passed := map[string]bool{}
	for _, p := range stackParameters("n", "k", "c5.xlarge", "c5.4xlarge", 3, "203.0.113.7/32") {
		passed[*p.ParameterKey] = true
		if _, ok := tp.Parameters[*p.ParameterKey]; !ok {
			t.Errorf("the tool passes parameter %s the template does not declare", *p.ParameterKey)
		}
	}
	for name, p := range tp.Parameters {
		if _, hasDefault := p["Default"]; !hasDefault && !passed[name] {
			t.Errorf("template parameter %s has no default and the tool does not pass it", name)
		}
	}
	if re := regexp.MustCompile(tp.Parameters["SshCidr"]["AllowedPattern"].(string)); !re.MatchString("203.0.113.7/32") || re.MatchString("x") {
		t.Errorf("SshCidr pattern %q", re)
	}
}

// Every Ref and GetAtt names a parameter, a resource or a pseudo
// parameter; every output the tool reads exists.
func TestAWSTemplateReferences(t *testing.T) {
	tp := parseTemplate(t)
	known := func(n string) bool {
		_, p := tp.Parameters[n]
		_, r := tp.Resources[n]
		return p || r || strings.HasPrefix(n, "AWS::")
	}
	walk(tp, "", func(path string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		if r, ok := m["Ref"].(string); ok && !known(r) {
			t.Errorf("%s: Ref %s names nothing", path, r)
		}
		if g, ok := m["Fn::GetAtt"].([]any); ok {
			if _, ok := tp.Resources[g[0].(string)]; !ok {
				t.Errorf("%s: GetAtt %v names no resource", path, g)
			}
		}
	})
	for _, out := range []string{outManagerID, outManagerIP, outPrivateIP, outHostKey, outWorkerGroup, outAlarm, outTokenParam} {
		if _, ok := tp.Outputs[out]; !ok {
			t.Errorf("no output %s", out)
		}
	}
	if !reflect.DeepEqual(tp.Outputs[outHostKey]["Value"], getAtt("ManagerReady", "Data")) {
		t.Errorf("host key output %v, want the wait condition's data", tp.Outputs[outHostKey]["Value"])
	}
	for name, o := range tp.Outputs {
		if strings.Contains(fmt.Sprint(o["Value"]), "join-token -q") {
			t.Errorf("output %s may expose the join token", name)
		}
	}
}

// userData returns the script and its Fn::Sub variables.
func userData(t *testing.T, ud any) (string, map[string]any) {
	t.Helper()
	sub := ud.(map[string]any)["Fn::Base64"].(map[string]any)["Fn::Sub"].([]any)
	return sub[0].(string), sub[1].(map[string]any)
}

// The join token goes through SSM Parameter Store as a SecureString, and
// the scripts are valid shell with only known substitutions.
func TestAWSTemplateUserData(t *testing.T) {
	tp := parseTemplate(t)
	manager, mvars := userData(t, tp.Resources["Manager"].Properties["UserData"])
	worker, wvars := userData(t, tp.Resources["WorkerTemplate"].Properties["LaunchTemplateData"].(map[string]any)["UserData"])
	for _, want := range []string{"docker swarm init", "join-token -q worker", "put-parameter", "--type SecureString", "file://", "ssh_host_ed25519_key.pub", "${ManagerReadyHandle}"} {
		if !strings.Contains(manager, want) {
			t.Errorf("manager user data lacks %q", want)
		}
	}
	for _, want := range []string{"get-parameter", "--with-decryption", "docker swarm join", "${ManagerAddress}:2377"} {
		if !strings.Contains(worker, want) {
			t.Errorf("worker user data lacks %q", want)
		}
	}
	// The token never appears on a command line of its own making in the
	// manager's script: it goes from docker into a 0600 file into SSM.
	if !strings.Contains(manager, "umask 077") || strings.Contains(manager, "--value \"$(") {
		t.Error("manager user data passes the join token on a command line or without umask 077")
	}
	subRE := regexp.MustCompile(`\$\{([^}!]+)\}`)
	for who, s := range map[string]struct {
		script string
		vars   map[string]any
	}{"manager": {manager, mvars}, "worker": {worker, wvars}} {
		for _, m := range subRE.FindAllStringSubmatch(s.script, -1) {
			n := m[1]
			_, isVar := s.vars[n]
			if !isVar && !strings.HasPrefix(n, "AWS::") && tp.Resources[n].Type == "" && tp.Parameters[n] == nil {
				t.Errorf("%s user data substitutes unknown ${%s}", who, n)
			}
		}
		if _, err := exec.LookPath("bash"); err != nil {
			continue
		}
		plain := subRE.ReplaceAllString(s.script, "X")
		cmd := exec.Command("bash", "-n")
		cmd.Stdin = strings.NewReader(plain)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s user data is not valid bash: %v\n%s", who, err, out)
		}
	}
}

func TestAWSImageParameterFollowsArchitecture(t *testing.T) {
	for typ, arch := range map[string]string{"c5.4xlarge": "x86_64", "c7g.4xlarge": "arm64", "t4g.small": "arm64", "m7i.large": "x86_64", "c6gn.xlarge": "arm64", "g4dn.xlarge": "x86_64"} {
		if got := imageParameter(typ); !strings.HasSuffix(got, "-"+arch) {
			t.Errorf("%s: %s, want %s", typ, got, arch)
		}
	}
}
