package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDoUntilSuccess(t *testing.T) {
	n := 0
	err := Do(context.Background(), Policy{First: time.Millisecond}, func(a int) error {
		n++
		if a < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("Do = %v after %d calls; want nil after 3", err, n)
	}
}

func TestDoStopsOnPermanentError(t *testing.T) {
	bad := errors.New("bad input")
	n := 0
	err := Do(context.Background(), Policy{First: time.Millisecond}, func(int) error { n++; return Stop(bad) })
	if !errors.Is(err, bad) || n != 1 {
		t.Fatalf("Do = %v after %d calls; want %v after 1", err, n, bad)
	}
}

func TestDoGivesUpWithLastError(t *testing.T) {
	start := time.Now()
	err := Do(context.Background(), Policy{First: 10 * time.Millisecond, Max: 20 * time.Millisecond, For: 100 * time.Millisecond},
		func(a int) error { return errors.New("still down") })
	if err == nil || err.Error() != "still down" {
		t.Fatalf("Do = %v; want the last error", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("Do took %s with For 100ms", el)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Do(ctx, Policy{}, func(int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Do on a cancelled context = %v", err)
	}
}
