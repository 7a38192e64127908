package safedir

import (
	"sync"
	"time"
)

// Pool keeps stages whose run is over, emptied, for the next runs, per
// directory they live in: a stage made per run costs a directory, a lock
// file and their removal (on ext4 under load, ~0.2 ms of CPU each), which
// was a third of a runner's and a client's CPU per short run. Close
// removes them all, so that nothing stays in a results directory.
type Pool struct {
	// Keep names the directories directly in a stage that emptying keeps
	// (empty), besides the stage's own "in": those every run writes into.
	Keep []string
	// Max bounds the stages kept per directory (0: no bound).
	Max int

	mu     sync.Mutex
	free   map[string][]idleStage
	closed bool
}

type idleStage struct {
	st    *Stage
	since time.Time
}

// Get returns an empty stage in dir, kept from an earlier run or new
// (named after prefix).
func (p *Pool) Get(dir, prefix string) (*Stage, error) {
	p.mu.Lock()
	if l := p.free[dir]; len(l) > 0 {
		st := l[len(l)-1].st
		p.free[dir] = l[:len(l)-1]
		p.mu.Unlock()
		return st, nil
	}
	p.mu.Unlock()
	return OpenStage(dir, prefix)
}

// Put takes back a stage of Get whose run is over: emptied for the next
// run when ok, else (or when it cannot be emptied, Max wait already, or the
// pool is closed) removed.
func (p *Pool) Put(st *Stage, ok bool) {
	dir := st.d.path
	p.mu.Lock()
	reuse := ok && !p.closed && (p.Max == 0 || len(p.free[dir]) < p.Max)
	p.mu.Unlock()
	if !reuse || st.Empty(p.Keep...) != nil {
		st.Remove()
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		st.Remove()
		return
	}
	if p.free == nil {
		p.free = map[string][]idleStage{}
	}
	p.free[dir] = append(p.free[dir], idleStage{st: st, since: time.Now()})
	p.mu.Unlock()
}

// Expire removes the stages unused for longer than idle.
func (p *Pool) Expire(idle time.Duration) { p.drop(false, false, idle) }

// Drain removes every stage kept; the pool stays usable.
func (p *Pool) Drain() { p.drop(true, false, 0) }

// Close removes every stage kept; stages put back later are removed.
func (p *Pool) Close() { p.drop(true, true, 0) }

func (p *Pool) drop(all, close bool, idle time.Duration) {
	var gone []*Stage
	p.mu.Lock()
	p.closed = p.closed || close
	for dir, l := range p.free {
		keep := l[:0]
		for _, is := range l {
			if all || time.Since(is.since) > idle {
				gone = append(gone, is.st)
			} else {
				keep = append(keep, is)
			}
		}
		if len(keep) == 0 {
			delete(p.free, dir)
		} else {
			p.free[dir] = keep
		}
	}
	p.mu.Unlock()
	for _, st := range gone {
		st.Remove()
	}
}
