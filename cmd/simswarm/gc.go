package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/gc"
	"github.com/simswarm/simswarm/internal/units"
	"github.com/spf13/cobra"
)

func gcCommand() *cobra.Command {
	var (
		conn          connFlags
		state, older  string
		dryRun, asJSN bool
	)
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove what no recent campaign needs from the engine's store",
		Long: `gc removes snapshots, files, artifacts, results, build logs and records that
no campaign submitted or followed within --older-than reaches, and prints
what and how much. Nothing younger than that is removed, reached or not.
Without --server it opens the embedded engine of the state directory, which
must not be in use; with --server it works on a live cluster.`,
		Example: `  simswarm gc --dry-run
  simswarm gc --older-than 7d
  simswarm gc --server nats://manager:4222 --creds client.creds`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			age, err := units.ParseDuration(older)
			if err != nil || age <= 0 {
				return usageErr("invalid --older-than %q: give a positive age up to %s such as 30d, 12h or 90m", older, units.Describe(units.MaxDuration))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			defer cancel()
			eng, closeEngine, err := openEngine(ctx, &conn, state, "simswarm-gc")
			if err != nil {
				return err
			}
			defer closeEngine()
			rep, err := gc.Collect(ctx, eng, gc.Options{OlderThan: age, DryRun: dryRun})
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("gc: %w", err)}
			}
			if asJSN {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			rep.Print(cmd.OutOrStdout())
			return nil
		},
	}
	f := cmd.Flags()
	conn.add(f)
	addStateFlag(f, &state, "embedded engine state directory (default $SIMSWARM_STATE or the user cache dir)")
	f.StringVar(&older, "older-than", "30d", "keep what campaigns submitted or followed within this age reach")
	f.BoolVar(&dryRun, "dry-run", false, "print what would be removed; remove nothing")
	f.BoolVar(&asJSN, "json", false, "print JSON")
	return cmd
}

// parseStoreFlags reads simswarm server's --max-store and --results-ttl.
func parseStoreFlags(maxStore, ttl string) (int64, time.Duration, error) {
	bound, err := units.ParseSize(maxStore)
	if err != nil {
		return 0, 0, usageErr("invalid --max-store %q: %v", maxStore, err)
	}
	if bound > 0 && bound < 1<<20 {
		return 0, 0, usageErr("--max-store %s is too small to hold a snapshot: give at least 1MiB (0: no bound)", maxStore)
	}
	age, err := units.ParseDuration(ttl)
	if err != nil {
		return 0, 0, usageErr("invalid --results-ttl %q: give an age up to %s such as 7d or 12h (0: keep results)", ttl, units.Describe(units.MaxDuration))
	}
	return bound, age, nil
}

// startStoreLifecycle bounds the server's object store and starts the
// janitor that deletes results nobody fetched within their time to live.
func startStoreLifecycle(ctx context.Context, eng *engine.Engine, bound int64, ttl time.Duration, log *slog.Logger) error {
	if err := eng.BoundStore(ctx, bound); err != nil {
		return err
	}
	if ttl > 0 {
		go gc.ExpireEvery(ctx, eng, ttl, min(time.Hour, ttl), log)
	}
	return nil
}
