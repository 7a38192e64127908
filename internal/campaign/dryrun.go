package campaign

import (
	"context"
	"fmt"

	"github.com/simswarm/simswarm"
)

// dryRun prints the runs a campaign would execute and those already done.
func (c *Client) dryRun(ctx context.Context, p *prepared) (*Summary, error) {
	sum := &Summary{Campaign: p.id, Runs: len(p.runs), Results: p.results, Failures: []Failure{}}
	out := c.Opt.Stdout
	for _, pr := range p.projects {
		fmt.Fprintf(out, "project %s\t%s\t%s\n", pr.Dir, buildState(pr.Build), pr.Root)
	}
	fmt.Fprintf(out, "campaign %s: %d runs of %s in %s\n", p.id, len(p.runs), describe(p.cmd), p.proj.Workdir)
	for i, n := range p.runs {
		done := false
		if rec, ok, err := c.Eng.RunStatus(ctx, p.id, n); err == nil && ok &&
			rec.State == simswarm.RunSucceeded && present(p.results, rec) {
			done = true
		}
		state := "would run"
		if done {
			state = "done"
			sum.Cached++
		}
		vars := ""
		if i < len(p.vars) {
			vars = p.vars[i]
		}
		fmt.Fprintf(out, "run %d\t%s\t%s\n", n, state, vars)
	}
	fmt.Fprintf(out, "%d would run, %d already done\n", len(p.runs)-sum.Cached, sum.Cached)
	return sum, nil
}

// buildState says what a project's build came to, for --dry-run.
func buildState(b *BuildInfo) string {
	switch {
	case b == nil:
		return "not built"
	case b.Cached:
		return "built (cached " + b.ID + ")"
	default:
		return fmt.Sprintf("built now (%d files compiled in %.1fs, build %s)", b.Compiled, b.Seconds, b.ID)
	}
}
