package runner

import (
	"sync"
	"time"
)

// batchStats learns, per campaign, how long a process takes to start and how
// long a run takes; batchSize turns that into runs per process. OMNeT++
// start-up (loading NED files, for INET over a thousand) can dwarf a short
// run; batching shares it, as opp_runall's -b does.
type batchStats struct {
	mu sync.Mutex
	m  map[string]*Timing
}

// add notes a clean process of runs runs: its first run began startup
// after the process, and the process took wall.
func (b *batchStats) add(key string, startup, wall time.Duration, runs int) {
	if runs < 1 {
		return
	}
	per := max((wall-startup)/time.Duration(runs), 0)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]*Timing{}
	}
	t := b.m[key]
	if t == nil {
		t = &Timing{}
		b.m[key] = t
	}
	if !t.Known {
		t.Startup, t.PerRun, t.Known = startup, per, true
		return
	}
	const a = 0.3
	t.Startup = time.Duration(a*float64(startup) + (1-a)*float64(t.Startup))
	t.PerRun = time.Duration(a*float64(per) + (1-a)*float64(t.PerRun))
}

// noBatch notes that a batch of key went wrong: its runs go alone from now on.
func (b *batchStats) noBatch(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]*Timing{}
	}
	if t := b.m[key]; t != nil {
		t.Off = true
	} else {
		b.m[key] = &Timing{Off: true}
	}
}

// timing is what is known of key.
func (b *batchStats) timing(key string) Timing {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t := b.m[key]; t != nil {
		return *t
	}
	return Timing{}
}
