package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"
)

// hub gathers which parts of the state changed and tells every open page,
// at most once a second: a campaign of short runs changes hundreds of times
// a second, and a page only needs to look current.
type hub struct {
	mu    sync.Mutex
	dirty map[string]bool
	subs  map[chan []string]bool
}

// flushEvery is how often pages hear of changes.
const flushEvery = time.Second

func newHub() *hub {
	return &hub{dirty: map[string]bool{}, subs: map[chan []string]bool{}}
}

// mark notes changed topics: "overview", "workers", "campaign:<id>".
func (h *hub) mark(topics ...string) {
	h.mu.Lock()
	for _, t := range topics {
		h.dirty[t] = true
	}
	h.mu.Unlock()
}

func (h *hub) subscribe() chan []string {
	ch := make(chan []string, 4)
	h.mu.Lock()
	h.subs[ch] = true
	h.mu.Unlock()
	return ch
}

func (h *hub) unsubscribe(ch chan []string) {
	h.mu.Lock()
	delete(h.subs, ch)
	h.mu.Unlock()
}

func (h *hub) run(ctx context.Context) {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.mu.Lock()
		if len(h.dirty) == 0 {
			h.mu.Unlock()
			continue
		}
		topics := make([]string, 0, len(h.dirty))
		for k := range h.dirty {
			topics = append(topics, k)
		}
		h.dirty = map[string]bool{}
		sort.Strings(topics)
		for ch := range h.subs {
			select {
			case ch <- topics:
			default: // a slow page misses a beat; the next one refreshes it
			}
		}
		h.mu.Unlock()
	}
}

// events is the server-sent event stream pages listen to. Each event names
// the topics that changed; a page refetches itself when one of its own did.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // proxies must not hold events back
	ch := s.hub.subscribe()
	defer s.hub.unsubscribe(ch)
	fmt.Fprint(w, "retry: 2000\n\nevent: hello\ndata: {}\n\n")
	fl.Flush()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		case <-ping.C:
			fmt.Fprint(w, ": ping\n\n")
		case topics := <-ch:
			b, _ := json.Marshal(topics)
			fmt.Fprintf(w, "event: change\ndata: %s\n\n", b)
		}
		fl.Flush()
	}
}
