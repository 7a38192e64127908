// Package units reads the durations, ages and sizes users write on the
// command line, and holds the ranges of simswarm's numeric flags, so that
// no value can wrap around into something the user did not mean.
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// MaxDuration bounds every duration and age a flag takes: ten years. Past
// it a cutoff computed as now minus the age is no longer a date anyone
// meant, and time.Duration itself wraps at about 292 years.
const MaxDuration = 3650 * 24 * time.Hour

// MaxSize bounds every size a flag takes: 1 EiB, far above any disk and
// far below where int64 wraps.
const MaxSize = int64(1) << 60

// ParseDuration reads a duration as Go writes it (90s, 10m, 2h30m) or with
// whole days in front (30d, 1d12h). Negative durations are refused here:
// no flag of simswarm means anything by them. Zero is returned as is; the
// caller decides whether it means "none".
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var days int64
	if i := strings.IndexByte(t, 'd'); i >= 0 {
		n, err := strconv.ParseInt(t[:i], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q: days must be a whole number such as 30d", s)
		}
		if n > int64(MaxDuration/(24*time.Hour)) {
			return 0, fmt.Errorf("%q is longer than %s", s, Describe(MaxDuration))
		}
		days, t = n, t[i+1:]
	}
	var rest time.Duration
	if t != "" {
		d, err := time.ParseDuration(t)
		if err != nil {
			return 0, fmt.Errorf("%q: want a duration such as 90s, 10m, 2h or 30d", s)
		}
		rest = d
	}
	if rest < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	if rest > MaxDuration {
		return 0, fmt.Errorf("%q is longer than %s", s, Describe(MaxDuration))
	}
	d := time.Duration(days)*24*time.Hour + rest
	if d > MaxDuration {
		return 0, fmt.Errorf("%q is longer than %s", s, Describe(MaxDuration))
	}
	return d, nil
}

// Describe writes a duration the way ParseDuration reads it, whole days
// as days.
func Describe(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ParseSize reads sizes such as 512MiB, 20GiB, 1.5G or 1000000 (bytes).
func ParseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"PiB", 1 << 50},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"PB", 1e15},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"P", 1 << 50}, {"B", 1}}
	num, mult := strings.TrimSpace(s), 1.0
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	// ParseFloat takes NaN, Inf and hex floats; a size is none of those.
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) || strings.ContainsAny(num, "xXpPnN_") {
		return 0, fmt.Errorf("want a size such as 20GiB or 512MiB")
	}
	b := v * mult
	if b > float64(MaxSize) {
		return 0, fmt.Errorf("more than 1EiB")
	}
	return int64(b), nil
}

// Check refuses a flag's value outside [lo, hi] with one line naming the
// flag, the value and the bound it crossed.
func Check(flag string, v, lo, hi int) error {
	switch {
	case v < lo:
		return fmt.Errorf("%s must be at least %d, not %d", flag, lo, v)
	case v > hi:
		return fmt.Errorf("%s must be at most %d, not %d", flag, hi, v)
	}
	return nil
}

// The ranges of simswarm's numeric flags, documented in the README. Slot
// counts are goroutines and processes on one host; 4096 is far past any
// machine simswarm runs on and far below where they exhaust memory.
const (
	MaxSlots       = 4096    // run -j, runner --slots, builder --jobs, distccd --jobs, --distcc-per-host
	MaxBatch       = 1000    // run -b: runs per simulation process
	MaxRetries     = 100     // run --retries
	MaxRunsLimit   = 1 << 40 // run --max-runs
	MaxNodes       = 10000   // run --estimate-nodes
	MaxRepetitions = 100000  // run --max-repetitions
	MaxReplicas    = 5       // server/init --replicas: JetStream's own limit
	MaxCampaigns   = 100000  // status --campaigns
	MaxLease       = time.Hour
)

// Count writes n and a noun, plural unless n is 1: "1 run", "2 runs".
func Count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
