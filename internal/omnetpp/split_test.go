package omnetpp

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// lineOffsets returns the byte offsets of the lines starting with prefix,
// found independently of omnetpp.BatchHeader.
func lineOffsets(data []byte, prefix string) []int64 {
	var out []int64
	for off := 0; off < len(data); {
		if bytes.HasPrefix(data[off:], []byte(prefix)) {
			out = append(out, int64(off))
		}
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			break
		}
		off += nl + 1
	}
	return out
}

// feed writes data to h in chunks of 1..maxChunk bytes chosen by rng.
func feed(t *testing.T, h *BatchSplitter, data []byte, rng *rand.Rand, maxChunk int) {
	t.Helper()
	for len(data) > 0 {
		n := min(1+rng.IntN(maxChunk), len(data))
		if w, err := h.Write(data[:n]); w != n || err != nil {
			t.Fatalf("Write = %d, %v", w, err)
		}
		data = data[n:]
	}
}

// TestBatchSplitterStreamed feeds real batch output (runs 0,1,2 in one
// process) the way a pipe delivers it, in arbitrary pieces, and requires
// each run's start to be the exact byte offset of its header line: the
// console output is cut there into per-run .out files.
func TestBatchSplitterStreamed(t *testing.T) {
	data := captured(t, "aloha-s-batch012.stdout")
	want := lineOffsets(data, "PureAlohaExperiment run ")
	if len(want) != 3 || want[0] != 0 {
		t.Fatalf("captured file changed? header offsets %v", want)
	}
	for _, maxChunk := range []int{1, 2, 7, 64, 255, 256, 257, 4096, len(data)} {
		for seed := uint64(0); seed < 5; seed++ {
			rng := rand.New(rand.NewPCG(seed, uint64(maxChunk)))
			var called []int
			h := &BatchSplitter{OnRun: func(n int) { called = append(called, n) }}
			feed(t, h, data, rng, maxChunk)
			h.Flush()
			heads := h.Runs()
			var runs []int
			var offs []int64
			for i, hd := range heads {
				runs = append(runs, hd.Run)
				offs = append(offs, hd.Start)
				if i > 0 && heads[i-1].End != hd.Start {
					t.Fatalf("parts not contiguous: %+v", heads)
				}
			}
			if !reflect.DeepEqual(runs, []int{0, 1, 2}) || !reflect.DeepEqual(offs, want) || !reflect.DeepEqual(called, runs) {
				t.Fatalf("chunks ≤%d seed %d: runs %v at %v (OnRun %v), want [0 1 2] at %v", maxChunk, seed, runs, offs, called, want)
			}
			if h.Len() != int64(len(data)) || heads[2].End != int64(len(data)) {
				t.Fatalf("total %d, last part ends at %d, want %d", h.Len(), heads[2].End, len(data))
			}
			// The same parts as SplitBatchOutput of the whole output.
			parts, _ := SplitBatchOutput(data)
			for _, hd := range heads {
				if !bytes.Equal(parts[hd.Run], data[hd.Start:hd.End]) {
					t.Fatalf("run %d: streamed part differs from SplitBatchOutput's", hd.Run)
				}
			}
		}
	}
}

// TestBatchSplitterLongLines: a header longer than 256 bytes (INET runs with many iteration variables) is still found; text
// that merely looks like a header in the middle of a long line is not;
// and a line without its newline yet is not a header yet.
func TestBatchSplitterLongLines(t *testing.T) {
	longHeader := "Exp run 7: " + strings.Repeat("$v=1, ", 80) + "$repetition=0\n"
	noise := strings.Repeat("x", 300) + "Exp run 8: $v=2\n"
	var data []byte
	data = append(data, "startup banner\n"...)
	off1 := len(data)
	data = append(data, longHeader...)
	data = append(data, noise...)
	off2 := len(data)
	data = append(data, "Exp run 9: $v=3\n"...)
	for _, maxChunk := range []int{1, 13, 1000} {
		h := &BatchSplitter{}
		feed(t, h, data, rand.New(rand.NewPCG(1, 2)), maxChunk)
		got := h.Runs()
		// The first part starts at 0: the banner goes with the first run.
		if len(got) != 2 || got[0].Run != 7 || got[0].Start != 0 || got[0].End != int64(off2) || got[1].Run != 9 || got[1].Start != int64(off2) {
			t.Errorf("chunks ≤%d: parts %+v, want run 7 (header at %d) and run 9 at %d", maxChunk, got, off1, off2)
		}
	}
	h := &BatchSplitter{}
	h.Write([]byte("Exp run 3: $v=1"))
	if got := h.Runs(); len(got) != 0 {
		t.Error("an unterminated line counted as a header")
	}
	h.Write([]byte("\n"))
	if got := h.Runs(); len(got) != 1 || got[0].Run != 3 || got[0].Start != 0 {
		t.Errorf("after the newline: %+v", got)
	}
	// A last line without newline counts once the output ends.
	h = &BatchSplitter{}
	h.Write([]byte("Exp run 3: $v=1\nExp run 4: $v=2"))
	h.Flush()
	if got := h.Runs(); len(got) != 2 || got[1].Run != 4 {
		t.Errorf("after Flush: %+v", got)
	}
}
