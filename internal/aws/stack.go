package aws

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
)

// describeStack returns the stack, or nil when there is none of that name.
func (c *Clients) describeStack(ctx context.Context, name string) (*cfntypes.Stack, error) {
	out, err := c.CFN.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: &name})
	if err != nil {
		// CloudFormation has no "not found" code: a missing stack is a
		// ValidationError whose message says so.
		if apiCode(err) == "ValidationError" && strings.Contains(err.Error(), "does not exist") {
			return nil, nil
		}
		return nil, fmt.Errorf("looking up stack %s: %s", name, apiMessage(err))
	}
	if len(out.Stacks) == 0 {
		return nil, nil
	}
	s := out.Stacks[0]
	if s.StackStatus == cfntypes.StackStatusDeleteComplete {
		return nil, nil
	}
	return &s, nil
}

func output(s *cfntypes.Stack, key string) string {
	for _, o := range s.Outputs {
		if sdkaws.ToString(o.OutputKey) == key {
			return sdkaws.ToString(o.OutputValue)
		}
	}
	return ""
}

func parameter(s *cfntypes.Stack, key string) string {
	for _, p := range s.Parameters {
		if sdkaws.ToString(p.ParameterKey) == key {
			return sdkaws.ToString(p.ParameterValue)
		}
	}
	return ""
}

const stackType = "AWS::CloudFormation::Stack"

// waiter follows a stack until it settles, printing its new events.
type waiter struct {
	c       *Clients
	out     io.Writer
	poll    time.Duration
	timeout time.Duration
	seen    map[string]bool
}

// wait polls the stack until its status no longer ends in _IN_PROGRESS
// and returns it (nil: the stack is gone).
func (w *waiter) wait(ctx context.Context, name string) (*cfntypes.Stack, error) {
	if w.seen == nil {
		w.seen = map[string]bool{}
	}
	start := time.Now()
	// A deadline of the loop's own, not of ctx: a call cut short by it
	// would report a bare "context deadline exceeded".
	deadline := start.Add(w.timeout)
	last := ""
	for {
		s, err := w.c.describeStack(ctx, name)
		if err != nil {
			return nil, err
		}
		w.events(ctx, name)
		if s == nil {
			return nil, nil
		}
		st := string(s.StackStatus)
		if st != last {
			fmt.Fprintf(w.out, "stack %s: %s (%s)\n", name, st, time.Since(start).Round(time.Second))
			last = st
		}
		if !strings.HasSuffix(st, "_IN_PROGRESS") {
			return s, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("stack %s is still %s after %s: the AWS console's CloudFormation events tell why; running the same command again waits further", name, st, w.timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(w.poll):
		}
	}
}

// events prints the stack's events not yet shown, oldest first: what
// CloudFormation is creating, and why something failed.
func (w *waiter) events(ctx context.Context, name string) {
	out, err := w.c.CFN.DescribeStackEvents(ctx, &cloudformation.DescribeStackEventsInput{StackName: &name})
	if err != nil {
		return // progress only; the status poll reports real trouble
	}
	var fresh []cfntypes.StackEvent
	for _, e := range out.StackEvents {
		id := sdkaws.ToString(e.EventId)
		if w.seen[id] {
			continue
		}
		w.seen[id] = true
		fresh = append(fresh, e)
	}
	slices.Reverse(fresh) // AWS lists newest first
	for _, e := range fresh {
		if sdkaws.ToString(e.ResourceType) == stackType {
			continue // the stack's own status is printed by wait
		}
		line := fmt.Sprintf("  %s (%s): %s", sdkaws.ToString(e.LogicalResourceId), sdkaws.ToString(e.ResourceType), e.ResourceStatus)
		if r := sdkaws.ToString(e.ResourceStatusReason); r != "" && strings.Contains(string(e.ResourceStatus), "FAILED") {
			line += ": " + r
		}
		fmt.Fprintln(w.out, line)
	}
}

// failureReason is the first resource failure of the stack: the cause,
// where later failures are mostly "cancelled" consequences.
func (c *Clients) failureReason(ctx context.Context, name string) string {
	out, err := c.CFN.DescribeStackEvents(ctx, &cloudformation.DescribeStackEventsInput{StackName: &name})
	if err != nil {
		return ""
	}
	reason := ""
	for _, e := range out.StackEvents { // newest first: keep the oldest failure
		if strings.HasSuffix(string(e.ResourceStatus), "_FAILED") && sdkaws.ToString(e.ResourceType) != stackType {
			reason = sdkaws.ToString(e.LogicalResourceId) + ": " + sdkaws.ToString(e.ResourceStatusReason)
		}
	}
	return reason
}
