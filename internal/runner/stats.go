package runner

import (
	"math"
	"sync"
	"time"
)

// batchStats learns, per campaign, how long a process takes to start and how
// long a run takes, and from that how many runs one process should execute.
// OMNeT++ start-up (loading NED files, for INET over a thousand) can dwarf a
// short run; batching shares it, as opp_runall's -b does.
type batchStats struct {
	mu sync.Mutex
	m  map[string]*stat
}

type stat struct {
	startup, perRun float64 // seconds, moving averages
	n               int
	off             bool // a batch went wrong: run alone from now on
}

// Batching targets: start-up at most a tenth of a process's time, and a
// process at most maxBatchTime long so that the tail of a campaign stays short.
const (
	startupShare = 0.1
	maxBatchTime = 20 * time.Second
)

func (b *batchStats) add(key string, idx *headerIndex, wall time.Duration, runs int) {
	first, ok := idx.firstAt()
	if !ok || runs < 1 {
		return
	}
	startup := first.Sub(idx.start).Seconds()
	per := (wall.Seconds() - startup) / float64(runs)
	if per < 0 {
		per = 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]*stat{}
	}
	s := b.m[key]
	if s == nil {
		s = &stat{startup: startup, perRun: per}
		b.m[key] = s
	}
	const a = 0.3
	s.startup = a*startup + (1-a)*s.startup
	s.perRun = a*per + (1-a)*s.perRun
	s.n++
}

func (b *batchStats) noBatch(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]*stat{}
	}
	if s := b.m[key]; s != nil {
		s.off = true
	} else {
		b.m[key] = &stat{off: true}
	}
}

// size is how many runs the next process of key should execute.
func (b *batchStats) size(key string, limit int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.m[key]
	if s == nil || s.off || s.n == 0 {
		return 1
	}
	k := limit
	if s.perRun > 0 {
		k = int(math.Ceil(s.startup * (1 - startupShare) / startupShare / s.perRun))
		if lim := int(maxBatchTime.Seconds() / s.perRun); k > lim {
			k = lim
		}
	}
	return min(max(k, 1), limit)
}
