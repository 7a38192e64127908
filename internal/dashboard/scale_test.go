package dashboard

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine/enginetest"
)

// TestCampaignPage100k writes a campaign of 100 000 runs straight into the
// engine (campaign record, run list, compact status records) and requires
// its pages to render in under a second once the dashboard's index is
// built: the first page, a page deep inside, and a filtered page sorted by
// wall time. Under the race detector, which makes everything ten times
// slower, it checks the same with 10 000 runs and no time limit.
func TestCampaignPage100k(t *testing.T) {
	runs, limit := 100000, time.Second
	if raceEnabled {
		runs, limit = 10000, time.Hour
	}
	eng := bareEngine(t)
	cmd := simswarm.Command{Kind: simswarm.KindOmnetpp, Argv: []string{"./aloha", "-c", "Big"}}
	c := simswarm.Campaign{ID: "b16b16b16b16b16b", Project: "/p", Workdir: ".", Command: cmd, Snapshot: "s", Artifact: "a",
		Runs: runs, Submitted: time.Now(), State: "active"}
	list := simswarm.RunList{Key: simswarm.ListKey(c.Artifact, c.Workdir, cmd), At: time.Now()}
	for n := 0; n < runs; n++ {
		list.Runs = append(list.Runs, n)
		list.Vars = append(list.Vars, fmt.Sprintf("$numHosts=%d, $iaMean=%d, $repetition=%d", 10+n%7, n%13, n%5))
	}
	enginetest.PutList(t, eng, list)
	enginetest.PutCampaign(t, eng, c)
	start := time.Now()
	now := time.Now()
	var recs []*simswarm.RunRecord
	for n := 0; n < runs; n++ {
		rec := &simswarm.RunRecord{Key: simswarm.RunKey(c.Artifact, c.Workdir, cmd, n, ""), Campaign: c.ID, Run: n,
			Worker: fmt.Sprintf("node%d-1", n%4), Host: fmt.Sprintf("node%d", n%4), Batch: 1}
		switch {
		case n%10 < 7:
			rec.State = simswarm.RunSucceeded
		case n%10 < 9:
			rec.State, rec.Exit, rec.Errors = simswarm.RunFailed, 1, []string{"<!> Error: run " + fmt.Sprint(n)}
		case n%20 == 9:
			rec.State = simswarm.RunRunning
		default:
			continue // pending: no record yet
		}
		if rec.State != simswarm.RunRunning {
			rec.Wall = time.Duration(1+n%977) * time.Millisecond
			rec.Started, rec.Finished = now.Add(-rec.Wall), now
			rec.Tail = "** Event #1234 t=100s ...\n<!> Simulation time limit reached -- at t=100s, event #1234\n"
		}
		recs = append(recs, rec)
	}
	written := len(recs)
	enginetest.PutStatuses(t, eng, len(recs), func(i int) *simswarm.RunRecord { return recs[i] })
	t.Logf("wrote %d status records in %v", written, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	s, hs := serve(t, eng, Options{})
	var summary CampaignSummary
	eventually(t, 30*time.Second, "index of 100 000 runs", func() bool {
		s.m.mu.RLock()
		defer s.m.mu.RUnlock()
		ci := s.m.campaigns[c.ID]
		if ci == nil {
			return false
		}
		summary = ci.summary(time.Now())
		return summary.Runs == runs && summary.Counts.Of("")-summary.Counts.Pending == written && ci.listFor == c.Artifact
	})
	t.Logf("index built in %v: %+v", time.Since(start).Round(time.Millisecond), summary.Counts)
	if k := summary.Counts; k.Succeeded != runs*7/10 || k.Failed != runs/5 || k.Running != runs/20 || k.Pending != runs/20 {
		t.Fatalf("counts %+v", summary.Counts)
	}

	var worst time.Duration
	for _, q := range []struct{ query, want string }{
		{"", "$numHosts=10, $iaMean=0, $repetition=0"},
		{fmt.Sprintf("?page=%d", runs/200), fmt.Sprintf(">%d<", runs/2-1)},
		{fmt.Sprintf("?page=%d", runs/100), fmt.Sprintf(">%d<", runs-1)},
		{"?state=failed&sort=wall&order=desc&page=50", "b-failed"},
		{"?state=pending&sort=worker", ">19<"},
		{fmt.Sprintf("?sort=host&order=desc&page=%d", runs*321/100000), "node2"},
	} {
		start := time.Now()
		r := get(t, hs.URL+"/campaigns/"+c.ID+q.query)
		took := time.Since(start)
		worst = max(worst, took)
		if r.code != http.StatusOK || !strings.Contains(r.body, q.want) {
			t.Errorf("campaign page %q: %d, lacks %q", q.query, r.code, q.want)
		}
		if n := strings.Count(r.body, `<tr class="r-`); n != DefaultPerPage {
			t.Errorf("campaign page %q: %d rows", q.query, n)
		}
		t.Logf("GET /campaigns/%s%s: %v, %d KiB", c.ID, q.query, took.Round(100*time.Microsecond), len(r.body)/1024)
		if took > limit {
			t.Errorf("campaign page %q took %v, over %v", q.query, took, limit)
		}
	}
	start = time.Now()
	var tbl RunTable
	getJSON(t, hs.URL+"/api/campaigns/"+c.ID+"/runs?state=succeeded&sort=finished&page=7", &tbl)
	t.Logf("GET /api/campaigns/%s/runs?state=succeeded&sort=finished&page=7: %v", c.ID, time.Since(start).Round(100*time.Microsecond))
	if tbl.Total != runs*7/10 || tbl.Pages != runs*7/1000 || len(tbl.Rows) != 100 {
		t.Errorf("api table: total %d pages %d rows %d", tbl.Total, tbl.Pages, len(tbl.Rows))
	}
	start = time.Now()
	if r := get(t, hs.URL+"/"); r.code != 200 || !strings.Contains(r.body, thousands(runs)) {
		t.Errorf("overview with a 100 000-run campaign: %d", r.code)
	}
	t.Logf("GET /: %v; slowest campaign page %v", time.Since(start).Round(100*time.Microsecond), worst.Round(100*time.Microsecond))
}
