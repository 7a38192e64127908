package slurm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/slurm"
	"github.com/simswarm/simswarm/internal/slurm/slurmtest"
)

// TestRefusalsAndLimits: against a real Slurm, a bad account and a bad
// partition are refused by Check in one line naming what Slurm said; good
// settings pass; the limits come from scontrol.
func TestRefusalsAndLimits(t *testing.T) {
	c := slurmtest.Start(t, slurmtest.Options{Nodes: 1, MaxArraySize: 4})
	t.Setenv("SLURM_CONF", c.Conf)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	check := func(s slurm.Settings) error {
		d, err := s.Check()
		if err != nil {
			t.Fatal(err)
		}
		return (&slurm.Pilots{S: s, D: d}).Check(ctx)
	}
	if err := check(slurm.Settings{Account: slurmtest.Account, Partition: slurmtest.Partition}); err != nil {
		t.Fatalf("good settings refused: %v", err)
	}
	for _, tc := range []struct {
		s    slurm.Settings
		want []string
	}{
		{slurm.Settings{Account: "nosuchaccount"}, []string{"Invalid account", "nosuchaccount"}},
		{slurm.Settings{Partition: "nosuchpartition"}, []string{"Invalid partition name specified"}},
	} {
		err := check(tc.s)
		var se *slurm.Error
		if !errors.As(err, &se) {
			t.Fatalf("%+v: %v; want a Slurm refusal", tc.s, err)
		}
		msg := err.Error()
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%+v: %q does not say %q", tc.s, msg, w)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("%+v: more than one line: %q", tc.s, msg)
		}
	}
	l, err := slurm.ReadLimits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l.MaxArraySize != 4 || l.MaxJobCount < 1 {
		t.Errorf("limits %+v; want MaxArraySize 4", l)
	}
}
