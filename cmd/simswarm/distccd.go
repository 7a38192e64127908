package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"
)

// distccdCommand runs Debian's distccd the way a cluster should: bound to
// one address, accepting only the build network. An open distccd lets anyone
// who reaches it run commands on the host, so --allow is required and
// "everyone" is refused.
func distccdCommand() *cobra.Command {
	var (
		listen string
		allow  []string
		jobs   int
		log    string
	)
	cmd := &cobra.Command{
		Use:     "distccd",
		Short:   "Run a distcc compile server restricted to the build network",
		Example: `  simswarm distccd --listen 0.0.0.0:3632 --allow 10.0.9.0/24`,
		RunE: func(cmd *cobra.Command, args []string) error {
			host, port, err := splitHostPort(listen, "--listen")
			if err != nil {
				return err
			}
			if len(allow) == 0 {
				return usageErr("--allow is required: the network (CIDR) of the builders, e.g. the buildnet subnet")
			}
			for _, a := range allow {
				_, n, err := net.ParseCIDR(a)
				if err != nil {
					if net.ParseIP(a) == nil {
						return usageErr("invalid --allow %q: want an address or CIDR such as 10.0.9.0/24", a)
					}
					continue
				}
				if ones, _ := n.Mask.Size(); ones == 0 {
					return usageErr("--allow %s admits every address: an open distccd runs anyone's commands", a)
				}
			}
			if jobs < 1 {
				return usageErr("--jobs must be at least 1")
			}
			bin, err := exec.LookPath("distccd")
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("distccd is not installed (Debian: apt-get install distcc)")}
			}
			argv := []string{bin, "--daemon", "--no-detach", "--port", strconv.Itoa(port), "--jobs", strconv.Itoa(jobs)}
			if host != "" && host != "0.0.0.0" {
				argv = append(argv, "--listen", host)
			}
			for _, a := range allow {
				argv = append(argv, "--allow", a)
			}
			if os.Geteuid() == 0 {
				// distccd refuses to compile as root and drops to this user.
				argv = append(argv, "--user", "nobody")
			}
			if log != "" {
				argv = append(argv, "--log-file", log, "--log-level", "info")
				if err := prepareLog(log); err != nil {
					return usageErr("--log-file %s: %v", log, err)
				}
			} else {
				argv = append(argv, "--log-stderr")
			}
			return syscall.Exec(bin, argv, os.Environ())
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "0.0.0.0:3632", "address to listen on")
	f.StringSliceVar(&allow, "allow", nil, "networks allowed to compile here (CIDR); required")
	f.IntVar(&jobs, "jobs", runtime.NumCPU()+2, "parallel compiles")
	f.StringVar(&log, "log-file", "", "log to this file (default: stderr)")
	return cmd
}

// prepareLog creates the log file for the user distccd runs as: after
// dropping root it could not create it itself.
func prepareLog(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	f.Close()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(path, uid, gid)
}
