package gc

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
)

// DefaultResultTTL is how long results wait in the store for a client to
// fetch them (a --detach'ed campaign never attached, a client killed and
// never run again).
const DefaultResultTTL = 7 * 24 * time.Hour

// Expire deletes result archives older than ttl that no campaign keeps
// (run --keep-results), with their runs' records: a later campaign runs
// such a run again rather than find a record that points at nothing. It
// returns what it freed.
func Expire(ctx context.Context, eng *engine.Engine, ttl time.Duration, now time.Time) (engine.KindUsage, error) {
	var freed engine.KindUsage
	objs, err := eng.Objects(ctx)
	if err != nil {
		return freed, err
	}
	var old []engine.StoredObject
	for _, o := range objs {
		if engine.KindOf(o.Name) == engine.KindResult && o.Modified.Before(now.Add(-ttl)) {
			old = append(old, o)
		}
	}
	if len(old) == 0 {
		return freed, nil
	}
	kept, err := keptRuns(ctx, eng)
	if err != nil {
		return freed, err
	}
	for _, o := range old {
		key := strings.TrimPrefix(o.Name, engine.KindResult+"/")
		if kept[key] {
			continue
		}
		if err := eng.PurgeRecords(ctx, engine.BucketRuns, key); err != nil {
			return freed, err
		}
		if err := eng.DeleteObject(ctx, o.Name); err != nil {
			return freed, err
		}
		freed = add(freed, o.Size)
	}
	return freed, nil
}

// keptRuns are the run keys of campaigns that keep their results.
func keptRuns(ctx context.Context, eng *engine.Engine) (map[string]bool, error) {
	camps, err := eng.Campaigns(ctx)
	if err != nil {
		return nil, err
	}
	keep := map[string]simswarm.Campaign{}
	for _, c := range camps {
		if c.KeepResults {
			keep[c.ID] = c
		}
	}
	out := map[string]bool{}
	if len(keep) == 0 {
		return out, nil
	}
	status, err := eng.Records(ctx, engine.BucketStatus)
	if err != nil {
		return nil, err
	}
	keys := newKeyer(eng)
	for _, s := range status {
		if id, n, ok := simswarm.ParseStatusKey(s.Key); ok {
			if c, ok := keep[id]; ok {
				out[keys.key(ctx, c, n)] = true
			}
		}
	}
	return out, nil
}

// ExpireEvery runs Expire every interval until ctx ends (simswarm server).
func ExpireEvery(ctx context.Context, eng *engine.Engine, ttl, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		freed, err := Expire(ctx, eng, ttl, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("expire results", "err", err)
		case freed.Count > 0:
			log.Info("expired results no client fetched", "objects", freed.Count, "bytes", freed.Bytes, "ttl", ttl)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
