package aws

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/simswarm/simswarm/internal/fserr"
)

// Open finds cluster name: its profile on this machine (nil if none) and
// the AWS clients for its region and account. The profile's region and AWS
// profile apply unless s names others; a different region is refused.
func Open(ctx context.Context, name string, s Settings) (*Cluster, *Profile, error) {
	if err := CheckName(name); err != nil {
		return nil, nil, err
	}
	p, err := LoadProfile(name)
	var npe *NoProfileError
	if errors.As(err, &npe) {
		p, err = nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if p != nil {
		if s.Region != "" && s.Region != p.Region {
			return nil, nil, fmt.Errorf("cluster %s is in region %s (its profile says), not %s", name, p.Region, s.Region)
		}
		s.Region = p.Region
		if s.Profile == "" {
			s.Profile = p.AWSProfile
		}
	}
	c, err := Load(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	return &Cluster{Name: name, C: c}, p, nil
}

// existing returns the cluster's stack, refusing a missing one.
func (cl *Cluster) existing(ctx context.Context) (*cfntypes.Stack, error) {
	s, err := cl.C.describeStack(ctx, cl.Name)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("stack %s does not exist in %s: simswarm aws init --name %s makes the cluster", cl.Name, cl.C.Region, cl.Name)
	}
	return s, nil
}

// fillFromStack completes a profile from the stack's outputs (the alarm may
// have been added, or the profile written by an older version).
func fillFromStack(p *Profile, s *cfntypes.Stack) {
	if v := output(s, outManagerID); v != "" {
		p.ManagerID = v
	}
	if v := output(s, outWorkerGroup); v != "" {
		p.WorkerGroup = v
	}
	if v := output(s, outAlarm); v != "" {
		p.AlarmName = v
	}
}

// Halt stops the manager and scales the workers to 0; the stack, volumes,
// key pair and profile stay, so Resume brings the same cluster back.
func (cl *Cluster) Halt(ctx context.Context, p *Profile) error {
	cl.defaults()
	s, err := cl.existing(ctx)
	if err != nil {
		return err
	}
	fillFromStack(p, s)
	if err := cl.scaleWorkers(ctx, p, 0); err != nil {
		return err
	}
	if _, err := cl.C.EC2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{p.ManagerID}}); err != nil {
		return fmt.Errorf("stopping the manager %s: %s", p.ManagerID, apiMessage(err))
	}
	fmt.Fprintf(cl.Out, "stopping the manager %s; workers scaled to 0\n", p.ManagerID)
	if _, err := cl.waitInstance(ctx, p.ManagerID, ec2types.InstanceStateNameStopped); err != nil {
		return err
	}
	fmt.Fprintf(cl.Out, "cluster %s halted: nothing runs; the stack, volumes, key pair and profile are kept (their storage still costs a little). simswarm aws resume --name %s starts it again\n", cl.Name, cl.Name)
	return nil
}

// Resume starts the manager, restores the workers, forgets the swarm's
// departed workers, waits for the nodes and redeploys the Docker stack
// (stackFile if given, else the copy on the manager).
func (cl *Cluster) Resume(ctx context.Context, p *Profile, stackFile string) error {
	cl.defaults()
	if stackFile != "" {
		if _, err := os.Stat(stackFile); err != nil {
			return fmt.Errorf("stack file %s: %w", stackFile, fserr.WithoutPath(err))
		}
	}
	s, err := cl.existing(ctx)
	if err != nil {
		return err
	}
	fillFromStack(p, s)
	if n, err := strconv.Atoi(parameter(s, "WorkerCount")); err == nil && p.Workers == 0 {
		p.Workers = n
	}
	// The manager first: workers join it as they boot.
	if _, err := cl.C.EC2.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{p.ManagerID}}); err != nil {
		return fmt.Errorf("starting the manager %s: %s", p.ManagerID, apiMessage(err))
	}
	fmt.Fprintf(cl.Out, "starting the manager %s\n", p.ManagerID)
	inst, err := cl.waitInstance(ctx, p.ManagerID, ec2types.InstanceStateNameRunning)
	if err != nil {
		return err
	}
	if err := cl.scaleWorkers(ctx, p, p.Workers); err != nil {
		return err
	}
	fmt.Fprintf(cl.Out, "workers scaled to %d\n", p.Workers)
	// A started instance has a new public address; its host key is the
	// one recorded at init.
	if a := sdkaws.ToString(inst.PublicIpAddress); a != "" && a != p.ManagerAddress {
		fmt.Fprintf(cl.Out, "the manager's address is now %s\n", a)
		p.ManagerAddress = a
	}
	if err := p.writeKnownHosts(); err != nil {
		return err
	}
	if err := p.Save(); err != nil {
		return err
	}
	return cl.finish(ctx, p, stackFile, true)
}

func (cl *Cluster) scaleWorkers(ctx context.Context, p *Profile, n int) error {
	if p.WorkerGroup == "" {
		return fmt.Errorf("stack %s names no worker group (output %s)", cl.Name, outWorkerGroup)
	}
	in := &autoscaling.UpdateAutoScalingGroupInput{
		AutoScalingGroupName: sdkaws.String(p.WorkerGroup),
		DesiredCapacity:      sdkaws.Int32(int32(n)),
	}
	if n == 0 {
		in.MinSize = sdkaws.Int32(0)
	}
	if _, err := cl.C.ASG.UpdateAutoScalingGroup(ctx, in); err != nil {
		return fmt.Errorf("scaling the workers (%s) to %d: %s", p.WorkerGroup, n, apiMessage(err))
	}
	return nil
}

// waitInstance waits until the instance is in state want.
func (cl *Cluster) waitInstance(ctx context.Context, id string, want ec2types.InstanceStateName) (*ec2types.Instance, error) {
	deadline := time.Now().Add(cl.NodeTimeout)
	for {
		out, err := cl.C.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			return nil, fmt.Errorf("looking up instance %s: %s", id, apiMessage(err))
		}
		var inst *ec2types.Instance
		for _, r := range out.Reservations {
			for i := range r.Instances {
				if sdkaws.ToString(r.Instances[i].InstanceId) == id {
					inst = &r.Instances[i]
				}
			}
		}
		if inst == nil {
			return nil, fmt.Errorf("instance %s no longer exists (terminated outside simswarm?): simswarm aws remove --name %s, then init again", id, cl.Name)
		}
		if inst.State != nil && inst.State.Name == want {
			return inst, nil
		}
		if time.Now().After(deadline) {
			state := "unknown"
			if inst.State != nil {
				state = string(inst.State.Name)
			}
			return nil, fmt.Errorf("instance %s is still %s after %s, not %s", id, state, cl.NodeTimeout, want)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(cl.Poll):
		}
	}
}

// Remove deletes the stack (and with it every instance, volume, network
// and the alarm), the key pair, the join token and this machine's profile.
// Only what carries the tool's tag is deleted.
func (cl *Cluster) Remove(ctx context.Context) error {
	cl.defaults()
	s, err := cl.C.describeStack(ctx, cl.Name)
	if err != nil {
		return err
	}
	keyExists, keyTagged, err := cl.C.keyPair(ctx, cl.Name)
	if err != nil {
		return err
	}
	dir, err := Dir(cl.Name)
	if err != nil {
		return err
	}
	_, statErr := os.Stat(dir)
	local := statErr == nil
	if s == nil && !keyExists && !local {
		return fmt.Errorf("no cluster named %s in %s: no stack, key pair or profile of that name", cl.Name, cl.C.Region)
	}
	if s != nil {
		if !hasTag(s.Tags, TagCluster, cl.Name) {
			return fmt.Errorf("stack %s in %s was not made by simswarm aws (it has no %s=%s tag): not deleting it", cl.Name, cl.C.Region, TagCluster, cl.Name)
		}
		if _, err := cl.C.CFN.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: s.StackId}); err != nil {
			return fmt.Errorf("deleting stack %s: %s", cl.Name, apiMessage(err))
		}
		fmt.Fprintf(cl.Out, "deleting stack %s\n", cl.Name)
		// Follow it by id: by name, a deleted stack is just "missing".
		gone, err := cl.waiter().wait(ctx, sdkaws.ToString(s.StackId))
		if err != nil {
			return err
		}
		if gone != nil && gone.StackStatus != cfntypes.StackStatusDeleteComplete {
			why := cl.C.failureReason(ctx, sdkaws.ToString(s.StackId))
			return fmt.Errorf("deleting stack %s failed: it is %s (%s); the key pair and profile are kept, run remove again once that is resolved", cl.Name, gone.StackStatus, why)
		}
		fmt.Fprintf(cl.Out, "stack %s deleted\n", cl.Name)
	} else {
		fmt.Fprintf(cl.Out, "stack %s does not exist in %s; removing what is left\n", cl.Name, cl.C.Region)
	}
	switch {
	case keyExists && keyTagged:
		if _, err := cl.C.EC2.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: sdkaws.String(cl.Name)}); err != nil {
			return fmt.Errorf("deleting key pair %s: %s", cl.Name, apiMessage(err))
		}
		fmt.Fprintf(cl.Out, "key pair %s deleted\n", cl.Name)
	case keyExists:
		fmt.Fprintf(cl.Out, "key pair %s was not made by simswarm aws (no %s tag): kept\n", cl.Name, TagCluster)
	}
	param := "/simswarm/" + cl.Name + "/join-token"
	if _, err := cl.C.SSM.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: &param}); err != nil {
		var nf *ssmtypes.ParameterNotFound
		if !errors.As(err, &nf) {
			return fmt.Errorf("deleting the join token %s: %s", param, apiMessage(err))
		}
	}
	if local {
		if err := os.RemoveAll(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing the local profile %s: %w", dir, err)
		}
		fmt.Fprintf(cl.Out, "local profile %s removed\n", dir)
	}
	return nil
}

func hasTag(tags []cfntypes.Tag, k, v string) bool {
	for _, t := range tags {
		if sdkaws.ToString(t.Key) == k && sdkaws.ToString(t.Value) == v {
			return true
		}
	}
	return false
}

// quoteList is for messages: "a, b and c".
func quoteList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
