package main

import (
	"context"
	"fmt"
	"time"

	"github.com/simswarm/simswarm/internal/creds"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/units"
	"github.com/spf13/cobra"
)

// initCommand sets the engine up on a NATS server simswarm did not start,
// such as the official nats image, which knows nothing of our streams.
func initCommand() *cobra.Command {
	var (
		conn      connFlags
		replicas  int
		leaseFlag string
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the engine's streams and buckets on an existing NATS server (e.g. the official nats image)",
		Example: `  docker run -d -p 4222:4222 -v nats:/data nats:2.12 -js -sd /data --user simswarm --pass "$PASS"
  printf 'user = "simswarm"\npassword = "%s"\n' "$PASS" > client.creds; chmod 600 client.creds
  simswarm init --server nats://localhost:4222 --creds client.creds`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := conn.required(); err != nil {
				return err
			}
			if err := units.Check("--replicas", replicas, 1, units.MaxReplicas); err != nil {
				return usageErr("%v", err)
			}
			lease, err := parseLease(leaseFlag)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			o := engine.DialOptions{URL: conn.server, CA: conn.ca, Name: "simswarm-init"}
			if conn.creds != "" {
				c, err := creds.Load(conn.creds)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				o.Creds = &c
			}
			nc, err := engine.Dial(ctx, o)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			defer nc.Close()
			eng, err := engine.Setup(ctx, nc, replicas, lease)
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("%s: %w (is JetStream enabled, -js?)", conn.server, err)}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "simswarm engine ready on %s (replicas %d, lease %s)\n", conn.server, replicas, eng.Lease)
			return nil
		},
	}
	f := cmd.Flags()
	conn.add(f)
	f.IntVar(&replicas, "replicas", 1, "copies of every stream, 1 to 5 (3 on a 3-server JetStream cluster)")
	addLease(f, &leaseFlag)
	return cmd
}
