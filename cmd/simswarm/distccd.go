package main

import (
	"os"
	"runtime"

	"github.com/simswarm/simswarm/internal/build"
	"github.com/simswarm/simswarm/internal/units"
	"github.com/spf13/cobra"
)

// distccdCommand runs Debian's distccd the way a cluster should: bound to
// one address, accepting only the build network, and supervised so that
// its workers end with it. An open distccd lets anyone who reaches it run
// commands on the host, so --allow is required and must stay within a
// private network.
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
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			host, port, err := splitHostPort(listen, "--listen")
			if err != nil {
				return err
			}
			if err := build.CheckAllow(allow); err != nil {
				return usageErr("%v", err)
			}
			if err := units.Check("--jobs", jobs, 1, units.MaxSlots); err != nil {
				return usageErr("%v", err)
			}
			_, ctx, stop := beginWorker(false)
			defer stop()
			d := &build.Distccd{Host: host, Port: port, Allow: allow, Jobs: jobs, LogFile: log, Stderr: os.Stderr}
			code, err := d.Run(ctx)
			if err != nil {
				if code == 0 {
					code = 2
				}
				return &exitError{code: code, err: err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "0.0.0.0:3632", "address to listen on")
	f.StringSliceVar(&allow, "allow", nil, "networks allowed to compile here (CIDR, at most a private network in all); required")
	f.IntVar(&jobs, "jobs", runtime.NumCPU()+2, "parallel compiles, 1 to 4096")
	f.StringVar(&log, "log-file", "", "log to this file (default: stderr)")
	return cmd
}
