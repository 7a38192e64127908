package omnetpp

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// RunConfig is one run of `-q runconfig`: its number, its iteration
// variables and every configuration entry that applies to it, in the order
// OMNeT++ looks them up (command-line options first, then the section and
// the sections it extends; the first entry matching a key wins), values
// with the run's iteration variables substituted.
type RunConfig struct {
	Number  int
	Vars    string
	Entries []string // "key = value"
}

// ParseRunConfig reads what `-q runconfig` prints.
func ParseRunConfig(stdout []byte) ([]RunConfig, error) {
	var out []RunConfig
	seen := map[int]bool{}
	for _, line := range strings.Split(string(stdout), "\n") {
		line = strings.TrimRight(line, " \r")
		if rest, ok := strings.CutPrefix(line, "Run "); ok {
			num, vars, ok := strings.Cut(rest, ":")
			if !ok || num == "" || strings.Trim(num, "0123456789") != "" {
				continue
			}
			n, err := parseRunNumber(num)
			if err != nil {
				return nil, fmt.Errorf("run config: %w", err)
			}
			if seen[n] {
				return nil, fmt.Errorf("run config: run %d listed twice", n)
			}
			seen[n] = true
			out = append(out, RunConfig{Number: n, Vars: strings.TrimSpace(vars)})
			continue
		}
		if entry, ok := strings.CutPrefix(line, "\t"); ok && len(out) > 0 {
			if _, _, ok := strings.Cut(entry, " = "); ok {
				last := &out[len(out)-1]
				last.Entries = append(last.Entries, strings.TrimSpace(entry))
			}
		}
	}
	return out, nil
}

// notResult are the configuration keys that do not change what a run
// computes: how many repetitions the campaign has (the run's own repetition
// is in its variables and seed set) and the text describing it.
var notResult = map[string]bool{"repeat": true, "description": true}

// Identity is everything in a run's configuration that decides its result,
// as one hash: the entries except repeat and description, and the seed set
// the run uses. OMNeT++'s default seed-set is ${runnumber}: a run without a
// seed-set entry is tied to its run number, and a grown campaign that
// renumbers it cannot reuse its result.
func (r RunConfig) Identity() string {
	h := sha256.New()
	seeded := false
	for _, e := range r.Entries {
		key, _, _ := strings.Cut(e, " = ")
		if notResult[key] {
			continue
		}
		seeded = seeded || key == "seed-set"
		h.Write([]byte(e))
		h.Write([]byte{0})
	}
	if !seeded {
		fmt.Fprintf(h, "seed-set = %d", r.Number)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// SeedSet is the seed set the run uses, as its entries resolve it.
func (r RunConfig) SeedSet() string {
	for _, e := range r.Entries {
		if v, ok := strings.CutPrefix(e, "seed-set = "); ok {
			return v
		}
	}
	return fmt.Sprintf("%d (the default, ${runnumber})", r.Number)
}

// Changed says how other's configuration differs from r's, entry by
// entry, as far as it matters for the result ("" when it does not).
func (r RunConfig) Changed(other RunConfig) string {
	first := func(c RunConfig) (map[string]string, []string) {
		m, order := map[string]string{}, []string{}
		for _, e := range c.Entries {
			k, v, _ := strings.Cut(e, " = ")
			if notResult[k] {
				continue
			}
			if _, ok := m[k]; !ok {
				m[k] = v
				order = append(order, k)
			}
		}
		return m, order
	}
	was, wasOrder := first(other)
	now, nowOrder := first(r)
	var diffs []string
	for _, k := range nowOrder {
		if k == "seed-set" {
			continue
		}
		if v, ok := was[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s = %s is new", k, now[k]))
		} else if v != now[k] {
			diffs = append(diffs, fmt.Sprintf("%s changed from %s to %s", k, v, now[k]))
		}
	}
	for _, k := range wasOrder {
		if _, ok := now[k]; !ok && k != "seed-set" {
			diffs = append(diffs, fmt.Sprintf("%s = %s is gone", k, was[k]))
		}
	}
	if a, b := other.SeedSet(), r.SeedSet(); a != b {
		diffs = append(diffs, fmt.Sprintf("seed-set changed from %s to %s", a, b))
	}
	return strings.Join(diffs, "; ")
}
