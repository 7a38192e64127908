package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/results"
	"github.com/simswarm/simswarm/internal/safedir"
)

// The campaign page plots a scalar against an iteration variable. Scalars
// come from the runs' .sca files: inline in the run records (small files,
// the usual case), or from the results directory on this host when the
// dashboard may read it (LocalFiles). Runs whose files travel only as an
// archive are counted as not plotted rather than fetched.
//
// Memory is bounded: scalars are kept only for the few campaigns whose page
// was opened last, and per campaign as accumulators (n, mean, M2) per
// (scalar, combination of iteration variables), never per run. A campaign
// is read back from the engine when its page is first opened, then kept
// current from the status watch as runs succeed.
const (
	plotCampaigns = 4       // campaigns whose scalars are kept
	plotNames     = 64      // scalar names per campaign
	plotCells     = 200_000 // (scalar, combination) accumulators per campaign
	plotQueue     = 4096    // finished runs waiting to be read
)

type scalarStore struct {
	mu    sync.Mutex
	camps map[string]*campScalars
	queue chan scalarJob
}

type scalarJob struct {
	campaign string
	run      int
	key      string
	finished int64
}

// campScalars is what the store keeps of one campaign.
type campScalars struct {
	used     time.Time
	loading  bool
	names    []string
	nameIdx  map[string]int32
	vars     []string // iteration variable names, first seen first
	combos   [][]results.Attr
	comboIdx map[string]int32
	acc      map[[2]int32]*results.Acc
	counted  map[int]int64 // run -> the finish time it was counted with
	runs     int           // runs whose scalars are in
	skipped  int           // succeeded runs whose .sca could not be read here
	full     bool          // a bound was reached: some scalars are left out
}

func newScalarStore() *scalarStore {
	return &scalarStore{camps: map[string]*campScalars{}, queue: make(chan scalarJob, plotQueue)}
}

// touch marks a campaign's scalars as wanted, and reports whether they
// must be read back from the engine (first view, or evicted since).
func (st *scalarStore) touch(id string, now time.Time) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if c := st.camps[id]; c != nil {
		c.used = now
		return false
	}
	if len(st.camps) >= plotCampaigns {
		var oldest string
		for k, c := range st.camps {
			if oldest == "" || c.used.Before(st.camps[oldest].used) {
				oldest = k
			}
		}
		delete(st.camps, oldest)
	}
	st.camps[id] = &campScalars{used: now, loading: true, nameIdx: map[string]int32{}, comboIdx: map[string]int32{},
		acc: map[[2]int32]*results.Acc{}, counted: map[int]int64{}}
	return true
}

func (st *scalarStore) tracked(id string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.camps[id] != nil
}

// add folds one run's scalars in; false if the run was counted already.
func (st *scalarStore) add(j scalarJob, items []*results.Item, readable bool) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	c := st.camps[j.campaign]
	if c == nil {
		return false
	}
	if f, ok := c.counted[j.run]; ok && f == j.finished {
		return false
	}
	c.counted[j.run] = j.finished
	if !readable {
		c.skipped++
		return true
	}
	c.runs++
	for _, it := range items {
		name := it.Module + "." + it.Name
		ni, ok := c.nameIdx[name]
		if !ok {
			if len(c.names) >= plotNames {
				c.full = true
				continue
			}
			ni = int32(len(c.names))
			c.names = append(c.names, name)
			c.nameIdx[name] = ni
		}
		var key strings.Builder
		for _, a := range it.Run.Itervars {
			key.WriteString(a.Name + "\x00" + a.Value + "\x00")
		}
		ci, ok := c.comboIdx[key.String()]
		if !ok {
			ci = int32(len(c.combos))
			c.combos = append(c.combos, it.Run.Itervars)
			c.comboIdx[key.String()] = ci
			for _, a := range it.Run.Itervars {
				if !contains(c.vars, a.Name) {
					c.vars = append(c.vars, a.Name)
				}
			}
		}
		k := [2]int32{ni, ci}
		a := c.acc[k]
		if a == nil {
			if len(c.acc) >= plotCells {
				c.full = true
				continue
			}
			a = &results.Acc{}
			c.acc[k] = a
		}
		a.Add(it.Value)
	}
	return true
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// noteSucceeded is called from the status watch: a run of a tracked
// campaign that succeeded is queued to be read. A full queue drops the
// job; the campaign is then read again when its page is next opened.
func (s *Server) noteSucceeded(key string, val []byte) {
	id, n, ok := simswarm.ParseStatusKey(key)
	if !ok || !s.scalars.tracked(id) {
		return
	}
	var r struct {
		Key      string            `json:"key"`
		State    simswarm.RunState `json:"state"`
		Finished time.Time         `json:"finished"`
	}
	if json.Unmarshal(val, &r) != nil || r.State != simswarm.RunSucceeded {
		return
	}
	select {
	case s.scalars.queue <- scalarJob{campaign: id, run: n, key: r.Key, finished: r.Finished.UnixNano()}:
	default:
		s.scalars.mu.Lock()
		delete(s.scalars.camps, id)
		s.scalars.mu.Unlock()
	}
}

// readScalars is the worker that turns queued runs into accumulators.
func (s *Server) readScalars(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-s.scalars.queue:
			items, readable := s.runScalars(ctx, j.key)
			if s.scalars.add(j, items, readable) {
				s.hub.mark("campaign:" + j.campaign)
			}
		}
	}
}

// runScalars reads the scalars of a run's .sca files.
func (s *Server) runScalars(ctx context.Context, key string) ([]*results.Item, bool) {
	r, ok, err := s.eng.Run(ctx, key)
	if err != nil || !ok {
		return nil, false
	}
	rec := *r
	var items []*results.Item
	keep := func(it *results.Item) error {
		if it.Type == results.TypeScalar {
			items = append(items, it)
		}
		return nil
	}
	read := false
	for _, f := range rec.Files {
		if filepath.Ext(f.Name) != ".sca" {
			continue
		}
		switch {
		case f.Data != nil:
			if results.ReadSca(f.Name, bytes.NewReader(f.Data), results.Options{}, keep) != nil {
				return nil, false
			}
			read = true
		case rec.LocalDir != "" && s.opt.LocalFiles:
			fh, err := safedir.OpenFile(rec.LocalDir, f.Name)
			if err != nil {
				return nil, false
			}
			err = results.ReadSca(f.Name, fh, results.Options{}, keep)
			fh.Close()
			if err != nil {
				return nil, false
			}
			read = true
		}
	}
	return items, read
}

// backfill reads back the scalars of a campaign's runs that succeeded
// before its page was opened.
func (s *Server) backfill(ctx context.Context, id string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.scalars.mu.Lock()
			if c := s.scalars.camps[id]; c != nil {
				c.loading = false
			}
			s.scalars.mu.Unlock()
			s.hub.mark("campaign:" + id)
		}()
		var runs []int
		s.m.mu.RLock()
		if c := s.m.campaigns[id]; c != nil {
			for _, e := range c.runs {
				if e.state == stSucceeded {
					runs = append(runs, e.run)
				}
			}
		}
		s.m.mu.RUnlock()
		for i, n := range runs {
			if ctx.Err() != nil || !s.scalars.tracked(id) {
				return
			}
			st, ok, err := s.eng.RunStatus(ctx, id, n)
			if err != nil || !ok || st.State != simswarm.RunSucceeded {
				continue
			}
			items, readable := s.runScalars(ctx, st.Key)
			s.scalars.add(scalarJob{campaign: id, run: n, key: st.Key, finished: st.Finished.UnixNano()}, items, readable)
			if i%200 == 199 {
				s.hub.mark("campaign:" + id)
			}
		}
	}()
}
