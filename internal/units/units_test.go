package units

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"90s": 90 * time.Second, "10m": 10 * time.Minute, "2h30m": 150 * time.Minute, "0": 0,
		"30d": 30 * 24 * time.Hour, "1d12h": 36 * time.Hour, " 7d ": 7 * 24 * time.Hour, "3650d": MaxDuration,
	}
	for s, want := range good {
		if d, err := ParseDuration(s); err != nil || d != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", s, d, err, want)
		}
	}
	// 213504d x 24h wraps time.Duration to a few minutes: it must be refused,
	// not read as a cutoff 25 minutes ago.
	for _, s := range []string{"", "d", "soon", "-1d", "-5m", "1.5d", "213504d", "3651d", "3650d1s", "1d-5h",
		"9223372036854775807d", "87601h", "2562047h", "1e3d", "0x10d"} {
		if d, err := ParseDuration(s); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", s, d)
		}
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]int64{"0": 0, "512MiB": 512 << 20, "1.5G": 3 << 29, "20GiB": 20 << 30, "1000000": 1e6, "1KB": 1000}
	for s, want := range good {
		if v, err := ParseSize(s); err != nil || v != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, v, err, want)
		}
	}
	for _, s := range []string{"", "lots", "-1G", "NaN", "Inf", "+Inf", "0x1p4", "1e30", "2048PiB", "9223372036854775807T", "1_000"} {
		if v, err := ParseSize(s); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", s, v)
		}
	}
}

func TestCheck(t *testing.T) {
	if err := Check("-j", 2147483648, 1, MaxSlots); err == nil || err.Error() != "-j must be at most 4096, not 2147483648" {
		t.Errorf("got %v", err)
	}
	if err := Check("--campaigns", -1, 0, MaxCampaigns); err == nil || !strings.Contains(err.Error(), "at least 0, not -1") {
		t.Errorf("got %v", err)
	}
	if err := Check("-b", 0, 0, MaxBatch); err != nil {
		t.Errorf("got %v", err)
	}
}

func TestDescribe(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Hour: "1h", time.Second: "1s", 90 * time.Minute: "1h30m", 30 * 24 * time.Hour: "30d", time.Minute: "1m"} {
		if got := Describe(d); got != want {
			t.Errorf("Describe(%v) = %q, want %q", d, got, want)
		}
	}
}

// FuzzParseDuration: whatever is typed, a duration is refused or lies in
// [0, MaxDuration], and what Describe writes reads back the same.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30d", "1d12h", "90s", "213504d", "-1d", "2h30m", "0", "d", "1.5h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 || d > MaxDuration {
			t.Fatalf("ParseDuration(%q) = %v, outside [0, %v]", s, d, MaxDuration)
		}
		if back, err := ParseDuration(Describe(d)); err != nil || back != d {
			t.Fatalf("Describe(%v) = %q reads back as %v, %v", d, Describe(d), back, err)
		}
	})
}

// FuzzParseSize: a size is refused or lies in [0, MaxSize].
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"20GiB", "512MiB", "1.5G", "1000000", "NaN", "1e30", "-1", "0x1p4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseSize(s)
		if err == nil && (v < 0 || v > MaxSize) {
			t.Fatalf("ParseSize(%q) = %d, outside [0, %d]", s, v, MaxSize)
		}
	})
}

func TestCount(t *testing.T) {
	for n, want := range map[int]string{0: "0 runs", 1: "1 run", 2: "2 runs", 1000: "1000 runs"} {
		if got := Count(n, "run"); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}
