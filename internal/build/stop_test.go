package build

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
)

// TestStoppedBuilderIsGone: once Serve has returned, the builder is no
// longer announced, even when its connection is closed right away (as an
// embedded process does on exit). Repeated because the heartbeat's removal
// racing the close lost only now and then.
func TestStoppedBuilderIsGone(t *testing.T) {
	srv, err := engine.StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	eng, err := srv.Setup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	for i := 0; i < 10; i++ {
		weng, err := srv.Open(ctx, "builder")
		if err != nil {
			t.Fatal(err)
		}
		wctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		b := &Builder{Eng: weng, Dir: t.TempDir(), Jobs: 1, Host: "bhost", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		go func() { defer close(done); _ = b.Serve(wctx) }()
		for announced := false; !announced; {
			heard, err := eng.Workers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range heard {
				announced = announced || w.Role == simswarm.RoleBuilder
			}
			if ctx.Err() != nil {
				t.Fatal("builder never announced")
			}
			time.Sleep(20 * time.Millisecond)
		}
		stop()
		<-done
		weng.Close()
		heard, err := eng.Workers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(heard) != 0 {
			t.Fatalf("round %d: builder still announced after it stopped: %+v", i, heard)
		}
	}
}
