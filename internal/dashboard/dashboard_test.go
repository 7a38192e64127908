package dashboard

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/campaign"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/engine/enginetest"
)

// hostileProject is a simswarm.toml project of four runs, no build, whose
// output is full of markup: run 1 fails with an `<!> Error` line that is
// an HTML image tag; run 3 writes a result file too large to travel inline
// in its record, so it goes through a results archive.
var hostileProject = map[string]string{
	"simswarm.toml": `[build]
command = ""

[run]
command = "sh ./sim.sh {run} {resultdir} {n}"

[run.vars]
n = [1, 2, 3, 4]
`,
	"sim.sh": `run=$1; dir=$2; n=$3
echo "<script>alert(1)</script> run $run"
echo "<b>bold</b> & \"quoted\""
if [ "$run" = 1 ]; then
  echo "<!> Error: <img src=x onerror=alert(2)> broken in run $run" >&2
  exit 1
fi
echo "scalar x $n <script>alert(3)</script>" > "$dir/Sweep-#$run.sca"
if [ "$run" = 3 ]; then head -c 300000 /dev/zero | tr '\0' 'v' > "$dir/Sweep-#$run.vec"; fi
echo "<!> Simulation time limit reached -- at t=100s, event #1234"
`,
}

// TestAPI runs a real campaign on an embedded engine with a builder and a
// runner, and checks every read endpoint against it, then the actions.
func TestAPI(t *testing.T) {
	inst, state := cluster(t, 2)
	dir := t.TempDir()
	writeFiles(t, dir, hostileProject)
	// Results kept in the store: the dashboard serves them from there
	// (a client deletes what it fetched, by default).
	sum := campaignOn(t, inst, state, dir, campaign.Options{KeepResults: true})
	if sum.Runs != 4 || sum.Failed != 1 || sum.Succeeded != 3 {
		t.Fatalf("campaign: %+v", sum)
	}
	id := sum.Campaign
	_, hs := serve(t, inst.Eng, Options{})
	base := hs.URL

	var ov Overview
	getJSON(t, base+"/api/overview", &ov)
	if len(ov.Campaigns) != 1 || ov.Campaigns[0].ID != id {
		t.Fatalf("overview campaigns: %+v", ov.Campaigns)
	}
	c := ov.Campaigns[0]
	if c.Runs != 4 || c.Counts.Succeeded != 3 || c.Counts.Failed != 1 || c.Done != 4 || c.State != "done" {
		t.Errorf("overview campaign: %+v", c)
	}
	if ov.Throughput.Total != 4 || ov.Throughput.Failed != 1 || len(ov.Throughput.Minutes) != 60 {
		t.Errorf("throughput: total %d failed %d over %d minutes", ov.Throughput.Total, ov.Throughput.Failed, len(ov.Throughput.Minutes))
	}
	if len(ov.Queues) != 3 {
		t.Errorf("queues: %+v", ov.Queues)
	}
	eventually(t, 10*time.Second, "runner heartbeat", func() bool {
		getJSON(t, base+"/api/overview", &ov)
		return ov.Workers.Online >= 1 && ov.Workers.Slots == 2
	})

	// Stored bytes by kind: the kept results archive among them.
	eventually(t, 10*time.Second, "stored bytes by kind", func() bool {
		getJSON(t, base+"/api/overview", &ov)
		for _, k := range ov.StoredByKind {
			if k.Kind == "res/" {
				return len(ov.StoredByKind) == len(engine.Kinds) && k.Count >= 1 && k.Bytes > 0
			}
		}
		return false
	})
	if r := get(t, base+"/"); !strings.Contains(r.body, "res/ ") {
		t.Errorf("the overview page shows no stored bytes by kind")
	}

	var tbl RunTable
	getJSON(t, base+"/api/campaigns/"+id+"/runs?state=failed", &tbl)
	if tbl.Total != 1 || len(tbl.Rows) != 1 || tbl.Rows[0].Run != 1 || tbl.Rows[0].Vars != "$n=2, $repetition=0" || tbl.Rows[0].Exit != 1 {
		t.Fatalf("failed runs: %+v", tbl)
	}
	getJSON(t, base+"/api/campaigns/"+id+"/runs?sort=run&order=desc&per_page=2&page=1", &tbl)
	if tbl.Total != 4 || tbl.Pages != 2 || len(tbl.Rows) != 2 || tbl.Rows[0].Run != 3 || tbl.Rows[1].Run != 2 {
		t.Fatalf("runs, descending, 2 per page: %+v", tbl)
	}

	var run RunPage
	getJSON(t, base+"/api/campaigns/"+id+"/runs/1", &run)
	if run.Record == nil || len(run.Record.Errors) != 1 || !strings.Contains(run.Record.Errors[0], "<img src=x") || run.State != "failed" {
		t.Fatalf("run 1: %+v", run)
	}
	getJSON(t, base+"/api/campaigns/"+id+"/runs/0", &run)
	if run.Record.SimTime != "100s" || run.Record.Events != 1234 || !strings.Contains(run.CommandLine, "sh ./sim.sh 0 RESULTDIR 1") {
		t.Errorf("run 0: sim time %q events %d command %q", run.Record.SimTime, run.Record.Events, run.CommandLine)
	}

	// Output, errors and result names are user data: rendered inert.
	for _, n := range []string{"0", "1"} {
		r := get(t, base+"/campaigns/"+id+"/runs/"+n)
		if r.code != 200 {
			t.Fatalf("run page %s: %d", n, r.code)
		}
		for _, bad := range []string{"<script>alert", "<img src=x", "<b>bold"} {
			if strings.Contains(r.body, bad) {
				t.Errorf("run page %s holds raw %q", n, bad)
			}
		}
		if !strings.Contains(r.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("run page %s lacks the escaped output", n)
		}
		if !strings.Contains(r.header("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("run page %s without a script policy", n)
		}
	}
	if r := get(t, base+"/campaigns/"+id+"/runs/1"); !strings.Contains(r.body, `&lt;!&gt; Error: &lt;img src=x onerror=alert(2)&gt;`) {
		t.Errorf("run 1 page does not show its <!> line escaped")
	}
	if r := get(t, base+"/campaigns/"+id); r.code != 200 || strings.Contains(r.body, "<script>alert") || !strings.Contains(r.body, "$n=2") {
		t.Errorf("campaign page: %d", r.code)
	}

	// Result files: inline in the record, and out of a results archive.
	r := get(t, base+"/campaigns/"+id+"/runs/0/files/Sweep-%230.sca")
	if r.code != 200 || !strings.Contains(r.body, "scalar x 1 <script>") || !strings.HasPrefix(r.header("Content-Disposition"), "attachment") ||
		r.header("Content-Type") != "application/octet-stream" {
		t.Errorf("inline file: %d %q %v", r.code, r.body, r.hdr)
	}
	r = get(t, base+"/campaigns/"+id+"/runs/0/files/Sweep-%230.sca?view=1")
	if r.code != 200 || r.header("Content-Type") != "text/plain; charset=utf-8" || r.header("Content-Security-Policy") != "sandbox" {
		t.Errorf("file view: %d %v", r.code, r.hdr)
	}
	r = get(t, base+"/campaigns/"+id+"/runs/3/files/Sweep-%233.vec")
	if r.code != 200 || len(r.body) != 300000 || strings.Trim(r.body, "v") != "" {
		t.Errorf("file from the results archive: %d, %d bytes", r.code, len(r.body))
	}
	if r := get(t, base+"/campaigns/"+id+"/runs/3/files/Sweep-%233.out"); r.code != 200 || !strings.Contains(r.body, "<script>alert(1)</script> run 3") {
		t.Errorf("console output from the archive: %d %q", r.code, r.body)
	}

	// Unknown things are 404 pages, never panics.
	for _, u := range []string{"/campaigns/nosuch", "/campaigns/" + id + "/runs/99", "/campaigns/" + id + "/runs/x",
		"/campaigns/nosuch/runs/0", "/campaigns/" + id + "/runs/0/files/nosuch.sca", "/campaigns/" + id + "/runs/0/files/..%2F..%2Fetc%2Fpasswd",
		"/nosuch", "/campaigns/nosuch/build/log"} {
		r := get(t, base+u)
		if r.code != 404 || !strings.Contains(r.body, "Not found") {
			t.Errorf("GET %s: %d, want a 404 page", u, r.code)
		}
	}
	for _, u := range []string{"/api/campaigns/nosuch", "/api/campaigns/nosuch/runs", "/api/campaigns/" + id + "/runs/77"} {
		if r := get(t, base+u); r.code != 404 || !strings.Contains(r.body, `"error"`) {
			t.Errorf("GET %s: %d %s, want a JSON 404", u, r.code, r.body)
		}
	}
	if r := do(t, "POST", base+"/api/campaigns/nosuch/cancel", nil, nil); r.code != 404 {
		t.Errorf("cancel of an unknown campaign: %d", r.code)
	}
	if r := get(t, base+"/api/campaigns/"+id+"/runs?state=bogus"); r.code != 400 || !strings.Contains(r.body, "unknown state") {
		t.Errorf("bad filter: %d %s", r.code, r.body)
	}

	// Metrics.
	m := get(t, base+"/metrics").body
	for _, want := range []string{`simswarm_runs{state="failed"} 1`, `simswarm_runs{state="succeeded"} 3`, "simswarm_run_duration_seconds_count 4",
		`simswarm_queue_jobs{queue="run",state="waiting"} 0`, `simswarm_workers{role="runner",state="online"} 1`, "simswarm_stored_bytes"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}

	// The event stream says hello at once.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("events content type %q", ct)
	}
	line, _ := bufio.NewReader(res.Body).ReadString('\n')
	res.Body.Close()
	cancel()
	if !strings.HasPrefix(line, "retry:") {
		t.Errorf("event stream starts with %q", line)
	}

	// A Slurm pilot's heartbeat: the workers page names its job and node.
	pilot := simswarm.Worker{ID: "n7-4242", Host: "n7", Role: simswarm.RoleRunner, Slots: 1, Version: simswarm.Version,
		Seen: time.Now(), Slurm: "1234_5"}
	enginetest.PutWorker(t, inst.Eng, pilot)
	eventually(t, 10*time.Second, "the pilot on the workers page", func() bool {
		return strings.Contains(get(t, base+"/workers").body, "1234_5 on n7")
	})

	// Drain the runner: its heartbeat says so, and a failed run enqueued
	// again by retry waits in the queue until the runner is resumed; then
	// it runs (and fails again: its script always does).
	var wp WorkersPage
	getJSON(t, base+"/api/workers", &wp)
	runnerID := ""
	for _, h := range wp.Hosts {
		for _, w := range h.Workers {
			if w.Role == "runner" && w.Slurm == "" {
				runnerID = w.ID
			}
		}
	}
	if runnerID == "" {
		t.Fatalf("no runner among the workers: %+v", wp)
	}
	if r := do(t, "POST", base+"/api/workers/"+runnerID+"/drain", nil, nil); r.code != 200 {
		t.Fatalf("drain: %d %s", r.code, r.body)
	}
	draining := func(want bool) func() bool {
		return func() bool {
			wp = WorkersPage{} // absent fields must not keep old values
			getJSON(t, base+"/api/workers", &wp)
			for _, h := range wp.Hosts {
				for _, w := range h.Workers {
					if w.ID == runnerID {
						return w.Draining == want && (w.State == "draining") == want
					}
				}
			}
			return false
		}
	}
	eventually(t, 2*engine.HeartbeatEvery, "runner reports draining", draining(true))
	before, _, err := inst.Eng.RunStatus(context.Background(), id, 1)
	if err != nil || before == nil {
		t.Fatal(err)
	}
	r = do(t, "POST", base+"/api/campaigns/"+id+"/retry", form("timeout", "30s"), nil)
	if r.code != 200 || !strings.Contains(r.body, `"runs": 1`) {
		t.Fatalf("retry: %d %s", r.code, r.body)
	}
	getJSON(t, base+"/api/campaigns/"+id+"/runs?state=pending", &tbl)
	if tbl.Total != 1 || !tbl.Rows[0].Queued {
		t.Errorf("retried run not shown queued: %+v", tbl)
	}
	time.Sleep(2 * time.Second)
	during, _, err := inst.Eng.RunStatus(context.Background(), id, 1)
	if err != nil || during == nil {
		t.Fatal(err)
	}
	if !during.Finished.Equal(before.Finished) || during.State != simswarm.RunFailed {
		t.Fatalf("a drained runner ran the retried run: %+v", during)
	}
	if r := do(t, "POST", base+"/api/workers/"+runnerID+"/resume", nil, nil); r.code != 200 {
		t.Fatalf("resume: %d %s", r.code, r.body)
	}
	eventually(t, 20*time.Second, "retried run 1 to finish again", func() bool {
		rec, ok, _ := inst.Eng.RunStatus(context.Background(), id, 1)
		return ok && rec.State == simswarm.RunFailed && rec.Finished.After(before.Finished)
	})
	eventually(t, 2*engine.HeartbeatEvery, "runner reports taking jobs again", draining(false))
	if r := do(t, "POST", base+"/api/workers/nosuch/drain", nil, nil); r.code != 404 {
		t.Errorf("drain of an unknown worker: %d", r.code)
	}

	// Cancel marks the campaign cancelled.
	if r := do(t, "POST", base+"/api/campaigns/"+id+"/cancel", nil, nil); r.code != 200 {
		t.Fatalf("cancel: %d %s", r.code, r.body)
	}
	eventually(t, 5*time.Second, "campaign shows cancelled", func() bool {
		var cp struct{ Campaign CampaignSummary }
		getJSON(t, base+"/api/campaigns/"+id, &cp)
		return cp.Campaign.State == "cancelled"
	})
}

func (r response) header(k string) string { return r.hdr.Get(k) }

// TestAccess checks who may read and act: loopback reads freely, anything
// else needs the token; actions need it whenever one is set; no other web
// site can post to the dashboard or read it through a rebound name.
func TestAccess(t *testing.T) {
	eng := bareEngine(t)
	if _, err := New(context.Background(), eng, Options{Listen: "0.0.0.0:9181"}); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("public listener without token: %v", err)
	}
	if _, err := New(context.Background(), eng, Options{Listen: ":9181"}); err == nil {
		t.Fatal("all-interfaces listener without token accepted")
	}
	c := simswarm.Campaign{ID: "c0ffee", Runs: 1, State: "active", Command: simswarm.Command{Kind: simswarm.KindOmnetpp, Argv: []string{"./sim"}}}
	enginetest.PutCampaign(t, eng, c)

	_, pub := serve(t, eng, Options{Listen: "0.0.0.0:9181", Token: "s3cret"})
	bearer := map[string]string{"Authorization": "Bearer s3cret"}
	for _, u := range []string{"/", "/api/overview", "/metrics", "/api/events", "/campaigns/c0ffee"} {
		if r := get(t, pub.URL+u); r.code != 403 {
			t.Errorf("public listener, GET %s without token: %d", u, r.code)
		}
	}
	if r := do(t, "GET", pub.URL+"/api/overview", nil, map[string]string{"Authorization": "Bearer wrong"}); r.code != 403 {
		t.Errorf("wrong token read: %d", r.code)
	}
	if r := do(t, "GET", pub.URL+"/api/overview", nil, bearer); r.code != 200 {
		t.Errorf("bearer read: %d", r.code)
	}
	if r := do(t, "POST", pub.URL+"/api/campaigns/c0ffee/cancel", nil, nil); r.code != 403 {
		t.Errorf("public listener, action without token: %d %s", r.code, r.body)
	}
	if r := do(t, "POST", pub.URL+"/api/campaigns/c0ffee/cancel", form("token", "wrong"), nil); r.code != 403 {
		t.Errorf("action with a wrong form token: %d", r.code)
	}
	if r := get(t, pub.URL+"/static/app.css"); r.code != 200 {
		t.Errorf("assets need no token: %d", r.code)
	}
	// /login trades the token for a cookie that reads and acts.
	if r := get(t, pub.URL+"/login?token=wrong"); r.code != 403 {
		t.Errorf("login with a wrong token: %d", r.code)
	}
	r := get(t, pub.URL+"/login?token=s3cret")
	cookie := r.header("Set-Cookie")
	if r.code != 303 || !strings.Contains(cookie, cookieName+"=s3cret") || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") {
		t.Fatalf("login: %d %q", r.code, cookie)
	}
	jar := map[string]string{"Cookie": strings.Split(cookie, ";")[0]}
	if r := do(t, "GET", pub.URL+"/", nil, jar); r.code != 200 || !strings.Contains(r.body, "c0ffee") {
		t.Errorf("read with the cookie: %d", r.code)
	}
	if r := do(t, "POST", pub.URL+"/api/campaigns/c0ffee/cancel", form("token", "s3cret"), nil); r.code != 200 {
		t.Errorf("action with the form token: %d %s", r.code, r.body)
	}
	if r := do(t, "POST", pub.URL+"/api/campaigns/c0ffee/cancel", nil, bearer); r.code != 200 {
		t.Errorf("action with the bearer token: %d %s", r.code, r.body)
	}

	_, lo := serve(t, eng, Options{Listen: "127.0.0.1:0"})
	if r := get(t, lo.URL+"/api/overview"); r.code != 200 {
		t.Errorf("loopback read: %d", r.code)
	}
	if r := do(t, "GET", lo.URL+"/", nil, map[string]string{"Host": "attacker.example:9181"}); r.code != 403 {
		t.Errorf("loopback dashboard read under a foreign host name: %d", r.code)
	}
	if r := do(t, "POST", lo.URL+"/api/campaigns/c0ffee/cancel", nil, map[string]string{"Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"}); r.code != 403 {
		t.Errorf("cross-site action: %d", r.code)
	}
	if r := do(t, "POST", lo.URL+"/api/campaigns/c0ffee/cancel", nil, nil); r.code != 200 {
		t.Errorf("loopback action without token (none set): %d %s", r.code, r.body)
	}
	// A token on loopback guards actions, not reading.
	_, lot := serve(t, eng, Options{Listen: "127.0.0.1:0", Token: "t0k"})
	if r := get(t, lot.URL+"/api/overview"); r.code != 200 {
		t.Errorf("loopback read with a token set: %d", r.code)
	}
	if r := do(t, "POST", lot.URL+"/api/campaigns/c0ffee/cancel", nil, nil); r.code != 403 {
		t.Errorf("loopback action without the token set for it: %d", r.code)
	}
}
