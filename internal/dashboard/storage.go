package dashboard

import (
	"context"
	"time"

	"github.com/simswarm/simswarm/internal/engine"
)

// usageEvery is how often the dashboard reads stored bytes by kind: that
// lists every object's metadata, which costs more than the other polls.
const usageEvery = time.Minute

// pollUsage keeps the model's stored bytes by kind current.
func (s *Server) pollUsage(ctx context.Context) {
	for {
		if u, err := s.eng.StoreUsage(ctx); err == nil {
			s.m.mu.Lock()
			s.m.usage = u
			s.m.mu.Unlock()
			s.hub.mark("overview")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(usageEvery):
		}
	}
}

// StoredKind is what one kind of stored thing takes.
type StoredKind struct {
	Kind  string `json:"kind"` // "file/", "snap/", "art/", "res/", "log/", "records"
	Count int    `json:"count"`
	Bytes int64  `json:"bytes"`
}

func storedByKind(u *engine.Usage) []StoredKind {
	if u == nil {
		return nil
	}
	out := make([]StoredKind, 0, len(engine.Kinds))
	for _, k := range engine.Kinds {
		name := k + "/"
		if k == engine.KindRecords {
			name = k
		}
		out = append(out, StoredKind{Kind: name, Count: u.Kinds[k].Count, Bytes: u.Kinds[k].Bytes})
	}
	return out
}
