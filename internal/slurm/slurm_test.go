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

// TestParseTime: sbatch's --time forms, and the end signal they leave.
func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30": 30 * time.Minute, "1:30": 90 * time.Second, "2:00:00": 2 * time.Hour,
		"1-0": 24 * time.Hour, "1-2:30": 26*time.Hour + 30*time.Minute, "0-0:0:45": 45 * time.Second,
	} {
		if got, err := slurm.ParseTime(in); err != nil || got != want {
			t.Errorf("ParseTime(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "1:2:3:4", "-5", "0"} {
		if _, err := slurm.ParseTime(in); err == nil {
			t.Errorf("ParseTime(%q) took it", in)
		}
	}
	s := slurm.Settings{Time: "1"}
	d, err := s.Check()
	if err != nil || d.EndSignal != 15*time.Second {
		t.Errorf("a 1-minute limit's end signal %s (%v); want 15s", d.EndSignal, err)
	}
	if _, err := (&slurm.Settings{Time: "soon"}).Check(); err == nil || !strings.Contains(err.Error(), `"soon"`) {
		t.Errorf("a bad time: %v", err)
	}
}

// TestEngineURL: pilots dial the listen address's host, or the login
// node's name where the engine listens on all addresses.
func TestEngineURL(t *testing.T) {
	for _, tc := range []struct{ listen, want string }{
		{"", "nats://login1:40017"},
		{"0.0.0.0:0", "nats://login1:40017"},
		{"10.1.2.3:0", "nats://10.1.2.3:40017"},
		{"login1-ib:4222", "nats://login1-ib:40017"},
	} {
		s := slurm.Settings{Listen: tc.listen}
		if got := s.EngineURL(40017, "login1"); got != tc.want {
			t.Errorf("listen %q: %s; want %s", tc.listen, got, tc.want)
		}
	}
}
