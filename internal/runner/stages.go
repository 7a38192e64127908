package runner

import (
	"fmt"
	"sync"
	"time"

	"github.com/simswarm/simswarm/internal/safedir"
)

// stages keeps emptied scratch stages for the next runs, per directory they
// live in (the runner's cache, or a local client's results directory): a
// stage made per run costs a directory, a lock file and their removal,
// which on a busy ext4 was a third of the runner's CPU on short runs. A
// stage unused for stageIdle is removed, and all of them when the runner
// stops, so that nothing stays in a client's results directory.
type stages struct {
	mu     sync.Mutex
	free   map[string][]idleStage // directory -> stages ready for a run
	base   map[*safedir.Stage]string
	closed bool
}

type idleStage struct {
	st    *safedir.Stage
	since time.Time
}

// stageIdle is how long an emptied stage waits for a run before it goes.
const stageIdle = 2 * time.Second

// get returns a stage in base for a run of campaign, emptied, made anew
// when none waits.
func (s *stages) get(base, campaign string, run int) (*safedir.Stage, error) {
	s.mu.Lock()
	if l := s.free[base]; len(l) > 0 {
		st := l[len(l)-1].st
		s.free[base] = l[:len(l)-1]
		s.mu.Unlock()
		return st, nil
	}
	s.mu.Unlock()
	st, err := safedir.OpenStage(base, fmt.Sprintf("%s-%d", campaign, run))
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.base == nil {
		s.base, s.free = map[*safedir.Stage]string{}, map[string][]idleStage{}
	}
	s.base[st] = base
	s.mu.Unlock()
	return st, nil
}

// put takes back a stage whose run is over: emptied for the next run, or
// removed when it cannot be emptied, more than keep wait already, or the
// runner stops.
func (s *stages) put(st *safedir.Stage, keep int) {
	s.mu.Lock()
	base, known := s.base[st]
	reuse := known && !s.closed && len(s.free[base]) < keep
	if !reuse {
		delete(s.base, st)
	}
	s.mu.Unlock()
	if !reuse {
		st.Remove()
		return
	}
	if err := st.Empty("results"); err != nil {
		s.mu.Lock()
		delete(s.base, st)
		s.mu.Unlock()
		st.Remove()
		return
	}
	s.mu.Lock()
	s.free[base] = append(s.free[base], idleStage{st: st, since: time.Now()})
	s.mu.Unlock()
}

// expire removes stages that waited longer than stageIdle (all of them
// when close); with close, stages put back later are removed at once.
func (s *stages) expire(close bool) {
	var gone []*safedir.Stage
	s.mu.Lock()
	s.closed = s.closed || close
	for base, l := range s.free {
		keep := l[:0]
		for _, is := range l {
			if close || time.Since(is.since) > stageIdle {
				gone = append(gone, is.st)
				delete(s.base, is.st)
			} else {
				keep = append(keep, is)
			}
		}
		if len(keep) == 0 {
			delete(s.free, base)
		} else {
			s.free[base] = keep
		}
	}
	s.mu.Unlock()
	for _, st := range gone {
		st.Remove()
	}
}
