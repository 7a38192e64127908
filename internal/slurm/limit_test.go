package slurm

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/slurm/slurmtest"
)

// TestJobCountLimit: at the controller's MaxJobCount sbatch says it is
// "sleeping and retrying" and would wait minutes; simswarm's sbatch ends
// at once with a refusal JobLimit recognises, nothing submitted.
func TestJobCountLimit(t *testing.T) {
	c := slurmtest.Start(t, slurmtest.Options{Nodes: 1, Conf: []string{"MaxJobCount=2"}})
	t.Setenv("SLURM_CONF", c.Conf)
	// Held jobs until the controller is full (the count it holds is not
	// only the jobs squeue shows).
	held := 0
	for held < 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cmd := exec.CommandContext(ctx, "sbatch", "--hold", "--output=/dev/null", "--wrap=true")
		cmd.Env = c.Env
		err := cmd.Run()
		cancel()
		if err != nil {
			break
		}
		held++
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	_, err := command(ctx, []byte("#!/bin/sh\ntrue\n"), "sbatch", "--parsable", "--output=/dev/null")
	took := time.Since(t0)
	if err == nil || !JobLimit(err) || took > 10*time.Second {
		t.Fatalf("sbatch at MaxJobCount: %v after %s; want a job limit at once", err, took)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("not one line: %q", err)
	}
	if jobs := c.Jobs(t); len(jobs) != held {
		t.Errorf("squeue %q; want the %d held jobs only", jobs, held)
	}
	t.Logf("%v (after %s)", err, took.Round(time.Millisecond))
	// The check before a campaign (sbatch --test-only) lets it start: its
	// pilots wait for the limit.
	var s Settings
	d, err := s.Check()
	if err != nil {
		t.Fatal(err)
	}
	var said bytes.Buffer
	if err := (&Pilots{S: s, D: d, Progress: &said}).Check(ctx); err != nil || !strings.Contains(said.String(), "at the site's job limit") {
		t.Errorf("check at MaxJobCount: %v, said %q; want no error and a word of the limit", err, said.String())
	}
}

// TestParseSubmitLimit: the least MaxSubmit or GrpSubmit of sacctmgr's
// association lines (--parsable2 --noheader), an empty field being none.
func TestParseSubmitLimit(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want int
	}{
		{"", 0},
		{"|\n", 0},
		{"5000|\n", 5000},
		{"|200\n", 200},
		{"5000|\n100|\n|\n", 100},
	} {
		if got := parseSubmitLimit([]byte(tc.out)); got != tc.want {
			t.Errorf("parseSubmitLimit(%q) = %d; want %d", tc.out, got, tc.want)
		}
	}
}
