package main

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/simswarm/simswarm/internal/campaign"
	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, cancelCommand) }

func cancelCommand() *cobra.Command {
	var (
		conn   connFlags
		state  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "cancel <campaign>",
		Short: "Cancel a submitted campaign: its waiting runs leave the queue, its running ones stop",
		Long: `Cancel cancels a campaign submitted earlier (simswarm run --detach, or one
whose client was interrupted while the engine was out of reach). It returns
only once the engine has the cancel: no run of the campaign starts after it.
The same simswarm run command submits the campaign again.`,
		Example: `  simswarm cancel 3f2a9c0d11e4b7a5
  simswarm cancel 3f2a9c0d11e4b7a5 --server nats://manager:4222 --creds client.creds`,
		Args: campaignArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if !campaignID.MatchString(id) {
				return usageErr("invalid campaign %q: a campaign id is 16 hex digits, as simswarm run --detach and simswarm status show it", id)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			eng, closeEngine, err := openEngine(ctx, &conn, state, "simswarm-cancel")
			if err != nil {
				return err
			}
			defer closeEngine()
			rep, err := campaign.Cancel(ctx, eng, id)
			if errors.Is(err, campaign.ErrUnknownCampaign) {
				return &exitError{code: 2, err: err}
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			rep.Print(cmd.OutOrStdout())
			return nil
		},
	}
	f := cmd.Flags()
	conn.add(f)
	f.StringVar(&state, "state", "", "embedded engine state directory (default $SIMSWARM_STATE or the user cache dir)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// cancelHint is the command that cancels campaign id on the engine conn
// reaches.
func cancelHint(conn connFlags, id string) string {
	parts := []string{"simswarm cancel", id}
	if conn.server != "" {
		parts = append(parts, "--server", conn.server)
	}
	if conn.creds != "" {
		parts = append(parts, "--creds", conn.creds)
	}
	return strings.Join(parts, " ")
}
