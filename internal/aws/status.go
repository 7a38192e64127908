package aws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/simswarm/simswarm/internal/tunnel"
)

// Status is what `simswarm aws status` shows.
type Status struct {
	Name, Region string
	StackStatus  string // "" when there is no stack
	ProfileState string // "" when this machine has no profile
	Instances    []Instance
	AlarmName    string
	AlarmState   string // OK, ALARM, INSUFFICIENT_DATA; "" unknown
	AlarmReason  string
	TunnelPID    int
	TunnelUp     bool
	TunnelAddrs  []string
	// HourlyUSD sums the estimated prices of the running instances;
	// Unpriced are running types the built-in table does not know.
	HourlyUSD float64
	Unpriced  []string
}

// Instance is one node of the cluster.
type Instance struct {
	Role, ID, Type, State, Address string
}

// Status gathers the cluster's state. p may be nil (no profile here).
func (cl *Cluster) Status(ctx context.Context, p *Profile) (*Status, error) {
	st := &Status{Name: cl.Name, Region: cl.C.Region}
	if p != nil {
		st.ProfileState = p.State
	}
	pid, running, err := tunnel.ReadPID(tunnel.PIDPath(cl.Name))
	if err == nil && running {
		st.TunnelPID, st.TunnelUp = pid, true
		if p != nil {
			for _, f := range p.TunnelConfig().Forwards {
				st.TunnelAddrs = append(st.TunnelAddrs, f.Local)
			}
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading the tunnel's PID file: %w", err)
	}
	s, err := cl.C.describeStack(ctx, cl.Name)
	if err != nil {
		return nil, err
	}
	if s == nil {
		if p == nil {
			return nil, fmt.Errorf("no cluster named %s in %s: no stack and no profile of that name", cl.Name, cl.C.Region)
		}
		return st, nil
	}
	st.StackStatus = string(s.StackStatus)
	managerID, group := output(s, outManagerID), output(s, outWorkerGroup)
	st.AlarmName = output(s, outAlarm)

	if managerID != "" {
		out, err := cl.C.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{managerID}})
		if err != nil {
			return nil, fmt.Errorf("looking up the manager %s: %s", managerID, apiMessage(err))
		}
		st.add("manager", out)
	}
	if group != "" {
		out, err := cl.C.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
			{Name: sdkaws.String("tag:aws:autoscaling:groupName"), Values: []string{group}},
			{Name: sdkaws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped", "shutting-down"}},
		}})
		if err != nil {
			return nil, fmt.Errorf("looking up the workers of %s: %s", group, apiMessage(err))
		}
		st.add("worker", out)
	}
	if st.AlarmName != "" {
		out, err := cl.C.CW.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{st.AlarmName}})
		if err != nil {
			return nil, fmt.Errorf("looking up the idle alarm %s: %s", st.AlarmName, apiMessage(err))
		}
		for _, a := range out.MetricAlarms {
			if sdkaws.ToString(a.AlarmName) == st.AlarmName {
				st.AlarmState = string(a.StateValue)
				st.AlarmReason = sdkaws.ToString(a.StateReason)
			}
		}
	}
	unpriced := map[string]bool{}
	for _, in := range st.Instances {
		if in.State != "running" && in.State != "pending" {
			continue
		}
		if price, ok := HourlyPrice(in.Type); ok {
			st.HourlyUSD += price
		} else {
			unpriced[in.Type] = true
		}
	}
	for t := range unpriced {
		st.Unpriced = append(st.Unpriced, t)
	}
	sort.Strings(st.Unpriced)
	return st, nil
}

func (st *Status) add(role string, out *ec2.DescribeInstancesOutput) {
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			i := Instance{Role: role, ID: sdkaws.ToString(in.InstanceId), Type: string(in.InstanceType), Address: sdkaws.ToString(in.PublicIpAddress)}
			if in.State != nil {
				i.State = string(in.State.Name)
			}
			st.Instances = append(st.Instances, i)
		}
	}
}

// Write prints the status for a person.
func (st *Status) Write(w io.Writer) {
	stack := st.StackStatus
	if stack == "" {
		stack = "no stack (deleted outside simswarm? simswarm aws remove cleans up)"
	}
	fmt.Fprintf(w, "cluster %s (%s): stack %s\n", st.Name, st.Region, stack)
	if st.ProfileState != "" && st.ProfileState != StateReady {
		fmt.Fprintf(w, "  init did not finish (%s): simswarm aws init --name %s carries on\n", st.ProfileState, st.Name)
	}
	for _, in := range st.Instances {
		addr := in.Address
		if addr == "" {
			addr = "-"
		}
		fmt.Fprintf(w, "  %-7s  %-20s  %-12s  %-13s  %s\n", in.Role, in.ID, in.Type, in.State, addr)
	}
	if len(st.Instances) == 0 && st.StackStatus != "" {
		fmt.Fprintln(w, "  no instances")
	}
	if st.AlarmName != "" {
		state := st.AlarmState
		if state == "" {
			state = "unknown"
		}
		fmt.Fprintf(w, "idle alarm %s: %s (stops the cluster after 4 × 15 min with the manager's CPU below 10 %%)\n", st.AlarmName, state)
	}
	if st.TunnelUp {
		fmt.Fprintf(w, "tunnel: up (pid %d) %s\n", st.TunnelPID, strings.Join(st.TunnelAddrs, " "))
	} else {
		fmt.Fprintf(w, "tunnel: down (simswarm aws connect --name %s)\n", st.Name)
	}
	note := ""
	if len(st.Unpriced) > 0 {
		note = "; not counted, price unknown: " + quoteList(st.Unpriced)
	}
	fmt.Fprintf(w, "estimated cost: $%.2f/hour (an estimate from us-east-1 on-demand list prices of the running instances; storage and traffic not counted%s)\n", st.HourlyUSD, note)
}
