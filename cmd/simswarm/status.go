package main

import (
	"context"
	"time"

	"github.com/simswarm/simswarm/internal/status"
	"github.com/simswarm/simswarm/internal/units"
	"github.com/spf13/cobra"
)

func statusCommand() *cobra.Command {
	var (
		conn   connFlags
		state  string
		asJSON bool
		recent int
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print queues, workers and campaigns of an engine",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := units.Check("--campaigns", recent, 0, units.MaxCampaigns); err != nil {
				return usageErr("%v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			eng, closeEngine, err := openEngine(ctx, &conn, state, "simswarm-status")
			if err != nil {
				return err
			}
			defer closeEngine()
			r, err := status.Collect(ctx, eng, recent)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), r)
			}
			r.Print(cmd.OutOrStdout(), time.Now())
			return nil
		},
	}
	f := cmd.Flags()
	conn.add(f)
	addStateFlag(f, &state, "embedded engine state directory (default $SIMSWARM_STATE or the user cache dir)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.IntVar(&recent, "campaigns", 10, "how many recent campaigns to show (0 to 100000)")
	return cmd
}
