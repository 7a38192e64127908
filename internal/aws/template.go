package aws

import (
	_ "embed"
	"strconv"
	"strings"

	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
)

// templateBody is the CloudFormation template of a cluster. It is JSON, not
// YAML, so that it is read by any JSON parser (the tests check its
// invariants) with no special handling of CloudFormation's short tags.
//
//go:embed template.json
var templateBody string

// Template is the CloudFormation template the tool deploys.
func Template() string { return templateBody }

// Outputs of the template the tool reads.
const (
	outManagerID   = "ManagerInstanceId"
	outManagerIP   = "ManagerPublicIp"
	outPrivateIP   = "ManagerPrivateIp"
	outHostKey     = "ManagerHostKey"
	outWorkerGroup = "WorkerGroupName"
	outAlarm       = "IdleAlarmName"
	outTokenParam  = "JoinTokenParameter"
)

// imageParameter picks the Amazon Linux 2023 image for the instance type's
// architecture: Graviton types (c7g, m6gd, t4g ...) need arm64.
func imageParameter(instanceType string) string {
	family, _, _ := strings.Cut(instanceType, ".")
	arch := "x86_64"
	if len(family) >= 3 && strings.ContainsRune(family[2:], 'g') {
		arch = "arm64"
	}
	return "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-" + arch
}

func stackParameters(name, keyPair, managerType, workerType string, workers int, sshCIDR string) []cfntypes.Parameter {
	p := func(k, v string) cfntypes.Parameter {
		return cfntypes.Parameter{ParameterKey: &k, ParameterValue: &v}
	}
	return []cfntypes.Parameter{
		p("ClusterName", name),
		p("KeyName", keyPair),
		p("ManagerInstanceType", managerType),
		p("WorkerInstanceType", workerType),
		p("WorkerCount", strconv.Itoa(workers)),
		p("SshCidr", sshCIDR),
		p("ImageId", imageParameter(managerType)),
	}
}
