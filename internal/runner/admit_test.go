package runner

import (
	"context"
	"testing"
	"time"

	"github.com/simswarm/simswarm/internal/engine"
)

// A connection that came back delivers jobs before the runner hears of its
// return (the reconnect handler runs later). A job taken then may be one a
// restarted server handed out again while its first holder still runs it:
// it must wait like any job taken within the grace, or the run is done
// twice (seen in TestFaultServerRestart under CI's load).
func TestJobTakenBeforeTheReconnectIsHeardWaits(t *testing.T) {
	r := &Runner{}
	r.doubt.init()
	taken := time.Now()
	l := &engine.Lease{Conn: 1, Taken: taken, Seq: 7}
	if !r.doubted(l) {
		t.Fatal("a job taken on a connection whose return is not heard of yet starts at once")
	}
	heard := make(chan time.Time, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		r.doubt.mu.Lock()
		r.doubt.reconnected, r.doubt.conn = time.Now(), 1
		heard <- r.doubt.reconnected
		r.doubt.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	end, ok := r.graceEnd(ctx, l)
	if !ok {
		t.Fatal("graceEnd gave up before the reconnection was heard")
	}
	if want := (<-heard).Add(reconnectGrace); !end.Equal(want) {
		t.Fatalf("the job waits until %v, want the grace after the reconnection is heard (%v)", end, want)
	}

	later := &engine.Lease{Conn: 1, Taken: end.Add(time.Second), Seq: 8}
	if r.doubted(later) {
		t.Error("a job taken on the same connection after the grace is doubted")
	}
	if e, _ := r.graceEnd(ctx, later); !e.IsZero() {
		t.Errorf("a job taken after the grace waits until %v", e)
	}
	r.doubt.elsewhere[8] = heldNote{from: "other", until: time.Now().Add(time.Minute)}
	if !r.doubted(later) {
		t.Error("a job another runner says it holds is not doubted")
	}

	// A reconnection never heard of (its handler lost) holds the job one
	// grace, then lets it go on to the other checks.
	lost := &engine.Lease{Conn: 2, Taken: time.Now(), Seq: 9}
	start := time.Now()
	e, ok := r.graceEnd(ctx, lost)
	if waited := time.Since(start); !ok || waited < reconnectGrace || waited > 3*reconnectGrace || e.Before(time.Now()) {
		t.Errorf("a job taken on a reconnection never heard of: waited %v, then until %v", waited, e)
	}
}
