package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/simswarm/simswarm/internal/campaign"
	"github.com/simswarm/simswarm/internal/project"
	"github.com/simswarm/simswarm/internal/results"
	"github.com/spf13/cobra"
)

func resultsCommand() *cobra.Command {
	var (
		conn  connFlags
		state string
		dir   string
		req   results.Request
	)
	cmd := &cobra.Command{
		Use:   "results [flags] [DIR | CAMPAIGN]",
		Short: "Export result files as one table (CSV, JSON lines, Parquet), or a summary over repetitions",
		Long: `Results reads the OMNeT++ result files of a results directory (default: results
in the simulation's directory) and writes one tidy table: one row per result
item, opp_scavetool's CSV-R columns plus one column per iteration variable and
repetition. A campaign id reads the campaign's results from the engine instead.
With simswarm.toml's [results] files (template simulators), those CSV or JSON
files are concatenated with each run's variables as columns.
Exit status: 0 done, 2 bad usage or a bad result file (with --keep-going the
other files are still exported).`,
		Example: `  simswarm results -o aloha.csv
  simswarm results --filter 'channelUtilization:last AND itervar:numHosts =~ {10..15}' --summary
  simswarm results --format parquet -o aloha.parquet --provenance results
  simswarm results --vectors --format json --filter 'module =~ Aloha.server' > vectors.jsonl`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := untilSignal()
			defer cancel()
			req.Stdout = cmd.OutOrStdout()
			fetched := "" // the temporary copy of a campaign's files
			req.Dir = filepath.Join(dir, "results")
			if len(args) == 1 {
				req.Dir = args[0]
				if _, err := os.Stat(args[0]); err != nil && campaignID.MatchString(args[0]) {
					tmp, err := os.MkdirTemp("", "simswarm-results-")
					if err != nil {
						return &exitError{code: 2, err: err}
					}
					defer os.RemoveAll(tmp)
					if err := fetchCampaign(ctx, &conn, state, args[0], tmp); err != nil {
						return err
					}
					req.Dir, fetched = tmp, tmp
				}
			}
			if p, err := project.Find(dir); err == nil && p.Config != nil {
				req.Templates = p.Config.Results.Files
			} else if err != nil && len(args) == 0 {
				return &exitError{code: 2, err: err}
			}
			rep, err := results.Do(ctx, req)
			if fetched != "" {
				// The copy is ours, a temporary directory: messages name the
				// campaign instead.
				rep, err = hideDir(rep, err, fetched, "campaign "+args[0])
			}
			if rep != nil {
				for _, n := range rep.Notes {
					fmt.Fprintln(os.Stderr, "simswarm: warning: "+n)
				}
			}
			if rep != nil && len(rep.Failed) > 0 {
				for _, e := range rep.Failed {
					fmt.Fprintln(os.Stderr, "simswarm: "+e.Error())
				}
				return &exitError{code: 2, err: fmt.Errorf("%d result files could not be read; %d files exported", len(rep.Failed), rep.Files)}
			}
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	conn.add(f)
	addStateFlag(f, &state, "embedded engine state directory, for a campaign id (default $SIMSWARM_STATE or the user cache dir)")
	f.StringVarP(&dir, "directory", "C", ".", "the simulation's `DIR`: its results directory and simswarm.toml")
	f.StringVar(&req.Format, "format", results.FormatCSV, "output format: csv, json (lines) or parquet")
	f.StringVarP(&req.Output, "output", "o", "", "write to `FILE` (default standard output)")
	f.StringVar(&req.Filter, "filter", "", "opp_scavetool filter expression (name =~ ..., module =~ ..., itervar:X =~ ..., AND, OR, NOT)")
	f.BoolVar(&req.Vectors, "vectors", false, "also export vectors from .vec files (through their .vci index)")
	f.BoolVar(&req.Summary, "summary", false, "per (iteration variables, module, name) over repetitions: n, mean, stddev, 95% confidence half-width")
	f.BoolVar(&req.Provenance, "provenance", false, "join each run's provenance (host, times, exit, command, keys) as columns")
	f.BoolVar(&req.KeepGoing, "keep-going", false, "export the other files when one is bad (exit status still 2)")
	return cmd
}

func fetchCampaign(ctx context.Context, conn *connFlags, state, id, dir string) error {
	eng, closeEngine, err := openEngine(ctx, conn, state, "simswarm-results")
	if err != nil {
		return err
	}
	defer closeEngine()
	if _, err := campaign.Fetch(ctx, eng, id, dir); err != nil {
		if errors.Is(err, context.Canceled) {
			return &exitError{code: 130, err: errors.New("interrupted")}
		}
		return &exitError{code: 2, err: errors.New(strings.ReplaceAll(err.Error(), dir, "campaign "+id))}
	}
	return nil
}

// hideDir rewrites the messages of an export of dir to name label
// instead.
func hideDir(rep *results.Report, err error, dir, label string) (*results.Report, error) {
	hide := func(e error) error {
		if e == nil || !strings.Contains(e.Error(), dir) {
			return e
		}
		return errors.New(strings.ReplaceAll(e.Error(), dir, label))
	}
	if rep != nil {
		for i, e := range rep.Failed {
			rep.Failed[i] = hide(e)
		}
	}
	return rep, hide(err)
}
