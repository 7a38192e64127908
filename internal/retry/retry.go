// Package retry is the one way simswarm tries an operation again: dialling a
// server that is not up yet, setting up a cluster that has no leader yet,
// writing a record while a stream leader moves, reading a record a replica
// has not caught up with. Waits grow from Policy.First to Policy.Max.
package retry

import (
	"context"
	"errors"
	"time"
)

// Policy says how long to keep trying and how long to wait in between.
type Policy struct {
	First time.Duration // wait after the first failure (default 200ms)
	Max   time.Duration // longest wait (default 5s)
	// For bounds the whole effort; 0 keeps trying until ctx ends.
	For time.Duration
}

// stop marks an error that trying again cannot cure.
type stop struct{ err error }

func (s stop) Error() string { return s.err.Error() }
func (s stop) Unwrap() error { return s.err }

// Stop wraps err so that Do returns it at once.
func Stop(err error) error {
	if err == nil {
		return nil
	}
	return stop{err}
}

// Do calls fn until it returns nil, returns an error wrapped with Stop, or
// the policy's time or ctx runs out; it returns fn's last error then (ctx's
// error if fn never ran). attempt counts from 1.
func Do(ctx context.Context, p Policy, fn func(attempt int) error) error {
	if p.First <= 0 {
		p.First = 200 * time.Millisecond
	}
	if p.Max < p.First {
		p.Max = max(p.First, 5*time.Second)
	}
	var deadline time.Time
	if p.For > 0 {
		deadline = time.Now().Add(p.For)
	}
	wait := p.First
	var err error
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			if err == nil {
				err = ctx.Err()
			}
			return err
		}
		err = fn(attempt)
		var s stop
		if err == nil {
			return nil
		}
		if errors.As(err, &s) {
			return s.err
		}
		if !deadline.IsZero() && time.Now().Add(wait).After(deadline) {
			return err
		}
		if !Sleep(ctx, wait) {
			return err
		}
		wait = min(2*wait, p.Max)
	}
}

// Sleep waits for d or until ctx ends, and says whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
