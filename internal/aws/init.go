package aws

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/simswarm/simswarm/internal/fserr"
	"github.com/simswarm/simswarm/internal/tunnel"
	"golang.org/x/crypto/ssh"
)

// Tags the tool puts on what it makes: the cluster's name on the stack
// (CloudFormation passes it on to the resources) and the key pair, and the
// token of the init that asked for the stack, which tells an interrupted
// init of this machine from a stack someone else made under the name.
const (
	TagCluster = "simswarm:cluster"
	tagInit    = "simswarm:init"
)

// Cluster is one named cluster in one region, with how to report progress.
type Cluster struct {
	Name string
	C    *Clients
	Out  io.Writer // progress lines for the user
	// Poll is how often AWS and the manager are asked while waiting
	// (default 10 s); the timeouts bound each wait.
	Poll         time.Duration
	StackTimeout time.Duration // stack creation or deletion, default 45 min
	NodeTimeout  time.Duration // instances running and nodes joined, default 15 min
	SSHTimeout   time.Duration // the manager's sshd answering, default 5 min
}

func (cl *Cluster) defaults() {
	if cl.Out == nil {
		cl.Out = io.Discard
	}
	if cl.Poll <= 0 {
		cl.Poll = 10 * time.Second
	}
	if cl.StackTimeout <= 0 {
		cl.StackTimeout = 45 * time.Minute
	}
	if cl.NodeTimeout <= 0 {
		cl.NodeTimeout = 15 * time.Minute
	}
	if cl.SSHTimeout <= 0 {
		cl.SSHTimeout = 5 * time.Minute
	}
}

func (cl *Cluster) waiter() *waiter {
	cl.defaults()
	return &waiter{c: cl.C, out: cl.Out, poll: cl.Poll, timeout: cl.StackTimeout}
}

// InitOptions describe the cluster to make.
type InitOptions struct {
	Workers     int
	ManagerType string
	WorkerType  string
	// SSHCIDR admits SSH; empty: this machine's public address, asked of
	// IPEndpoint (empty: $SIMSWARM_IP_ENDPOINT or the default service).
	SSHCIDR    string
	IPEndpoint string
	// AWSProfile is recorded so that later commands use the same account.
	AWSProfile string
	// StackFile is the Docker stack deployed on the manager once the
	// nodes are up; empty: none yet (simswarm aws deploy does it later).
	// StackEnv are the variables its deploy reads (SIMSWARM_TAG ...).
	StackFile string
	StackEnv  map[string]string

	// How the manager is reached and driven; zero values are right for
	// AWS (port 22, ec2-user, sudo docker, ~/simswarm). Tests change them.
	SSHPort   int
	User      string
	Docker    string
	RemoteDir string
	Forwards  []tunnel.Forward
}

var instanceTypeRE = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)

func (o *InitOptions) check() error {
	if o.Workers < 0 || o.Workers > 100 {
		return fmt.Errorf("--workers %d: give 0 to 100", o.Workers)
	}
	for flag, t := range map[string]string{"--manager-type": o.ManagerType, "--instance-type": o.WorkerType} {
		if !instanceTypeRE.MatchString(t) {
			return fmt.Errorf("%s %q is not an EC2 instance type such as c5.4xlarge", flag, t)
		}
	}
	if imageParameter(o.ManagerType) != imageParameter(o.WorkerType) {
		return fmt.Errorf("--manager-type %s and --instance-type %s have different CPU architectures (Graviton and x86): the cluster runs one image on every node", o.ManagerType, o.WorkerType)
	}
	if o.StackFile != "" {
		if _, err := os.Stat(o.StackFile); err != nil {
			return fmt.Errorf("stack file %s: %w", o.StackFile, fserr.WithoutPath(err))
		}
	}
	return nil
}

// Init makes the cluster, or carries on with one an earlier init of this
// machine left half-made, and returns its profile once the manager is
// reachable, every node has joined and the Docker stack is deployed.
func (cl *Cluster) Init(ctx context.Context, o InitOptions) (*Profile, error) {
	cl.defaults()
	if err := CheckName(cl.Name); err != nil {
		return nil, err
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	prof, err := LoadProfile(cl.Name)
	var npe *NoProfileError
	if errors.As(err, &npe) {
		prof, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if prof != nil && prof.Region != cl.C.Region {
		return nil, fmt.Errorf("cluster %s was made in region %s (profile); pass --region %s, or choose another --name", cl.Name, prof.Region, prof.Region)
	}
	stack, err := cl.C.describeStack(ctx, cl.Name)
	if err != nil {
		return nil, err
	}

	if stack == nil {
		if prof != nil && prof.State != StateCreating {
			return nil, fmt.Errorf("cluster %s has a profile on this machine but its stack no longer exists in %s (deleted outside simswarm?): simswarm aws remove --name %s cleans up, then init again", cl.Name, cl.C.Region, cl.Name)
		}
		prof, err = cl.create(ctx, o)
		if err != nil {
			return nil, err
		}
	} else {
		if !ours(stack, prof) {
			return nil, fmt.Errorf("the name %s is taken: a stack %s already exists in %s (%s) that this machine did not make; choose another --name, or remove it with simswarm aws remove --name %s if it is yours",
				cl.Name, cl.Name, cl.C.Region, stack.StackStatus, cl.Name)
		}
		if prof.StackID == "" {
			prof.StackID = sdkaws.ToString(stack.StackId)
			if err := prof.Save(); err != nil {
				return nil, err
			}
		}
		if prof.State == StateReady {
			return nil, fmt.Errorf("cluster %s already exists in %s (stack %s): simswarm aws status --name %s shows it", cl.Name, cl.C.Region, stack.StackStatus, cl.Name)
		}
		if err := cl.checkResumable(ctx, stack); err != nil {
			return nil, err
		}
		fmt.Fprintf(cl.Out, "carrying on with cluster %s, which an earlier init left %s\n", cl.Name, stack.StackStatus)
		for k, v := range o.StackEnv {
			if prof.StackEnv == nil {
				prof.StackEnv = map[string]string{}
			}
			prof.StackEnv[k] = v
		}
		if _, err := tunnel.LoadKey(prof.KeyPath); err != nil {
			return nil, err
		}
	}

	stack, err = cl.waiter().wait(ctx, cl.Name)
	if err != nil {
		return nil, err
	}
	if stack == nil {
		return nil, fmt.Errorf("stack %s disappeared while it was being created (deleted by someone?)", cl.Name)
	}
	if stack.StackStatus != cfntypes.StackStatusCreateComplete && stack.StackStatus != cfntypes.StackStatusUpdateComplete {
		return nil, cl.failed(ctx, stack)
	}
	if err := cl.recordManager(stack, prof); err != nil {
		return nil, err
	}
	if err := cl.finish(ctx, prof, o.StackFile, false); err != nil {
		return nil, err
	}
	return prof, nil
}

// ours tells whether this machine's init asked for the stack.
func ours(s *cfntypes.Stack, p *Profile) bool {
	if p == nil {
		return false
	}
	if p.StackID != "" && p.StackID == sdkaws.ToString(s.StackId) {
		return true
	}
	for _, t := range s.Tags {
		if sdkaws.ToString(t.Key) == tagInit && p.CreateToken != "" && sdkaws.ToString(t.Value) == p.CreateToken {
			return true
		}
	}
	return false
}

// checkResumable explains the states an init cannot carry on from.
func (cl *Cluster) checkResumable(ctx context.Context, s *cfntypes.Stack) error {
	switch st := s.StackStatus; {
	case st == cfntypes.StackStatusCreateInProgress, st == cfntypes.StackStatusCreateComplete,
		st == cfntypes.StackStatusUpdateComplete, st == cfntypes.StackStatusUpdateInProgress,
		st == cfntypes.StackStatusUpdateCompleteCleanupInProgress:
		return nil
	case strings.HasPrefix(string(st), "DELETE_"):
		return fmt.Errorf("stack %s is %s: wait until it is gone (simswarm aws status --name %s), then init again", cl.Name, st, cl.Name)
	default:
		return cl.failed(ctx, s)
	}
}

// failed explains a stack whose creation failed.
func (cl *Cluster) failed(ctx context.Context, s *cfntypes.Stack) error {
	why := cl.C.failureReason(ctx, cl.Name)
	if why == "" {
		why = sdkaws.ToString(s.StackStatusReason)
	}
	if why != "" {
		why = " (" + why + ")"
	}
	return fmt.Errorf("creating stack %s failed: it is %s%s; run simswarm aws remove --name %s first, then init again", cl.Name, s.StackStatus, why, cl.Name)
}

// create makes the key pair (or reuses the one an interrupted init made)
// and asks for the stack.
func (cl *Cluster) create(ctx context.Context, o InitOptions) (*Profile, error) {
	ipEndpoint := o.IPEndpoint
	if ipEndpoint == "" {
		ipEndpoint = os.Getenv(IPEndpointEnv)
	}
	cidr, err := SSHCIDR(ctx, o.SSHCIDR, ipEndpoint)
	if err != nil {
		return nil, err
	}
	dir, err := Dir(cl.Name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	keyPath := filepath.Join(dir, "key.pem")
	if err := cl.ensureKeyPair(ctx, keyPath); err != nil {
		return nil, err
	}
	user := o.User
	if user == "" {
		user = "ec2-user"
	}
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	p := &Profile{
		Name: cl.Name, Region: cl.C.Region, AWSProfile: o.AWSProfile, Stack: cl.Name,
		State: StateCreating, CreateToken: "simswarm-" + hex.EncodeToString(tok),
		SSHPort: o.SSHPort, User: user, KeyPair: cl.Name, KeyPath: keyPath,
		KnownHosts: filepath.Join(dir, "known_hosts"),
		Workers:    o.Workers, ManagerType: o.ManagerType, WorkerType: o.WorkerType, SSHCIDR: cidr,
		Docker: o.Docker, RemoteDir: o.RemoteDir, Forwards: o.Forwards, StackEnv: o.StackEnv,
		Created: time.Now().UTC().Truncate(time.Second),
	}
	// Saved before the request, so that an init interrupted right after
	// it recognises the stack as its own.
	if err := p.Save(); err != nil {
		return nil, err
	}
	fmt.Fprintf(cl.Out, "creating stack %s in %s: manager %s, %d × %s workers, SSH from %s\n",
		cl.Name, cl.C.Region, o.ManagerType, o.Workers, o.WorkerType, cidr)
	out, err := cl.C.CFN.CreateStack(ctx, &cloudformation.CreateStackInput{
		StackName:    sdkaws.String(cl.Name),
		TemplateBody: sdkaws.String(Template()),
		Parameters:   stackParameters(cl.Name, cl.Name, o.ManagerType, o.WorkerType, o.Workers, cidr),
		Capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityIam},
		Tags: []cfntypes.Tag{
			{Key: sdkaws.String(TagCluster), Value: sdkaws.String(cl.Name)},
			{Key: sdkaws.String(tagInit), Value: sdkaws.String(p.CreateToken)},
		},
		OnFailure:          cfntypes.OnFailureRollback,
		ClientRequestToken: sdkaws.String(p.CreateToken),
	})
	if err != nil {
		if apiCode(err) == "AlreadyExistsException" {
			return nil, fmt.Errorf("the name %s is taken: a stack %s already exists in %s; choose another --name", cl.Name, cl.Name, cl.C.Region)
		}
		return nil, fmt.Errorf("creating stack %s: %s", cl.Name, apiMessage(err))
	}
	p.StackID = sdkaws.ToString(out.StackId)
	if err := p.Save(); err != nil {
		return nil, err
	}
	return p, nil
}

// ensureKeyPair makes the cluster's EC2 key pair and keeps its private key
// (0600, never printed), or reuses one an interrupted init made.
func (cl *Cluster) ensureKeyPair(ctx context.Context, keyPath string) error {
	exists, _, err := cl.C.keyPair(ctx, cl.Name)
	if err != nil {
		return err
	}
	_, statErr := os.Stat(keyPath)
	local := statErr == nil
	switch {
	case exists && local:
		if _, err := tunnel.LoadKey(keyPath); err != nil {
			return err
		}
		fmt.Fprintf(cl.Out, "reusing key pair %s (private key %s)\n", cl.Name, keyPath)
		return nil
	case exists:
		return fmt.Errorf("the name %s is taken: EC2 key pair %s exists in %s but its private key is not on this machine (%s); choose another --name, or delete the key pair if it is a leftover", cl.Name, cl.Name, cl.C.Region, keyPath)
	}
	out, err := cl.C.EC2.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{
		KeyName:   sdkaws.String(cl.Name),
		KeyType:   ec2types.KeyTypeEd25519,
		KeyFormat: ec2types.KeyFormatPem,
		TagSpecifications: []ec2types.TagSpecification{{
			ResourceType: ec2types.ResourceTypeKeyPair,
			Tags:         []ec2types.Tag{{Key: sdkaws.String(TagCluster), Value: sdkaws.String(cl.Name)}},
		}},
	})
	if err != nil {
		return fmt.Errorf("creating EC2 key pair %s: %s", cl.Name, apiMessage(err))
	}
	material := sdkaws.ToString(out.KeyMaterial)
	if _, err := ssh.ParsePrivateKey([]byte(material)); err != nil {
		return fmt.Errorf("EC2 returned a private key for %s that does not parse: %w", cl.Name, err)
	}
	if err := writeFileAtomic(keyPath, []byte(material), 0o600); err != nil {
		return fmt.Errorf("saving the private key of key pair %s (delete the key pair and init again): %w", cl.Name, err)
	}
	fmt.Fprintf(cl.Out, "created key pair %s (private key %s)\n", cl.Name, keyPath)
	return nil
}

// keyPair tells whether the key pair exists and whether the tool made it.
func (c *Clients) keyPair(ctx context.Context, name string) (exists, tagged bool, err error) {
	out, err := c.EC2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{name}})
	if err != nil {
		if apiCode(err) == "InvalidKeyPair.NotFound" {
			return false, false, nil
		}
		return false, false, fmt.Errorf("looking up key pair %s: %s", name, apiMessage(err))
	}
	for _, k := range out.KeyPairs {
		if sdkaws.ToString(k.KeyName) != name {
			continue
		}
		for _, t := range k.Tags {
			if sdkaws.ToString(t.Key) == TagCluster && sdkaws.ToString(t.Value) == name {
				return true, true, nil
			}
		}
		return true, false, nil
	}
	return false, false, nil
}

// recordManager takes the manager's identity from the stack's outputs and
// pins its host key.
func (cl *Cluster) recordManager(s *cfntypes.Stack, p *Profile) error {
	p.ManagerID = output(s, outManagerID)
	p.ManagerAddress = output(s, outManagerIP)
	p.ManagerPrivate = output(s, outPrivateIP)
	p.WorkerGroup = output(s, outWorkerGroup)
	p.AlarmName = output(s, outAlarm)
	if p.ManagerID == "" || p.ManagerAddress == "" {
		return fmt.Errorf("stack %s has no %s/%s outputs: was it made by another template?", cl.Name, outManagerID, outManagerIP)
	}
	key, err := hostKeyFromOutput(output(s, outHostKey))
	if err != nil {
		return fmt.Errorf("stack %s: %w", cl.Name, err)
	}
	p.HostKey = key
	if err := p.writeKnownHosts(); err != nil {
		return err
	}
	if p.State == StateCreating {
		p.State = StateDeploying
	}
	return p.Save()
}

// hostKeyFromOutput reads the manager's host key from the wait condition's
// data, a JSON object {"manager": "ssh-ed25519 AAAA..."}: the manager
// signals it once set up, so the key reaches us through CloudFormation,
// not through the network path we are about to trust.
func hostKeyFromOutput(data string) (string, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		return "", fmt.Errorf("output %s %q is not the wait condition's JSON: %w", outHostKey, data, err)
	}
	key := m["manager"]
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key)); err != nil {
		return "", fmt.Errorf("output %s holds no SSH host key (%q)", outHostKey, key)
	}
	return strings.TrimSpace(key), nil
}
