package gcpace

import (
	"context"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func pacedTo(t *testing.T, want func(uint64) bool) uint64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if v := gogc(); want(v) {
			return v
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("GOGC stayed at %d", gogc())
	return 0
}

// A small heap collects rarely; once the live heap is several times the
// headroom, as tightly as the floor allows.
func TestPaceFollowsTheLiveHeap(t *testing.T) {
	t.Setenv("GOGC", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	SetFloor(25)
	defer SetFloor(100)
	go Run(ctx)
	runtime.GC()
	pacedTo(t, func(v uint64) bool { return v == Ceiling })

	big := make([][]byte, 0, 64)
	for range 64 {
		big = append(big, make([]byte, 2<<20)) // 128 MiB live: 8 headrooms
	}
	runtime.GC()
	got := pacedTo(t, func(v uint64) bool { return v < 100 })
	if got < 25 {
		t.Errorf("GOGC %d under the floor 25", got)
	}
	runtime.KeepAlive(big)
}
