package campaign

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/engine/enginetest"
)

// TestFetchLandsSafely: `simswarm results CAMPAIGN` lands a campaign's
// files as a running campaign does. A results directory whose file was
// replaced by a link to a file elsewhere gives an error, not that file;
// an inline file named out of the directory is refused; a good run lands
// with its provenance.
func TestFetchLandsSafely(t *testing.T) {
	e := enginetest.Start(t)
	ctx := context.Background()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("not a result\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ran := t.TempDir() // the results directory the campaign ran for
	if err := os.Symlink(secret, filepath.Join(ran, "General-#0.sca")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ran, "General-#2.sca"), []byte("version 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := "f00df00df00df00d"
	enginetest.PutCampaign(t, e.Engine, simswarm.Campaign{ID: id, Runs: 3, Command: simswarm.Command{Kind: simswarm.KindTemplate, Argv: []string{"./sim"}},
		Settings: simswarm.JobSettings{Local: ran}, State: simswarm.CampaignDone})
	now := time.Now()
	recs := []*simswarm.RunRecord{
		{Key: "k0", Campaign: id, Run: 0, State: simswarm.RunSucceeded, LocalDir: ran, Finished: now,
			Files: []simswarm.File{{Name: "General-#0.sca", Size: 13}}},
		{Key: "k1", Campaign: id, Run: 1, State: simswarm.RunSucceeded, Finished: now,
			Files: []simswarm.File{{Name: "../escape.sca", Size: 2, Data: []byte("x\n")}}},
		{Key: "k2", Campaign: id, Run: 2, State: simswarm.RunSucceeded, LocalDir: ran, Finished: now,
			Files: []simswarm.File{{Name: "General-#2.sca", Size: 10}}},
	}
	for _, r := range recs {
		if err := e.Store(ctx, engine.RunAnswer(r)); err != nil {
			t.Fatal(err)
		}
	}

	out := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Fetch(ctx, e.Engine, id, out)
	if err == nil || !strings.Contains(err.Error(), "run 0") {
		t.Fatalf("Fetch of a run whose file is a link: %v, want an error naming run 0", err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "General-#0.sca")); err == nil {
		t.Fatalf("the linked file landed: %q", b)
	}

	// Without the link, the refused inline name stops the fetch at run 1.
	os.Remove(filepath.Join(ran, "General-#0.sca"))
	if err := os.WriteFile(filepath.Join(ran, "General-#0.sca"), []byte("version 3\nrun0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Fetch(ctx, e.Engine, id, out)
	if err == nil || !strings.Contains(err.Error(), "unsafe path") {
		t.Fatalf("Fetch of an inline file named ../escape.sca: %v, want an unsafe path error", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(out), "escape.sca")); err == nil {
		t.Fatal("a file landed outside the directory")
	}

	// Good runs only: both land, with one provenance line each.
	e.Store(ctx, engine.RunAnswer(&simswarm.RunRecord{Key: "k1", Campaign: id, Run: 1, State: simswarm.RunFailed, Finished: now}))
	good := t.TempDir()
	n, err := Fetch(ctx, e.Engine, id, good)
	if err != nil || n != 2 {
		t.Fatalf("Fetch of two good runs = %d, %v", n, err)
	}
	if b, _ := os.ReadFile(filepath.Join(good, "General-#0.sca")); string(b) != "version 3\nrun0\n" {
		t.Errorf("run 0's file reads %q", b)
	}
	prov, _ := os.ReadFile(filepath.Join(good, "provenance.jsonl"))
	if strings.Count(string(prov), "\n") != 2 {
		t.Errorf("provenance has %d lines for 2 runs", strings.Count(string(prov), "\n"))
	}
}
