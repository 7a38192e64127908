// Package aws makes, halts, resumes and removes a simswarm cluster on AWS:
// an EC2 key pair, a CloudFormation stack from the template embedded here
// (VPC, security group, a Docker Swarm manager, a worker auto-scaling
// group, an idle alarm), the connection profile kept on this machine, and
// the steps run on the manager over SSH (waiting for the nodes, deploying
// the Docker stack).
package aws

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
)

// EndpointEnv overrides the endpoint of every AWS service the tool calls.
// Tests point it at a local stand-in; it also serves AWS-compatible
// emulators.
const EndpointEnv = "SIMSWARM_AWS_ENDPOINT"

// Settings say which account and region to use. Empty fields fall back to
// the standard AWS chain (AWS_PROFILE, AWS_REGION, ~/.aws/config ...).
type Settings struct {
	Region  string
	Profile string
	// Endpoint, when set, replaces every service's endpoint; Load fills it
	// from SIMSWARM_AWS_ENDPOINT when empty.
	Endpoint string
}

// Clients are the AWS services the tool uses, in one region.
type Clients struct {
	Region string
	CFN    *cloudformation.Client
	EC2    *ec2.Client
	ASG    *autoscaling.Client
	CW     *cloudwatch.Client
	SSM    *ssm.Client
}

// Load reads the AWS configuration and checks that there are credentials,
// so that their absence is reported as such and not as a failed call.
func Load(ctx context.Context, s Settings) (*Clients, error) {
	var opts []func(*config.LoadOptions) error
	if s.Region != "" {
		opts = append(opts, config.WithRegion(s.Region))
	}
	if s.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(s.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		var pe config.SharedConfigProfileNotExistError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("AWS profile %q is not in ~/.aws/config or ~/.aws/credentials (check --profile or AWS_PROFILE)", pe.Profile)
		}
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region: pass --region, set AWS_REGION, or set region in ~/.aws/config")
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (or --profile) naming a profile in ~/.aws/credentials%s", credsDetail(err))
	}
	ep := s.Endpoint
	if ep == "" {
		ep = os.Getenv(EndpointEnv)
	}
	if ep != "" {
		cfg.BaseEndpoint = sdkaws.String(ep)
	}
	return &Clients{
		Region: cfg.Region,
		CFN:    cloudformation.NewFromConfig(cfg),
		EC2:    ec2.NewFromConfig(cfg),
		ASG:    autoscaling.NewFromConfig(cfg),
		CW:     cloudwatch.NewFromConfig(cfg),
		SSM:    ssm.NewFromConfig(cfg),
	}, nil
}

// credsDetail is what the SDK said about missing credentials, when it says
// more than that the chain ran out (its last link, the EC2 instance
// metadata service, failing), e.g. an expired SSO session.
func credsDetail(err error) string {
	s := strings.TrimPrefix(firstLine(err), "failed to refresh cached credentials, ")
	if strings.Contains(s, "EC2 IMDS") || strings.Contains(s, "ec2imds") {
		return ""
	}
	return " (" + s + ")"
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// apiCode is the AWS error code of err ("ValidationError", ...), or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// apiMessage is the AWS error's own message, without the SDK's wrapping
// (operation name, request id), which says little to a user.
func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return firstLine(err)
}
