package omnetpp

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// addCapturedSeeds adds the captured output files to a fuzz corpus; without
// them the inline seeds still run.
func addCapturedSeeds(f *testing.F, names ...string) {
	if !haveCaptured() {
		return
	}
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(capturedDir, name))
		if err != nil {
			f.Fatalf("captured case missing: %v", err)
		}
		f.Add(data)
	}
}

func FuzzParseRunNumbers(f *testing.F) {
	addCapturedSeeds(f,
		"aloha-s-q-runnumbers.stdout",
		"aloha-q-runnumbers.stdout",
		"aloha-s-q-runnumbers-filter.stdout",
		"aloha-s-q-runs.stdout",
		"aloha-noconfig.stderr",
	)
	for _, s := range []string{"", " 0 1 2\n", "Run numbers: 1 2\n", " 0 0", "-1", "99999999999999999999", "\xff\xfe"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		runs, err := ParseRunNumbers(data)
		if err != nil {
			if runs != nil {
				t.Fatalf("error %v with runs %v", err, runs)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || len(msg) > 500 {
				t.Fatalf("error not a short single line: %q", msg)
			}
			return
		}
		if runs == nil {
			t.Fatal("nil slice without error")
		}
		seen := map[int]bool{}
		for _, r := range runs {
			if r < 0 || seen[r] {
				t.Fatalf("bad run list %v", runs)
			}
			seen[r] = true
		}
		// What RunNumberArg renders, OMNeT++ echoes back space-separated.
		echo := " " + strings.ReplaceAll(RunNumberArg(runs), ",", " ") + "\n"
		again, err := ParseRunNumbers([]byte(echo))
		if err != nil || !slices.Equal(again, runs) {
			t.Fatalf("round trip of %v: %v, %v", runs, again, err)
		}
	})
}

func FuzzSplitBatchOutput(f *testing.F) {
	addCapturedSeeds(f,
		"aloha-s-batch012.stdout",
		"aloha-batch-failing.stdout",
		"aloha-batch-failing-nostop.stdout",
		"aloha-run0.stdout",
		"inet-ber-run0.stdout",
		"inet-fingerprint-bad.stdout",
	)
	for _, s := range []string{
		"", "0", "X run 0:", "X run 0: a\nX run 0: b\nY run 1: c\nX run 2:\r\n",
		"Preparing for running configuration X, run #1...\nX run 2: v\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parts, order := SplitBatchOutput(data)
		if len(parts) != len(order) {
			t.Fatalf("%d parts for order %v", len(parts), order)
		}
		var joined []byte
		for i, n := range order {
			part, ok := parts[n]
			if !ok {
				t.Fatalf("run %d in order but without part", n)
			}
			if i > 0 {
				if _, run, ok := BatchHeader([]byte(firstLine(part))); !ok || run != n {
					t.Fatalf("part of run %d does not start with its header: %q", n, firstLine(part))
				}
			}
			joined = append(joined, part...)
		}
		// Without any header there are no runs and nothing to add up.
		if len(order) > 0 && !bytes.Equal(joined, data) {
			t.Fatal("parts do not add up to the output")
		}
		// Parsing the parts must not panic either.
		for _, p := range parts {
			ParseOutcome(p)
			ErrorLines(p, 3)
		}
	})
}
