package aws

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/simswarm/simswarm/internal/creds"
	"github.com/simswarm/simswarm/internal/tunnel"
	"golang.org/x/crypto/ssh"
)

// DockerStack is the name the Docker stack is deployed under.
const DockerStack = "simswarm"

// dialManager connects to the manager's sshd, waiting while it boots; a
// host key mismatch or an unusable key is final at once.
func (cl *Cluster) dialManager(ctx context.Context, p *Profile) (*ssh.Client, error) {
	cl.defaults()
	deadline := time.Now().Add(cl.SSHTimeout)
	for {
		c, err := tunnel.Dial(ctx, p.TunnelConfig())
		if err == nil {
			return c, nil
		}
		var hk *tunnel.HostKeyError
		if errors.As(err, &hk) || strings.Contains(err.Error(), "SSH key ") || strings.Contains(err.Error(), "unable to authenticate") {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the manager's SSH did not answer within %s: %w", cl.SSHTimeout, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(cl.Poll):
		}
	}
}

// finish does on the manager what makes the cluster usable: (after a
// resume) forget the workers the group replaced, wait until every node has
// joined, deploy the Docker stack. The profile is ready afterwards.
func (cl *Cluster) finish(ctx context.Context, p *Profile, stackFile string, resumed bool) error {
	client, err := cl.dialManager(ctx, p)
	if err != nil {
		return err
	}
	defer client.Close()
	if resumed {
		if err := cl.pruneDownNodes(ctx, client, p); err != nil {
			return err
		}
	}
	if err := cl.waitNodes(ctx, client, p, p.Workers+1); err != nil {
		return err
	}
	if err := cl.deploy(ctx, client, p, stackFile); err != nil {
		return err
	}
	p.State = StateReady
	return p.Save()
}

// Deploy deploys (again) the Docker stack on the manager: stackFile when
// given, else the one kept there since the last deploy.
func (cl *Cluster) Deploy(ctx context.Context, p *Profile, stackFile string) error {
	client, err := cl.dialManager(ctx, p)
	if err != nil {
		return err
	}
	defer client.Close()
	return cl.deploy(ctx, client, p, stackFile)
}

// waitNodes waits until the swarm has want nodes ready.
func (cl *Cluster) waitNodes(ctx context.Context, client *ssh.Client, p *Profile, want int) error {
	cl.defaults()
	deadline := time.Now().Add(cl.NodeTimeout)
	last := -1
	for {
		out, err := tunnel.Run(ctx, client, p.docker()+" node ls --format '{{.Status}}'", nil)
		if err != nil {
			return fmt.Errorf("listing the swarm's nodes on the manager: %w", err)
		}
		ready := 0
		for _, l := range strings.Split(out, "\n") {
			if strings.TrimSpace(l) == "Ready" {
				ready++
			}
		}
		if ready != last {
			fmt.Fprintf(cl.Out, "swarm nodes ready: %d of %d\n", ready, want)
			last = ready
		}
		if ready >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d swarm nodes are ready after %s: a worker's /var/log/simswarm-init.log, or the auto-scaling group's activity in the AWS console, tells why", ready, want, cl.NodeTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cl.Poll):
		}
	}
}

// pruneDownNodes removes the swarm's record of workers that no longer
// exist: halting scales the group to 0, which terminates them, and resume
// starts new ones that join afresh.
func (cl *Cluster) pruneDownNodes(ctx context.Context, client *ssh.Client, p *Profile) error {
	out, err := tunnel.Run(ctx, client, p.docker()+" node ls --format '{{.ID}} {{.Status}} {{.ManagerStatus}}'", nil)
	if err != nil {
		return fmt.Errorf("listing the swarm's nodes on the manager: %w", err)
	}
	var down []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[1] == "Down" { // a third field: a manager
			down = append(down, f[0])
		}
	}
	if len(down) == 0 {
		return nil
	}
	if _, err := tunnel.Run(ctx, client, p.docker()+" node rm "+strings.Join(down, " "), nil); err != nil {
		return fmt.Errorf("removing the swarm's departed workers: %w", err)
	}
	fmt.Fprintf(cl.Out, "removed %d departed worker(s) from the swarm\n", len(down))
	return nil
}

// deploy prepares what the Docker stack expects (the engine's credentials
// as the secret simswarm_creds, the label simswarm.engine=true on the
// manager), copies stackFile (if given) to the manager and runs docker
// stack deploy there; without one it redeploys the copy kept there.
func (cl *Cluster) deploy(ctx context.Context, client *ssh.Client, p *Profile, stackFile string) error {
	dir := shellQuote(p.remoteDir())
	if stackFile != "" {
		f, err := os.Open(stackFile)
		if err != nil {
			return fmt.Errorf("stack file: %w", err)
		}
		defer f.Close()
		if _, err := tunnel.Run(ctx, client, "mkdir -p "+dir+" && cat > "+dir+"/stack.yml", f); err != nil {
			return fmt.Errorf("copying %s to the manager: %w", stackFile, err)
		}
	} else if _, err := tunnel.Run(ctx, client, "test -f "+dir+"/stack.yml", nil); err != nil {
		fmt.Fprintf(cl.Out, "no Docker stack deployed yet: simswarm aws deploy --name %s --stack-file deploy/stack.yml deploys it\n", p.Name)
		return nil
	}
	if err := cl.engineCreds(ctx, client, p); err != nil {
		return err
	}
	docker := p.docker()
	label := docker + " node update --label-add simswarm.engine=true \"$(" + docker + " info --format '{{.Swarm.NodeID}}')\""
	if _, err := tunnel.Run(ctx, client, label, nil); err != nil {
		return fmt.Errorf("labelling the manager for the engine: %w", err)
	}
	var env []string
	for k, v := range p.StackEnv {
		env = append(env, k+"="+shellQuote(v))
	}
	sort.Strings(env)
	cmd := "cd " + dir + " && "
	if len(env) > 0 {
		cmd += "env " + strings.Join(env, " ") + " "
	}
	cmd += docker + " stack deploy --with-registry-auth -c stack.yml " + DockerStack
	out, err := tunnel.Run(ctx, client, cmd, nil)
	if err != nil {
		return fmt.Errorf("deploying the Docker stack on the manager: %w", err)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			fmt.Fprintln(cl.Out, "  "+l)
		}
	}
	fmt.Fprintf(cl.Out, "Docker stack %s deployed on the manager\n", DockerStack)
	return nil
}

// engineCreds makes sure the engine's credentials exist once: kept on the
// manager (0600) as the source of the Docker secret, and on this machine
// for clients. They travel only inside the SSH connection, never printed.
func (cl *Cluster) engineCreds(ctx context.Context, client *ssh.Client, p *Profile) error {
	dir, err := Dir(p.Name)
	if err != nil {
		return err
	}
	if p.CredsPath == "" {
		p.CredsPath = filepath.Join(dir, creds.FileName)
	}
	rdir := shellQuote(p.remoteDir())
	remote, err := tunnel.Run(ctx, client, "cat "+rdir+"/"+creds.FileName+" 2>/dev/null || true", nil)
	if err != nil {
		return fmt.Errorf("reading the engine's credentials on the manager: %w", err)
	}
	if strings.TrimSpace(remote) != "" {
		if err := writeFileAtomic(p.CredsPath, []byte(remote), 0o600); err != nil {
			return err
		}
	} else {
		// Credentials from an earlier, interrupted deploy are kept: a
		// client may already hold them.
		if _, err := creds.Load(p.CredsPath); err != nil {
			if err := creds.Save(p.CredsPath, creds.Generate()); err != nil {
				return fmt.Errorf("saving the engine's credentials: %w", err)
			}
		}
		f, err := os.Open(p.CredsPath)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := tunnel.Run(ctx, client, "mkdir -p "+rdir+" && umask 077 && cat > "+rdir+"/"+creds.FileName, f); err != nil {
			return fmt.Errorf("copying the engine's credentials to the manager: %w", err)
		}
	}
	docker := p.docker()
	secret := docker + " secret inspect simswarm_creds >/dev/null 2>&1 || " + docker + " secret create simswarm_creds " + rdir + "/" + creds.FileName
	if _, err := tunnel.Run(ctx, client, secret, nil); err != nil {
		return fmt.Errorf("creating the Docker secret simswarm_creds: %w", err)
	}
	return p.Save()
}

// shellQuote quotes s for the remote POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
