package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/simswarm/simswarm/internal/aws"
	"github.com/simswarm/simswarm/internal/tunnel"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// awsFlags are the flags every aws subcommand shares.
type awsFlags struct {
	name, region, profile string
}

func (a *awsFlags) settings() aws.Settings {
	return aws.Settings{Region: a.region, Profile: a.profile}
}

// stackFlags are what a deploy of the Docker stack reads.
type stackFlags struct {
	file, registry, tag, runtime string
}

func (s *stackFlags) add(f *pflag.FlagSet, fileHelp string) {
	f.StringVar(&s.file, "stack-file", "", fileHelp)
	f.StringVar(&s.registry, "registry", "", "registry the nodes pull simswarm's images from (the stack's SIMSWARM_REGISTRY), e.g. ghcr.io/you")
	f.StringVar(&s.tag, "tag", "", "tag the images were pushed with (the stack's SIMSWARM_TAG)")
	f.StringVar(&s.runtime, "runtime", "", "simulator runtime image name (the stack's SIMSWARM_RUNTIME), e.g. simswarm-runtime-ns3")
}

// env is the stack variables given on the command line.
func (s *stackFlags) env() map[string]string {
	m := map[string]string{}
	for k, v := range map[string]string{"SIMSWARM_REGISTRY": s.registry, "SIMSWARM_TAG": s.tag, "SIMSWARM_RUNTIME": s.runtime} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

// awsFailed maps an error of the aws package to the command's exit: 130
// when interrupted (the same command carries on), 1 otherwise.
func awsFailed(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return &exitError{code: 130, err: fmt.Errorf("interrupted: %s; the same command carries on from where it stopped", what)}
	}
	return &exitError{code: 1, err: err}
}

func awsCommand() *cobra.Command {
	var af awsFlags
	cmd := &cobra.Command{
		Use:   "aws",
		Short: "Create, connect to, halt, resume and remove a simswarm cluster on AWS",
		Long: `Create, connect to, halt, resume and remove a simswarm cluster on AWS:
a Docker Swarm manager and an auto-scaling group of workers made by a
CloudFormation stack, reached through an SSH tunnel. Credentials and region
come from the standard AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
AWS_PROFILE, ~/.aws/config and ~/.aws/credentials), or --profile/--region.
See docs/aws.md.`,
		// Every subcommand works on the named cluster: check the name once.
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := aws.CheckName(af.name); err != nil {
				return usageErr("%v", err)
			}
			return nil
		},
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&af.name, "name", "simswarm", "cluster name (the CloudFormation stack and key pair are named after it)")
	pf.StringVar(&af.region, "region", "", "AWS region (default: AWS_REGION or the profile's region; later commands: the cluster's)")
	pf.StringVar(&af.profile, "profile", "", "AWS shared config profile (default: AWS_PROFILE)")
	cmd.AddCommand(awsInitCommand(&af), awsConnectCommand(&af), awsDisconnectCommand(&af), awsStatusCommand(&af),
		awsHaltCommand(&af), awsResumeCommand(&af), awsDeployCommand(&af), awsRemoveCommand(&af))
	return cmd
}

func awsInitCommand(af *awsFlags) *cobra.Command {
	var (
		o  aws.InitOptions
		sf stackFlags
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the cluster: key pair, CloudFormation stack, swarm, Docker stack, connection profile",
		Example: `  simswarm aws init --workers 3 --instance-type c5.4xlarge --registry ghcr.io/you --tag v1
  simswarm aws init --name big --workers 10 --ssh-cidr 203.0.113.7/32`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.StackFile = sf.file
			if o.StackFile == "" {
				if _, err := os.Stat("deploy/stack.yml"); err == nil {
					o.StackFile = "deploy/stack.yml"
				}
			}
			o.StackEnv = sf.env()
			o.AWSProfile = af.profile
			ctx, cancel := untilSignal()
			defer cancel()
			c, err := aws.Load(ctx, af.settings())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			cl := &aws.Cluster{Name: af.name, C: c, Out: cmd.ErrOrStderr()}
			p, err := cl.Init(ctx, o)
			if err != nil {
				return awsFailed(ctx, "init of cluster "+af.name, err)
			}
			if o.StackFile == "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "no stack file given and no deploy/stack.yml here: the swarm is up without simswarm's services; simswarm aws deploy --name %s --stack-file FILE deploys them\n", af.name)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "cluster %s is up in %s: manager %s (profile in %s)\n", p.Name, p.Region, p.ManagerAddress, dirOf(p.Name))
			fmt.Fprintf(out, "next: simswarm aws connect --name %s\n", p.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Workers, "workers", 3, "number of worker instances")
	f.StringVar(&o.WorkerType, "instance-type", "c5.4xlarge", "EC2 instance type of the workers")
	f.StringVar(&o.ManagerType, "manager-type", "c5.2xlarge", "EC2 instance type of the manager")
	f.StringVar(&o.SSHCIDR, "ssh-cidr", "", "addresses admitted to SSH, e.g. 203.0.113.7/32 (default: this machine's public address, asked of $SIMSWARM_IP_ENDPOINT or "+aws.DefaultIPEndpoint+")")
	sf.add(f, "Docker stack file deployed on the manager (default deploy/stack.yml when present)")
	return cmd
}

func dirOf(name string) string {
	d, err := aws.Dir(name)
	if err != nil {
		return "?"
	}
	return d
}

func awsConnectCommand(af *awsFlags) *cobra.Command {
	var foreground bool
	cmd := &cobra.Command{
		Use:   "connect",
		Short: "Open an SSH tunnel to the manager (engine 4222, dashboard 9181, visualizer 8080 on localhost), in the background",
		RunE: func(cmd *cobra.Command, args []string) error {
			if foreground {
				return connectForeground(cmd, af.name)
			}
			return connectBackground(cmd, af.name)
		},
	}
	cmd.Flags().BoolVar(&foreground, "foreground", false, "stay in the foreground (Ctrl-C stops the tunnel)")
	return cmd
}

// connectBackground starts `simswarm aws connect --foreground` detached,
// in a new session, and returns once it reports the tunnel up.
func connectBackground(cmd *cobra.Command, name string) error {
	p, err := aws.LoadProfile(name)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	pidPath := tunnel.PIDPath(name)
	pid, running, err := tunnel.ReadPID(pidPath)
	switch {
	case err == nil && running:
		return &exitError{code: 1, err: &tunnel.RunningError{Path: pidPath, PID: pid}}
	case err == nil:
		fmt.Fprintf(cmd.ErrOrStderr(), "replacing the stale PID file %s (pid %d is gone)\n", pidPath, pid)
		if err := os.Remove(pidPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return &exitError{code: 1, err: fmt.Errorf("removing stale PID file: %w", err)}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return &exitError{code: 1, err: fmt.Errorf("reading PID file: %w", err)}
	}
	exe, err := os.Executable()
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("finding this program to start the tunnel: %w", err)}
	}
	pid, err = tunnel.StartBackground(exe, []string{"aws", "connect", "--foreground", "--name", name}, tunnel.LogPath(name), time.Minute)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	printForwards(cmd.OutOrStdout(), p, fmt.Sprintf("tunnel to cluster %s up in the background (pid %d, PID file %s)", name, pid, pidPath))
	fmt.Fprintf(cmd.OutOrStdout(), "simswarm aws disconnect --name %s stops it\n", name)
	return nil
}

func printForwards(w io.Writer, p *aws.Profile, head string) {
	fmt.Fprintln(w, head)
	names := map[string]string{"4222": "engine", "9181": "dashboard", "8080": "visualizer"}
	for _, f := range p.TunnelConfig().Forwards {
		_, port, _ := net.SplitHostPort(f.Remote)
		label := names[port]
		if label == "" {
			label = f.Remote
		}
		fmt.Fprintf(w, "  %s -> manager %s (%s)\n", f.Local, f.Remote, label)
	}
	if p.CredsPath != "" {
		fmt.Fprintf(w, "  simswarm run --server nats://%s --creds %s -- ...\n", p.TunnelConfig().Forwards[0].Local, p.CredsPath)
	}
}

// connectForeground runs the tunnel in this process until a signal, with
// the PID file naming it, reporting its start to a waiting parent.
func connectForeground(cmd *cobra.Command, name string) error {
	fail := func(err error) error {
		tunnel.Ready(err)
		return &exitError{code: 1, err: err}
	}
	p, err := aws.LoadProfile(name)
	if err != nil {
		return fail(err)
	}
	pidPath := tunnel.PIDPath(name)
	if err := tunnel.WritePID(pidPath); err != nil {
		return fail(err)
	}
	defer tunnel.RemovePID(pidPath)
	ctx, cancel := untilSignal()
	defer cancel()
	t, err := tunnel.Open(ctx, p.TunnelConfig())
	if err != nil {
		return fail(err)
	}
	tunnel.Ready(nil)
	slog.Info("tunnel up", "cluster", name, "manager", p.SSHAddr(), "pid", os.Getpid())
	printForwards(cmd.OutOrStdout(), p, fmt.Sprintf("tunnel to cluster %s up (Ctrl-C stops it)", name))
	if err := t.Serve(ctx); err != nil {
		slog.Error("tunnel stopped", "cluster", name, "err", err)
		return &exitError{code: 1, err: err}
	}
	slog.Info("tunnel stopped", "cluster", name)
	return nil
}

func awsDisconnectCommand(af *awsFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "disconnect",
		Short: "Stop the cluster's background tunnel",
		RunE: func(cmd *cobra.Command, args []string) error {
			return disconnect(cmd.OutOrStdout(), af.name)
		},
	}
}

func disconnect(w io.Writer, name string) error {
	pid, stale, err := tunnel.Stop(tunnel.PIDPath(name), 5*time.Second)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(w, "no tunnel to cluster %s is running\n", name)
	case err != nil:
		return &exitError{code: 1, err: err}
	case stale:
		fmt.Fprintf(w, "the tunnel to cluster %s (pid %d) was already gone; removed its stale PID file\n", name, pid)
	default:
		fmt.Fprintf(w, "tunnel to cluster %s stopped (pid %d)\n", name, pid)
	}
	return nil
}

func awsStatusCommand(af *awsFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the stack, instances, tunnel, idle alarm and estimated hourly cost",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := untilSignal()
			defer cancel()
			cl, p, err := aws.Open(ctx, af.name, af.settings())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			st, err := cl.Status(ctx, p)
			if err != nil {
				return awsFailed(ctx, "status", err)
			}
			st.Write(cmd.OutOrStdout())
			return nil
		},
	}
}

// openWithProfile is Open for commands that need this machine's profile.
func openWithProfile(ctx context.Context, cmd *cobra.Command, af *awsFlags) (*aws.Cluster, *aws.Profile, error) {
	cl, p, err := aws.Open(ctx, af.name, af.settings())
	if err != nil {
		return nil, nil, &exitError{code: 1, err: err}
	}
	if p == nil {
		dir, _ := aws.Dir(af.name)
		return nil, nil, &exitError{code: 1, err: &aws.NoProfileError{Name: af.name, Path: dir + "/profile.json"}}
	}
	cl.Out = cmd.ErrOrStderr()
	return cl, p, nil
}

func awsHaltCommand(af *awsFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "halt",
		Short: "Stop the manager and scale the workers to 0; everything else is kept",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := untilSignal()
			defer cancel()
			cl, p, err := openWithProfile(ctx, cmd, af)
			if err != nil {
				return err
			}
			// The tunnel would only retry a stopped manager.
			if err := disconnect(cmd.ErrOrStderr(), af.name); err != nil {
				return err
			}
			if err := cl.Halt(ctx, p); err != nil {
				return awsFailed(ctx, "halt", err)
			}
			return nil
		},
	}
}

func awsResumeCommand(af *awsFlags) *cobra.Command {
	var (
		sf        stackFlags
		noConnect bool
	)
	cmd := &cobra.Command{
		Use:   "resume",
		Short: "Start a halted cluster again: instances, workers, Docker stack, tunnel",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := untilSignal()
			defer cancel()
			cl, p, err := openWithProfile(ctx, cmd, af)
			if err != nil {
				return err
			}
			mergeEnv(p, sf.env())
			if err := cl.Resume(ctx, p, sf.file); err != nil {
				return awsFailed(ctx, "resume", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cluster %s resumed: manager %s\n", p.Name, p.ManagerAddress)
			if noConnect {
				return nil
			}
			// A tunnel still running would keep dialling the manager's
			// old address: start a fresh one.
			if err := disconnect(cmd.ErrOrStderr(), af.name); err != nil {
				return err
			}
			return connectBackground(cmd, af.name)
		},
	}
	sf.add(cmd.Flags(), "Docker stack file to deploy (default: the one deployed before, kept on the manager)")
	cmd.Flags().BoolVar(&noConnect, "no-connect", false, "do not start the tunnel")
	return cmd
}

func mergeEnv(p *aws.Profile, env map[string]string) {
	for k, v := range env {
		if p.StackEnv == nil {
			p.StackEnv = map[string]string{}
		}
		p.StackEnv[k] = v
	}
}

func awsDeployCommand(af *awsFlags) *cobra.Command {
	var sf stackFlags
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Deploy (again) the Docker stack on the manager",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := untilSignal()
			defer cancel()
			cl, p, err := openWithProfile(ctx, cmd, af)
			if err != nil {
				return err
			}
			mergeEnv(p, sf.env())
			if err := p.Save(); err != nil {
				return &exitError{code: 1, err: err}
			}
			if err := cl.Deploy(ctx, p, sf.file); err != nil {
				return awsFailed(ctx, "deploy", err)
			}
			return nil
		},
	}
	sf.add(cmd.Flags(), "Docker stack file to deploy (default: the one deployed before, kept on the manager)")
	return cmd
}

func awsRemoveCommand(af *awsFlags) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "remove",
		Short: "Delete the cluster: stack (instances, volumes, network, alarm), key pair and local profile",
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes && !term.IsTerminal(int(os.Stdin.Fd())) {
				return usageErr("refusing to remove cluster %s without confirmation: there is no terminal to ask on; pass --yes", af.name)
			}
			ctx, cancel := untilSignal()
			defer cancel()
			cl, _, err := aws.Open(ctx, af.name, af.settings())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			cl.Out = cmd.ErrOrStderr()
			if !yes {
				fmt.Fprintf(cmd.ErrOrStderr(), "This deletes cluster %s in %s: its instances and volumes (with any results not yet downloaded), network, alarm, key pair and local profile.\nType the cluster's name to confirm: ", af.name, cl.C.Region)
				line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
				if strings.TrimSpace(line) != af.name {
					return &exitError{code: 1, err: errors.New("not confirmed: nothing was removed")}
				}
			}
			if err := disconnect(cmd.ErrOrStderr(), af.name); err != nil {
				return err
			}
			if err := cl.Remove(ctx); err != nil {
				return awsFailed(ctx, "remove", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cluster %s removed\n", af.name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}
