// Package awstest is a local stand-in for the AWS endpoints simswarm aws
// calls. AWS cannot be reached from tests (no network, no account), so an
// httptest server speaks the wire protocols the SDK uses — the query
// protocol (form-encoded Action=..., XML answers) for CloudFormation, EC2
// and Auto Scaling, the JSON protocol for SSM, and the CBOR RPC protocol
// CloudWatch now uses — for exactly the operations the tool calls, records
// every request for the tests to assert on, and keeps just enough state
// (stacks, key pairs, instances, the worker group, alarms, parameters) for
// a cluster's life: init, status, halt, resume, remove.
package awstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// Call is one recorded request.
type Call struct {
	Service string     // cloudformation, ec2, autoscaling, ssm, cloudwatch
	Action  string     // CreateStack, ...
	Form    url.Values // query protocol parameters
	JSON    map[string]any
	CBOR    cbor.Map
}

// Stack is a CloudFormation stack as the stand-in keeps it.
type Stack struct {
	Name, ID     string
	Status       string
	StatusReason string
	// Next are the statuses later DescribeStacks calls see, one per call:
	// a stack is created or deleted over a few polls.
	Next     []string
	Params   map[string]string
	Tags     map[string]string
	Outputs  map[string]string
	Template string
	Events   []Event // oldest first
}

// Event is a stack event.
type Event struct {
	ID, Logical, Type, Status, Reason string
}

// Instance is an EC2 instance.
type Instance struct {
	ID, Type, State, Address, Group string
}

// KeyPair is an EC2 key pair.
type KeyPair struct {
	Name string
	Tags map[string]string
}

// Fake is the stand-in. Tests set its public fields before and inspect
// them after; the mutex guards them while the server runs.
type Fake struct {
	URL string

	Mu        sync.Mutex
	Calls     []Call
	Stacks    map[string]*Stack // by name; deleted ones are removed
	KeyPairs  map[string]*KeyPair
	Instances map[string]*Instance
	Alarms    map[string]string // alarm name -> state
	Params    map[string]string // SSM parameters

	// KeyMaterial is what CreateKeyPair returns as the private key.
	KeyMaterial string
	// CreateStatuses are the statuses a new stack goes through
	// (default CREATE_IN_PROGRESS, CREATE_COMPLETE).
	CreateStatuses []string
	// Outputs fills a new stack's outputs (default: none).
	Outputs func(s *Stack) map[string]string
	// WorkerType and ManagerAddress describe the instances a stack makes.
	ManagerAddress string
	nextID         int
}

// Start starts the stand-in and points the tool at it through the
// environment (SIMSWARM_AWS_ENDPOINT, test credentials, us-east-1, no
// instance metadata service, no shared config files).
func Start(t testing.TB) *Fake {
	t.Helper()
	f := &Fake{
		Stacks: map[string]*Stack{}, KeyPairs: map[string]*KeyPair{}, Instances: map[string]*Instance{},
		Alarms: map[string]string{}, Params: map[string]string{},
		ManagerAddress: "127.0.0.1",
	}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	for k, v := range Env(f.URL) {
		t.Setenv(k, v)
		if v == "" {
			os.Unsetenv(k) // t.Setenv restores it after the test
		}
	}
	return f
}

// Env is the environment that points the tool at a stand-in at url with
// test credentials; empty values are variables to unset.
func Env(url string) map[string]string {
	return map[string]string{
		"SIMSWARM_AWS_ENDPOINT":       url,
		"AWS_ACCESS_KEY_ID":           "test",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  "us-east-1",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             "/nonexistent/simswarm-test/config",
		"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/simswarm-test/credentials",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL":            "",
	}
}

// CallsOf returns the recorded calls of one action.
func (f *Fake) CallsOf(action string) []Call {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	var out []Call
	for _, c := range f.Calls {
		if c.Action == action {
			out = append(out, c)
		}
	}
	return out
}

// Actions lists the recorded actions in order, as "service:Action".
func (f *Fake) Actions() []string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	var out []string
	for _, c := range f.Calls {
		out = append(out, c.Service+":"+c.Action)
	}
	return out
}

var queryVersions = map[string]string{
	"2010-05-15": "cloudformation",
	"2016-11-15": "ec2",
	"2011-01-01": "autoscaling",
}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if !strings.Contains(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=test/") {
		http.Error(w, "unsigned request", http.StatusForbidden)
		return
	}
	f.Mu.Lock()
	defer f.Mu.Unlock()
	switch {
	case strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AmazonSSM."):
		c := Call{Service: "ssm", Action: strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSSM.")}
		_ = json.Unmarshal(body, &c.JSON)
		f.Calls = append(f.Calls, c)
		f.ssm(w, c)
	case strings.HasPrefix(r.URL.Path, "/service/GraniteServiceVersion20100801/operation/"):
		c := Call{Service: "cloudwatch", Action: strings.TrimPrefix(r.URL.Path, "/service/GraniteServiceVersion20100801/operation/")}
		if v, err := cbor.Decode(body); err == nil {
			c.CBOR, _ = v.(cbor.Map)
		}
		f.Calls = append(f.Calls, c)
		f.cloudwatch(w, c)
	default:
		form, err := url.ParseQuery(string(body))
		if err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		c := Call{Service: queryVersions[form.Get("Version")], Action: form.Get("Action"), Form: form}
		f.Calls = append(f.Calls, c)
		switch c.Service {
		case "cloudformation":
			f.cloudformation(w, c)
		case "ec2":
			f.ec2(w, c)
		case "autoscaling":
			f.autoscaling(w, c)
		default:
			queryError(w, "InvalidAction", "the stand-in does not know API version "+form.Get("Version"))
		}
	}
}

// ---- XML ----

type node struct {
	tag  string
	text string
	kids []node
}

func el(tag string, kids ...node) node { return node{tag: tag, kids: kids} }
func tx(tag, text string) node         { return node{tag: tag, text: text} }

func (n node) write(b *bytes.Buffer) {
	b.WriteString("<" + n.tag + ">")
	if n.text != "" {
		_ = xmlEscape(b, n.text)
	}
	for _, k := range n.kids {
		k.write(b)
	}
	b.WriteString("</" + n.tag + ">")
}

func xmlEscape(b *bytes.Buffer, s string) error {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")
	_, err := r.WriteString(b, s)
	return err
}

func writeXML(w http.ResponseWriter, status int, root node) {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	root.write(&b)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// queryResult answers a CloudFormation or Auto Scaling action.
func queryResult(w http.ResponseWriter, action string, result ...node) {
	writeXML(w, 200, el(action+"Response", el(action+"Result", result...), el("ResponseMetadata", tx("RequestId", "req-1"))))
}

func queryError(w http.ResponseWriter, code, msg string) {
	writeXML(w, 400, el("ErrorResponse", el("Error", tx("Type", "Sender"), tx("Code", code), tx("Message", msg)), tx("RequestId", "req-1")))
}

func ec2Error(w http.ResponseWriter, code, msg string) {
	writeXML(w, 400, el("Response", el("Errors", el("Error", tx("Code", code), tx("Message", msg))), tx("RequestID", "req-1")))
}

// members reads a query-protocol list: prefix.member.N.field (or
// prefix.N.field for EC2) into maps of fields, in order.
func members(form url.Values, prefix string) []map[string]string {
	var out []map[string]string
	for i := 1; ; i++ {
		p := prefix + "." + strconv.Itoa(i)
		m := map[string]string{}
		for k, v := range form {
			if k == p {
				m[""] = v[0]
			} else if strings.HasPrefix(k, p+".") {
				m[strings.TrimPrefix(k, p+".")] = v[0]
			}
		}
		if len(m) == 0 {
			return out
		}
		out = append(out, m)
	}
}

// ---- CloudFormation ----

func (f *Fake) stackByNameOrID(id string) *Stack {
	if s, ok := f.Stacks[id]; ok {
		return s
	}
	for _, s := range f.Stacks {
		if s.ID == id {
			return s
		}
	}
	return nil
}

func (f *Fake) cloudformation(w http.ResponseWriter, c Call) {
	name := c.Form.Get("StackName")
	switch c.Action {
	case "CreateStack":
		if _, ok := f.Stacks[name]; ok {
			queryError(w, "AlreadyExistsException", "Stack ["+name+"] already exists")
			return
		}
		f.nextID++
		s := &Stack{Name: name, ID: fmt.Sprintf("arn:aws:cloudformation:us-east-1:123456789012:stack/%s/id-%d", name, f.nextID),
			Params: map[string]string{}, Tags: map[string]string{}, Template: c.Form.Get("TemplateBody")}
		for _, p := range members(c.Form, "Parameters.member") {
			s.Params[p["ParameterKey"]] = p["ParameterValue"]
		}
		for _, t := range members(c.Form, "Tags.member") {
			s.Tags[t["Key"]] = t["Value"]
		}
		st := f.CreateStatuses
		if len(st) == 0 {
			st = []string{"CREATE_IN_PROGRESS", "CREATE_COMPLETE"}
		}
		s.Status, s.Next = st[0], append([]string(nil), st[1:]...)
		s.Events = append(s.Events, Event{ID: "e1", Logical: name, Type: "AWS::CloudFormation::Stack", Status: "CREATE_IN_PROGRESS"},
			Event{ID: "e2", Logical: "Manager", Type: "AWS::EC2::Instance", Status: "CREATE_IN_PROGRESS"})
		if f.Outputs != nil {
			s.Outputs = f.Outputs(s)
		}
		f.Stacks[name] = s
		queryResult(w, "CreateStack", tx("StackId", s.ID))
	case "DescribeStacks":
		s := f.stackByNameOrID(name)
		if s == nil {
			queryError(w, "ValidationError", "Stack with id "+name+" does not exist")
			return
		}
		f.advance(s)
		if s.Status == "DELETE_COMPLETE" && s.Name == name {
			delete(f.Stacks, s.Name)
			queryError(w, "ValidationError", "Stack with id "+name+" does not exist")
			return
		}
		if s.Status == "DELETE_COMPLETE" {
			delete(f.Stacks, s.Name)
		}
		queryResult(w, "DescribeStacks", el("Stacks", el("member", f.stackXML(s)...)))
	case "DescribeStackEvents":
		s := f.stackByNameOrID(name)
		if s == nil {
			queryError(w, "ValidationError", "Stack ["+name+"] does not exist")
			return
		}
		var evs []node
		for i := len(s.Events) - 1; i >= 0; i-- { // newest first, as AWS
			e := s.Events[i]
			evs = append(evs, el("member", tx("EventId", e.ID), tx("StackId", s.ID), tx("StackName", s.Name),
				tx("LogicalResourceId", e.Logical), tx("ResourceType", e.Type), tx("ResourceStatus", e.Status),
				tx("ResourceStatusReason", e.Reason), tx("Timestamp", time.Now().UTC().Format(time.RFC3339))))
		}
		queryResult(w, "DescribeStackEvents", el("StackEvents", evs...))
	case "DeleteStack":
		if s := f.stackByNameOrID(name); s != nil {
			s.Status, s.Next = "DELETE_IN_PROGRESS", []string{"DELETE_COMPLETE"}
			s.Events = append(s.Events, Event{ID: fmt.Sprintf("d%d", len(s.Events)), Logical: "Manager", Type: "AWS::EC2::Instance", Status: "DELETE_IN_PROGRESS"})
		}
		queryResult(w, "DeleteStack")
	default:
		queryError(w, "InvalidAction", "the stand-in does not implement cloudformation "+c.Action)
	}
}

// advance moves a stack to its next status, making its instances when it
// completes and dropping them when it is deleted.
func (f *Fake) advance(s *Stack) {
	if len(s.Next) == 0 {
		return
	}
	s.Status, s.Next = s.Next[0], s.Next[1:]
	s.Events = append(s.Events, Event{ID: fmt.Sprintf("s%d", len(s.Events)), Logical: s.Name, Type: "AWS::CloudFormation::Stack", Status: s.Status})
	switch s.Status {
	case "CREATE_COMPLETE":
		s.Events = append(s.Events, Event{ID: fmt.Sprintf("m%d", len(s.Events)), Logical: "Manager", Type: "AWS::EC2::Instance", Status: "CREATE_COMPLETE"})
		if id := s.Outputs["ManagerInstanceId"]; id != "" {
			f.Instances[id] = &Instance{ID: id, Type: s.Params["ManagerInstanceType"], State: "running", Address: f.ManagerAddress}
		}
		if g := s.Outputs["WorkerGroupName"]; g != "" {
			n, _ := strconv.Atoi(s.Params["WorkerCount"])
			f.scale(g, s.Params["WorkerInstanceType"], n)
		}
		if a := s.Outputs["IdleAlarmName"]; a != "" {
			f.Alarms[a] = "INSUFFICIENT_DATA"
		}
	case "ROLLBACK_COMPLETE", "ROLLBACK_IN_PROGRESS":
		s.Events = append(s.Events, Event{ID: fmt.Sprintf("f%d", len(s.Events)), Logical: "Manager", Type: "AWS::EC2::Instance", Status: "CREATE_FAILED",
			Reason: "We currently do not have sufficient c5.4xlarge capacity in the Availability Zone you requested"})
	case "DELETE_COMPLETE":
		for id, in := range f.Instances {
			if id == s.Outputs["ManagerInstanceId"] || (in.Group != "" && in.Group == s.Outputs["WorkerGroupName"]) {
				delete(f.Instances, id)
			}
		}
		delete(f.Alarms, s.Outputs["IdleAlarmName"])
	}
}

func (f *Fake) stackXML(s *Stack) []node {
	kids := []node{tx("StackName", s.Name), tx("StackId", s.ID), tx("StackStatus", s.Status),
		tx("CreationTime", "2026-01-01T00:00:00Z")}
	if s.StatusReason != "" {
		kids = append(kids, tx("StackStatusReason", s.StatusReason))
	}
	var params, tags, outs []node
	for _, k := range sortedKeys(s.Params) {
		params = append(params, el("member", tx("ParameterKey", k), tx("ParameterValue", s.Params[k])))
	}
	for _, k := range sortedKeys(s.Tags) {
		tags = append(tags, el("member", tx("Key", k), tx("Value", s.Tags[k])))
	}
	if s.Status == "CREATE_COMPLETE" || s.Status == "UPDATE_COMPLETE" {
		for _, k := range sortedKeys(s.Outputs) {
			outs = append(outs, el("member", tx("OutputKey", k), tx("OutputValue", s.Outputs[k])))
		}
	}
	return append(kids, el("Parameters", params...), el("Tags", tags...), el("Outputs", outs...))
}

func sortedKeys(m map[string]string) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

// ---- EC2 ----

func (f *Fake) ec2(w http.ResponseWriter, c Call) {
	switch c.Action {
	case "DescribeKeyPairs":
		name := c.Form.Get("KeyName.1")
		k, ok := f.KeyPairs[name]
		if !ok {
			ec2Error(w, "InvalidKeyPair.NotFound", "The key pair '"+name+"' does not exist")
			return
		}
		var tags []node
		for _, t := range sortedKeys(k.Tags) {
			tags = append(tags, el("item", tx("key", t), tx("value", k.Tags[t])))
		}
		writeXML(w, 200, el("DescribeKeyPairsResponse", tx("requestId", "req-1"),
			el("keySet", el("item", tx("keyName", k.Name), tx("keyPairId", "key-0123"), tx("keyType", "ed25519"), el("tagSet", tags...)))))
	case "CreateKeyPair":
		name := c.Form.Get("KeyName")
		if _, ok := f.KeyPairs[name]; ok {
			ec2Error(w, "InvalidKeyPair.Duplicate", "The keypair '"+name+"' already exists.")
			return
		}
		k := &KeyPair{Name: name, Tags: map[string]string{}}
		for _, t := range members(c.Form, "TagSpecification.1.Tag") {
			k.Tags[t["Key"]] = t["Value"]
		}
		f.KeyPairs[name] = k
		writeXML(w, 200, el("CreateKeyPairResponse", tx("requestId", "req-1"), tx("keyName", name),
			tx("keyFingerprint", "00:11"), tx("keyMaterial", f.KeyMaterial), tx("keyPairId", "key-0123")))
	case "DeleteKeyPair":
		delete(f.KeyPairs, c.Form.Get("KeyName"))
		writeXML(w, 200, el("DeleteKeyPairResponse", tx("requestId", "req-1"), tx("return", "true")))
	case "DescribeInstances":
		var items []node
		for _, in := range f.matchInstances(c.Form) {
			items = append(items, instanceXML(in))
		}
		var res []node
		if len(items) > 0 {
			res = append(res, el("item", tx("reservationId", "r-1"), el("instancesSet", items...)))
		}
		writeXML(w, 200, el("DescribeInstancesResponse", tx("requestId", "req-1"), el("reservationSet", res...)))
	case "StopInstances", "StartInstances":
		var items []node
		for _, m := range members(c.Form, "InstanceId") {
			in, ok := f.Instances[m[""]]
			if !ok {
				ec2Error(w, "InvalidInstanceID.NotFound", "The instance ID '"+m[""]+"' does not exist")
				return
			}
			prev := in.State
			if c.Action == "StopInstances" {
				in.State, in.Address = "stopped", ""
			} else {
				in.State, in.Address = "running", f.ManagerAddress
			}
			items = append(items, el("item", tx("instanceId", in.ID),
				el("previousState", tx("code", "0"), tx("name", prev)), el("currentState", tx("code", "0"), tx("name", in.State))))
		}
		writeXML(w, 200, el(c.Action+"Response", tx("requestId", "req-1"), el("instancesSet", items...)))
	default:
		ec2Error(w, "InvalidAction", "the stand-in does not implement ec2 "+c.Action)
	}
}

func (f *Fake) matchInstances(form url.Values) []*Instance {
	ids := map[string]bool{}
	for _, m := range members(form, "InstanceId") {
		ids[m[""]] = true
	}
	group := ""
	for _, flt := range members(form, "Filter") {
		if flt["Name"] == "tag:aws:autoscaling:groupName" {
			group = flt["Value.1"]
		}
	}
	var out []*Instance
	for _, id := range sortedInstanceIDs(f.Instances) {
		in := f.Instances[id]
		if len(ids) > 0 && !ids[id] {
			continue
		}
		if group != "" && in.Group != group {
			continue
		}
		out = append(out, in)
	}
	return out
}

func sortedInstanceIDs(m map[string]*Instance) []string {
	var k []string
	for id := range m {
		k = append(k, id)
	}
	sort.Strings(k)
	return k
}

func instanceXML(in *Instance) node {
	kids := []node{tx("instanceId", in.ID), tx("instanceType", in.Type),
		el("instanceState", tx("code", "16"), tx("name", in.State)), tx("privateIpAddress", "10.42.0.10")}
	if in.Address != "" {
		kids = append(kids, tx("ipAddress", in.Address))
	}
	return el("item", kids...)
}

// scale makes the group hold n running workers.
func (f *Fake) scale(group, typ string, n int) {
	var have []string
	for _, id := range sortedInstanceIDs(f.Instances) {
		if f.Instances[id].Group == group {
			have = append(have, id)
			if typ == "" {
				typ = f.Instances[id].Type
			}
		}
	}
	for len(have) > n {
		delete(f.Instances, have[len(have)-1])
		have = have[:len(have)-1]
	}
	for i := len(have); i < n; i++ {
		f.nextID++
		id := fmt.Sprintf("i-worker%04d", f.nextID)
		f.Instances[id] = &Instance{ID: id, Type: typ, State: "running", Address: fmt.Sprintf("198.51.100.%d", f.nextID%250+1), Group: group}
	}
}

// ---- Auto Scaling ----

func (f *Fake) autoscaling(w http.ResponseWriter, c Call) {
	switch c.Action {
	case "UpdateAutoScalingGroup":
		n, err := strconv.Atoi(c.Form.Get("DesiredCapacity"))
		if err == nil {
			f.scale(c.Form.Get("AutoScalingGroupName"), "", n)
		}
		writeXML(w, 200, el("UpdateAutoScalingGroupResponse", el("ResponseMetadata", tx("RequestId", "req-1"))))
	default:
		queryError(w, "InvalidAction", "the stand-in does not implement autoscaling "+c.Action)
	}
}

// ---- SSM (JSON protocol) ----

func (f *Fake) ssm(w http.ResponseWriter, c Call) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch c.Action {
	case "DeleteParameter":
		name, _ := c.JSON["Name"].(string)
		if _, ok := f.Params[name]; !ok {
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"__type":"ParameterNotFound","message":"Parameter ` + name + ` not found."}`))
			return
		}
		delete(f.Params, name)
		_, _ = w.Write([]byte(`{}`))
	default:
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"__type":"InvalidAction","message":"the stand-in does not implement ssm ` + c.Action + `"}`))
	}
}

// ---- CloudWatch (RPC v2, CBOR) ----

func (f *Fake) cloudwatch(w http.ResponseWriter, c Call) {
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	switch c.Action {
	case "DescribeAlarms":
		var alarms cbor.List
		if names, ok := c.CBOR["AlarmNames"].(cbor.List); ok {
			for _, n := range names {
				name, _ := n.(cbor.String)
				if st, ok := f.Alarms[string(name)]; ok {
					alarms = append(alarms, cbor.Map{
						"AlarmName":   cbor.String(name),
						"StateValue":  cbor.String(st),
						"StateReason": cbor.String("stand-in"),
					})
				}
			}
		}
		_, _ = w.Write(cbor.Encode(cbor.Map{"MetricAlarms": alarms}))
	default:
		w.WriteHeader(400)
		_, _ = w.Write(cbor.Encode(cbor.Map{"__type": cbor.String("InvalidAction"), "message": cbor.String("not implemented: " + c.Action)}))
	}
}
