package aws

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/simswarm/simswarm/internal/tunnel"
	"golang.org/x/crypto/ssh"
)

// Profile is what this machine knows of a cluster: enough to reach it
// (region, stack, manager address, key, pinned host key) and to put it back
// as it was after a halt (worker count). Written 0600 as
// <config dir>/simswarm/aws/<name>/profile.json.
type Profile struct {
	Name       string `json:"name"`
	Region     string `json:"region"`
	AWSProfile string `json:"aws_profile,omitempty"`
	Stack      string `json:"stack"`
	StackID    string `json:"stack_id,omitempty"`
	// State is "creating" from before the stack is asked for until its
	// creation completed, "deploying" until the Docker stack is deployed,
	// "ready" after: an interrupted init resumes from it.
	State       string `json:"state"`
	CreateToken string `json:"create_token,omitempty"`

	ManagerID      string `json:"manager_id,omitempty"`
	ManagerAddress string `json:"manager_address,omitempty"`
	// ManagerPrivate is the manager's address inside the VPC, kept across
	// stop and start; the tunnel's forwards go there.
	ManagerPrivate string `json:"manager_private_address,omitempty"`
	SSHPort        int    `json:"ssh_port,omitempty"` // default 22
	User           string `json:"user"`
	HostKey        string `json:"host_key,omitempty"` // authorized_keys form
	KeyPair        string `json:"key_pair"`
	KeyPath        string `json:"key_path"`
	KnownHosts     string `json:"known_hosts"`

	WorkerGroup string `json:"worker_group,omitempty"`
	Workers     int    `json:"workers"`
	ManagerType string `json:"manager_type"`
	WorkerType  string `json:"worker_type"`
	AlarmName   string `json:"alarm_name,omitempty"`
	SSHCIDR     string `json:"ssh_cidr,omitempty"`

	// Docker is the command that runs docker on the manager, RemoteDir
	// where the stack file and the engine's credentials are kept there
	// (relative to the login's home).
	Docker    string `json:"docker,omitempty"`
	RemoteDir string `json:"remote_dir,omitempty"`
	// StackEnv is the environment docker stack deploy reads the stack's
	// variables from (SIMSWARM_TAG, SIMSWARM_REGISTRY ...).
	StackEnv map[string]string `json:"stack_env,omitempty"`
	// CredsPath is the engine's credentials on this machine (0600), the
	// --creds of clients that reach the engine through the tunnel.
	CredsPath string `json:"creds_path,omitempty"`
	// Forwards, when set, replace the default tunnel ports (4222, 9181,
	// 8080 to the same ports on localhost).
	Forwards []tunnel.Forward `json:"forwards,omitempty"`

	Created time.Time `json:"created"`
}

// Profile states.
const (
	StateCreating  = "creating"
	StateDeploying = "deploying"
	StateReady     = "ready"
)

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// CheckName refuses names that AWS (stack, key pair, alarm, parameter
// path) or the file system would not take as they are.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("cluster name %q: use 1 to 32 lower-case letters, digits and dashes, starting with a letter", name)
	}
	return nil
}

// Dir is where the cluster's files live on this machine.
func Dir(name string) (string, error) {
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the user config dir: %w", err)
	}
	return filepath.Join(base, "simswarm", "aws", name), nil
}

// NoProfileError says this machine has no profile for the cluster.
type NoProfileError struct{ Name, Path string }

func (e *NoProfileError) Error() string {
	return fmt.Sprintf("no cluster named %q on this machine (no profile %s): simswarm aws init --name %s makes one", e.Name, e.Path, e.Name)
}

// LoadProfile reads the cluster's profile; a missing one is a
// *NoProfileError.
func LoadProfile(name string) (*Profile, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	dir, err := Dir(name)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "profile.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &NoProfileError{Name: name, Path: path}
	}
	if err != nil {
		return nil, fmt.Errorf("reading cluster profile: %w", err)
	}
	var p Profile
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("cluster profile %s is not valid JSON: %w", path, err)
	}
	if p.Name != name {
		return nil, fmt.Errorf("cluster profile %s names cluster %q, not %q", path, p.Name, name)
	}
	return &p, nil
}

// Save writes the profile atomically, readable by the user only.
func (p *Profile) Save() error {
	dir, err := Dir(p.Name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "profile.json"), append(b, '\n'), 0o600)
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// SSHAddr is the manager's sshd as host:port.
func (p *Profile) SSHAddr() string {
	port := p.SSHPort
	if port == 0 {
		port = 22
	}
	return net.JoinHostPort(p.ManagerAddress, strconv.Itoa(port))
}

// TunnelConfig is how to reach the manager and what to forward.
func (p *Profile) TunnelConfig() tunnel.Config {
	f := p.Forwards
	if len(f) == 0 {
		f = tunnel.DefaultForwards(p.ManagerPrivate)
	}
	return tunnel.Config{Addr: p.SSHAddr(), User: p.User, KeyPath: p.KeyPath, KnownHosts: p.KnownHosts, Forwards: f}
}

// writeKnownHosts pins the manager's host key under its current address.
// It is rewritten when the address changes (a stopped and started instance
// gets a new public address) but the key stays the one recorded at init.
func (p *Profile) writeKnownHosts() error {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(p.HostKey))
	if err != nil {
		return fmt.Errorf("the manager's recorded host key %q is not an SSH public key: %w", p.HostKey, err)
	}
	return writeFileAtomic(p.KnownHosts, []byte(tunnel.KnownHostsLine(p.SSHAddr(), key)+"\n"), 0o600)
}

func (p *Profile) docker() string {
	if p.Docker == "" {
		return "docker" // ec2-user is in the docker group (user data)
	}
	return p.Docker
}

func (p *Profile) remoteDir() string {
	if p.RemoteDir == "" {
		return "simswarm"
	}
	return p.RemoteDir
}
