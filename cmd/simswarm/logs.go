package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func logsCommand() *cobra.Command {
	var (
		conn  connFlags
		state string
	)
	cmd := &cobra.Command{
		Use:   "logs build <build-id>",
		Short: "Print the full log of a build (the id simswarm run prints, or a prefix of it)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "build" {
				return usageErr("unknown log kind %q: simswarm logs build <build-id>", args[0])
			}
			id := strings.ToLower(args[1])
			if len(id) < 4 || strings.Trim(id, "0123456789abcdef") != "" {
				return usageErr("build id %q: give at least 4 hex digits of the id simswarm run printed", args[1])
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			eng, closeEngine, err := openEngine(ctx, &conn, state, "simswarm-logs")
			if err != nil {
				return err
			}
			defer closeEngine()
			keys, err := eng.BuildKeys(ctx)
			if err != nil || len(keys) == 0 {
				return &exitError{code: 2, err: fmt.Errorf("no builds recorded on this engine")}
			}
			var match []string
			for _, k := range keys {
				if strings.HasPrefix(k, id) {
					match = append(match, k)
				}
			}
			switch len(match) {
			case 0:
				return &exitError{code: 2, err: fmt.Errorf("no build %s on this engine", id)}
			case 1:
			default:
				return &exitError{code: 2, err: fmt.Errorf("build id %s is ambiguous (%d builds): give more digits", id, len(match))}
			}
			rec, ok, err := eng.Build(ctx, match[0])
			if err != nil || !ok {
				return &exitError{code: 2, err: fmt.Errorf("read build %s: %v", id, err)}
			}
			if rec.Log == "" {
				return &exitError{code: 2, err: fmt.Errorf("build %s kept no log (no build command ran)", id)}
			}
			if err := eng.GetObject(ctx, rec.Log, os.Stdout); err != nil {
				return &exitError{code: 2, err: err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	conn.add(f)
	addStateFlag(f, &state, "embedded engine state directory (default $SIMSWARM_STATE or the user cache dir)")
	return cmd
}
