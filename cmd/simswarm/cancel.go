package main

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/simswarm/simswarm/internal/campaign"
	"github.com/spf13/cobra"
)

func cancelCommand() *cobra.Command {
	var (
		conn   connFlags
		state  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "cancel <campaign> [<campaign>...]",
		Short: "Cancel a submitted campaign: its waiting runs leave the queue, its running ones stop",
		Long: `Cancel cancels a campaign submitted earlier (simswarm run --detach, or one
whose client was interrupted while the engine was out of reach). It returns
only once the engine has the cancel: no run of the campaign starts after it.
The same simswarm run command submits the campaign again.
Exit status: 0 cancelled (or done: nothing to cancel), 1 the engine did not
take the cancel, 2 usage, an unknown campaign, or no engine reachable.`,
		Example: `  simswarm cancel 3f2a9c0d11e4b7a5
  simswarm cancel 3f2a9c0d11e4b7a5 --server nats://manager:4222 --creds client.creds`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("cancel needs the campaign id (16 hex digits, as simswarm run --detach and simswarm status show it)")
			}
			for _, id := range args {
				if !campaignID.MatchString(id) {
					return usageErr("invalid campaign %q: a campaign id is 16 hex digits, as simswarm run --detach and simswarm status show it", id)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			eng, closeEngine, err := openEngine(ctx, &conn, state, "simswarm-cancel")
			if err != nil {
				return err
			}
			defer closeEngine()
			var reps []*campaign.CancelReport
			for _, id := range args {
				rep, err := campaign.Cancel(ctx, eng, id)
				if errors.Is(err, campaign.ErrUnknownCampaign) {
					return &exitError{code: 2, err: err}
				}
				if err != nil {
					return &exitError{code: 1, err: err}
				}
				if !asJSON {
					rep.Print(cmd.OutOrStdout())
				}
				reps = append(reps, rep)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), reps)
			}
			return nil
		},
	}
	f := cmd.Flags()
	conn.add(f)
	f.StringVar(&state, "state", "", "embedded engine state directory (default $SIMSWARM_STATE or the user cache dir)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// cancelHint is the command that cancels campaigns ids (space-separated)
// on the engine conn reaches.
func cancelHint(conn connFlags, ids string) string {
	parts := []string{"simswarm cancel", ids}
	if conn.server != "" {
		parts = append(parts, "--server", conn.server)
	}
	if conn.creds != "" {
		parts = append(parts, "--creds", conn.creds)
	}
	return strings.Join(parts, " ")
}
