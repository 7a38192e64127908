package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Balancing the tail of a campaign between runners. A runner takes spare
// jobs ahead of its slots so that a slot whose process ends starts the next
// at once; near the end of a campaign those spares are the only work left,
// and a runner whose slot frees finds the queue empty while another runner
// holds jobs it cannot start yet. The hungry runner says so (Hungry); the
// holders give their spares back, naming them first (Released), so that the
// taker knows the job was let go cleanly and runs it without the checks a
// job handed out again after a lost holder needs.
const (
	// subjectHungry carries Hungry notices.
	subjectHungry = "simswarm.hungry"
	// subjectReleased carries Released notices.
	subjectReleased = "simswarm.released"
)

// Hungry is what a runner publishes when it has free slots and the queue
// has no job waiting.
type Hungry struct {
	From string `json:"from"`
	Free int    `json:"free"` // its free slots
}

// Released names jobs a live worker gives back unstarted, just before it
// gives them back.
type Released struct {
	From string        `json:"from"`
	Jobs []ReleasedJob `json:"jobs"`
}

// ReleasedJob is one given-back job: its stream sequence and the delivery
// the worker held. The next delivery of it (Delivered+1) follows a holder
// that let go, not one that was lost.
type ReleasedJob struct {
	Seq       uint64 `json:"seq"`
	Delivered int    `json:"delivered"`
}

// AnnounceHungry publishes h. It is news: nobody listening loses nothing.
func (e *Engine) AnnounceHungry(h Hungry) error {
	return e.news(subjectHungry, h)
}

// OnHungry calls fn with the other workers' Hungry notices until stop is
// called.
func (e *Engine) OnHungry(worker string, fn func(Hungry)) (stop func(), err error) {
	return onNews(e, subjectHungry, "hungry-runner notices", func(h Hungry) {
		if h.From != worker {
			fn(h)
		}
	})
}

// AnnounceReleased publishes r and waits until the server has it, so that
// it reaches every listener before the jobs it names are given back.
func (e *Engine) AnnounceReleased(r Released) error {
	if err := e.news(subjectReleased, r); err != nil {
		return err
	}
	if err := e.nc.FlushTimeout(5 * time.Second); err != nil {
		return fmt.Errorf("announce released jobs: %w", err)
	}
	return nil
}

// OnReleased calls fn with every Released notice, this worker's own
// included (it may take its own jobs back), until stop is called.
func (e *Engine) OnReleased(fn func(Released)) (stop func(), err error) {
	return onNews(e, subjectReleased, "released-job notices", fn)
}

// Released is l's entry in a Released notice.
func (l *Lease) Released() ReleasedJob { return ReleasedJob{Seq: l.Seq, Delivered: l.Delivered} }

// TakeOne waits up to wait for one job of queue q (none: nil, no error).
// A runner asks for what waits first (Take with no wait) and, finding
// nothing, says it is hungry before it waits here.
func (e *Engine) TakeOne(ctx context.Context, q Queue, wait time.Duration) ([]*Lease, error) {
	c, err := e.consumer(ctx, q)
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	batch, err := c.Fetch(1, jetstream.FetchContext(fctx))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("take %s jobs: %w", q, err)
	}
	return e.collect(batch)
}

func (e *Engine) news(subject string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := e.nc.Publish(subject, b); err != nil {
		return fmt.Errorf("publish on %s: %w", subject, err)
	}
	return nil
}

func onNews[T any](e *Engine, subject, what string, fn func(T)) (stop func(), err error) {
	sub, err := e.nc.Subscribe(subject, func(m *nats.Msg) {
		var v T
		if json.Unmarshal(m.Data, &v) == nil {
			fn(v)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", what, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}
