package engine

import (
	"context"
	"testing"
	"time"
)

// TestGetFromLeader: the leader read finds what a KV put stored and says
// "not found" for a key never written, like a KV get.
func TestGetFromLeader(t *testing.T) {
	srv, err := StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eng, err := srv.Setup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.NC.Close()
	if err := PutJSON(ctx, eng.Runs, "abc", map[string]int{"n": 7}); err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	ok, err := eng.GetFromLeader(ctx, BucketRuns, "abc", &got)
	if err != nil || !ok || got["n"] != 7 {
		t.Fatalf("GetFromLeader(abc) = %v, %v, %v", got, ok, err)
	}
	ok, err = eng.GetFromLeader(ctx, BucketRuns, "never", &got)
	if err != nil || ok {
		t.Fatalf("GetFromLeader(never) = %v, %v; want not found", ok, err)
	}
	// An async put is stored once its future says so.
	f, err := eng.PutAsync(BucketStatus, "c.1", map[string]string{"state": "running"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.Ok():
	case err := <-f.Err():
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("no ack")
	}
	var st map[string]string
	if ok, err := GetJSON(ctx, eng.Status, "c.1", &st); !ok || err != nil || st["state"] != "running" {
		t.Fatalf("PutAsync then GetJSON = %v, %v, %v", st, ok, err)
	}
}
