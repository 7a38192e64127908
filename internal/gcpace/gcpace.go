// Package gcpace sets how often a simswarm process collects garbage from
// the size of its live heap, unless the user set GOGC.
//
// Go's default collects whenever the heap has doubled since the last
// collection, from a 4 MB start. simswarm's processes keep small heaps and
// allocate per message and per run, so a small heap collects many times
// for nothing: in a 42-run campaign of OMNeT++'s aloha at a fixed GOGC of
// 25, 21 collections and about a seventh of simswarm's own CPU. A fixed
// headroom above the live heap instead lets a small heap collect rarely
// and a large one as tightly as its floor says (bench/rss.sh: a 100 000-run
// campaign peaked at 215 MiB against 217 MiB at a fixed 25; 1000 runs at
// 78 MiB against 52 MiB).
package gcpace

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// Headroom is how far the heap may grow past its live data before a
// collection, within GOGC Floor..Ceiling.
const (
	Headroom = 16 << 20
	Ceiling  = 400
)

var floor atomic.Int64

func init() { floor.Store(100) }

// SetFloor sets the lowest GOGC the pacer uses (100, Go's own, unless
// set): a process whose heap is mostly long-lived indexes (the embedded
// engine's) keeps its memory near its live data with a lower one.
func SetFloor(pct int) { floor.Store(int64(pct)) }

// Run paces collections from now until ctx ends, looking at the live heap
// every second. It does nothing when GOGC is set.
func Run(ctx context.Context) {
	if os.Getenv("GOGC") != "" {
		return
	}
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	last := int64(0)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		metrics.Read(live)
		pct := int64(Ceiling)
		if v := live[0].Value; v.Kind() == metrics.KindUint64 && v.Uint64() > 0 {
			pct = min(max(int64(Headroom*100/v.Uint64()), floor.Load()), Ceiling)
		}
		if pct != last {
			debug.SetGCPercent(int(pct))
			last = pct
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
