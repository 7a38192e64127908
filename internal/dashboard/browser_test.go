package dashboard

// Real-browser tests: headless Chromium, driven by chromedp, against a
// dashboard serving real embedded campaigns of the bundled aloha example
// (real build, real simulation processes). Chromium comes from the
// distribution (Debian: the chromium package); without it the tests skip.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/campaign"
	"github.com/simswarm/simswarm/internal/engine/enginetest"
	"github.com/simswarm/simswarm/internal/testkit"
)

// chromium finds the browser: $SIMSWARM_CHROMIUM, else chromium on PATH.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SIMSWARM_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no headless Chromium (install the distribution's chromium package, or set SIMSWARM_CHROMIUM): browser tests skipped")
	return ""
}

// browser starts a fresh headless Chromium with its own profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1360, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// screenshots is where test screenshots go: $SIMSWARM_SCREENSHOTS, kept
// for people to look at, else a temporary directory.
func screenshots(t *testing.T) string {
	dir := os.Getenv("SIMSWARM_SCREENSHOTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	// A page swapping regions after a live update can measure 0 wide for a
	// moment; the screenshot is an artifact for people, not an assertion.
	var png []byte
	var err error
	for range 10 {
		if png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil { // 100: PNG
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", p)
}

// waitJS polls a JavaScript expression in the page until it is true.
func waitJS(t *testing.T, ctx context.Context, within time.Duration, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main') ? document.querySelector('main').innerText : document.body.innerText`))
			t.Fatalf("%s: not within %v (last error %v); page text:\n%s", what, within, err, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func run(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// copyExample copies a bundled example without what a local build left.
func copyExample(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := testkit.CopySources(filepath.Join("..", "..", "examples", name), dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// needAlohaTools skips a test that builds the aloha example where its
// tools are missing.
func needAlohaTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"make", "cc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: cannot build the aloha example", tool)
		}
	}
}

// TestBrowser watches the aloha example's Failing configuration (eight
// runs: ok, error, ok, crash, ok, hang, segfault, ok; the hang times out)
// run on an embedded engine, in a real browser: the overview fills in live
// with the right counts and the graph gains points, the campaign table
// filters, the failing run's page shows its `<!>` line, and a second
// campaign, stuck on the hanging run, is cancelled from its page.
func TestBrowser(t *testing.T) {
	needAlohaTools(t)
	bctx := browser(t)
	shots := screenshots(t)
	inst, state := cluster(t, 2)
	dir := copyExample(t, "aloha")
	host, _ := os.Hostname()
	_, hs := serve(t, inst.Eng, Options{LocalFiles: true, Engine: "embedded"})
	base := hs.URL

	// The overview is open before the campaign exists: what follows must
	// arrive live, without reloading.
	run(t, bctx, chromedp.Navigate(base+"/"))
	waitJS(t, bctx, 10*time.Second, "live updates connected", `document.getElementById('live').classList.contains('on')`)

	type result struct {
		sum *campaign.Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		c := &campaign.Client{Eng: inst.Eng, Opt: campaign.Options{Dir: dir, Argv: []string{"./aloha", "-c", "Failing"}, Results: "results",
			StateDir: state, Timeout: 3 * time.Second, Local: true, Host: host, Progress: &strings.Builder{}, Quiet: true, Stdout: &strings.Builder{}}}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		s, err := c.Run(ctx)
		done <- result{s, err}
	}()
	res := <-done
	if res.err != nil {
		t.Fatalf("campaign: %v", res.err)
	}
	a := res.sum
	if a.Runs != 8 || a.Succeeded != 4 || a.Failed != 4 {
		t.Fatalf("campaign summary: %+v", a)
	}
	row := `document.querySelector('tr.campaign[data-id="` + a.Campaign + `"]')`
	waitJS(t, bctx, 10*time.Second, "overview shows the finished campaign, live",
		row+` && `+row+`.querySelector('.count-done').textContent === '8' && `+row+`.querySelector('.count-runs').textContent === '8' && `+
			row+`.querySelector('.count-failed').textContent === '4 failed' && `+row+`.querySelector('.badge').textContent === 'done'`)
	waitJS(t, bctx, 5*time.Second, "graph has points", `document.querySelectorAll('#graph svg.chart circle.pt').length >= 1`)
	finished, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`#tiles .tile:nth-child(2) .v`)))
	if err != nil || finished != "8" {
		t.Errorf("finished in the last hour: %q (%v), want 8", finished, err)
	}

	// Campaign B: the hanging run alone, no timeout, submitted detached,
	// so it runs until cancelled.
	b := &campaign.Client{Eng: inst.Eng, Opt: campaign.Options{Dir: dir, Argv: []string{"./aloha", "-c", "Failing", "-r", "5"}, Results: "results",
		StateDir: state, Detach: true, Progress: &strings.Builder{}, Quiet: true, Stdout: &strings.Builder{}}}
	sb, err := b.Run(context.Background())
	if err != nil {
		t.Fatalf("campaign B: %v", err)
	}
	eventually(t, 20*time.Second, "campaign B's run starts", func() bool {
		rec, ok, _ := inst.Eng.RunStatus(context.Background(), sb.Campaign, 5)
		return ok && rec.State == simswarm.RunRunning
	})
	waitJS(t, bctx, 10*time.Second, "overview shows campaign B running",
		`document.querySelector('tr.campaign[data-id="`+sb.Campaign+`"] .badge.b-active')`)
	waitJS(t, bctx, 10*time.Second, "cluster view shows a busy slot", `document.querySelector('#cluster .slot.busy')`)
	shot(t, bctx, shots, "overview")

	// The campaign table filters by state.
	run(t, bctx, chromedp.Navigate(base+"/campaigns/"+a.Campaign))
	waitJS(t, bctx, 5*time.Second, "campaign page lists 8 runs", `document.querySelectorAll('#runs tbody tr').length === 8`)
	run(t, bctx, chromedp.Click(chromedp.CSS(`#runs .tabs a.t-failed`)))
	waitJS(t, bctx, 5*time.Second, "table filtered to the 4 failed runs",
		`location.search.includes('state=failed') && document.querySelectorAll('#runs tbody tr').length === 4 && `+
			`document.querySelectorAll('#runs tbody tr.r-failed').length === 4`)
	runs, err := chromedp.Run(bctx, chromedp.Evaluate[string](`[...document.querySelectorAll('#runs tbody tr td:first-child')].map(td => td.textContent.trim()).join(',')`))
	if err != nil || runs != "1,3,5,6" {
		t.Errorf("failed runs listed: %s (%v), want 1,3,5,6", runs, err)
	}
	shot(t, bctx, shots, "campaign-failed")

	// The failing run's page shows its <!> line.
	run(t, bctx, chromedp.Click(chromedp.CSS(`#runs tbody a[href$="/runs/1"]`)))
	waitJS(t, bctx, 5*time.Second, "run 1 shows its <!> error line",
		`[...document.querySelectorAll('.errors pre')].some(p => p.textContent.startsWith('<!> Error: Simulated model failure'))`)
	waitJS(t, bctx, 5*time.Second, "run 1 output highlights the <!> line", `document.querySelector('pre.out .bang.err')`)
	waitJS(t, bctx, 5*time.Second, "run 1 links its console output", `document.querySelector('table.files a[href*="Failing-%231.out"]')`)
	shot(t, bctx, shots, "run-failed")

	// A result file downloads through the dashboard (written straight into
	// results/ by the runner: embedded mode).
	var run0 RunPage
	getJSON(t, base+"/api/campaigns/"+a.Campaign+"/runs/0", &run0)
	sca := ""
	for _, f := range run0.Files {
		if strings.HasSuffix(f.Name, ".sca") {
			sca = f.URL
		}
	}
	if r := get(t, base+sca); sca == "" || r.code != 200 || !strings.Contains(r.body, "scalar ") {
		t.Errorf("result file %q of run 0: %d", sca, r.code)
	}

	// Cancel campaign B from its page: a first click arms the button, the
	// second cancels; the page turns to cancelled by itself.
	run(t, bctx, chromedp.Navigate(base+"/campaigns/"+sb.Campaign))
	waitJS(t, bctx, 5*time.Second, "campaign B's run shows running", `document.querySelector('#runs tr.r-running')`)
	run(t, bctx, chromedp.Click(chromedp.ID("cancel")))
	waitJS(t, bctx, 2*time.Second, "cancel asks to be sure", `document.getElementById('cancel').textContent === 'Really cancel?'`)
	run(t, bctx, chromedp.Click(chromedp.ID("cancel")))
	waitJS(t, bctx, 10*time.Second, "campaign B shows cancelled", `document.querySelector('#state .badge').textContent === 'cancelled'`)
	waitJS(t, bctx, 15*time.Second, "its running run shows cancelled", `document.querySelector('#runs tr.r-cancelled') && !document.querySelector('#runs tr.r-running')`)
	waitJS(t, bctx, 5*time.Second, "toast confirms", `document.getElementById('toast').textContent.includes('cancelled')`)
	shot(t, bctx, shots, "campaign-cancelled")
	if rec, ok, err := inst.Eng.RunStatus(context.Background(), sb.Campaign, 5); err != nil || !ok || rec.State != simswarm.RunCancelled {
		t.Errorf("run 5 of campaign B after cancel: %+v %v", rec, err)
	}

	run(t, bctx, chromedp.Navigate(base+"/workers"))
	waitJS(t, bctx, 5*time.Second, "workers page lists the runner", `[...document.querySelectorAll('.worker .role')].some(e => e.textContent === 'runner')`)
	shot(t, bctx, shots, "workers")
}

// TestBrowserCluster shows a cluster the way a long campaign looks after
// half an hour: several hosts, one of them lost and one runner draining,
// a throughput history that rises as runners were added, and a campaign
// too large for one page. The state is written straight into the engine
// (no workers run); the dashboard must read the history back on start.
func TestBrowserCluster(t *testing.T) {
	bctx := browser(t)
	shots := screenshots(t)
	eng := bareEngine(t)
	now := time.Now()
	for i, h := range []struct {
		host        string
		slots, busy int
		age         time.Duration
		draining    bool
	}{{"node1", 16, 16, 0, false}, {"node2", 16, 15, 2 * time.Second, false}, {"node3", 16, 9, time.Second, true}, {"node4", 16, 16, 42 * time.Second, false}} {
		w := simswarm.Worker{ID: h.host + "-1", Host: h.host, Role: simswarm.RoleRunner, Slots: h.slots, Busy: h.busy, Version: simswarm.Version,
			Seen: now.Add(-h.age), CacheBytes: int64(i+1) * 700 << 20, Draining: h.draining}
		for s := 0; s < h.busy; s++ {
			w.Current = append(w.Current, simswarm.StatusKey("5ca1ab1e5ca1ab1e", 1900+i*16+s))
		}
		enginetest.PutWorker(t, eng, w)
	}
	enginetest.PutWorker(t, eng, simswarm.Worker{ID: "manager-1", Host: "manager", Role: simswarm.RoleBuilder,
		Slots: 1, Version: simswarm.Version, Seen: now})
	cmd := simswarm.Command{Kind: simswarm.KindOmnetpp, Argv: []string{"inet", "-f", "omnetpp.ini", "-c", "Wifi<Throughput>"}}
	c := simswarm.Campaign{ID: "5ca1ab1e5ca1ab1e", Project: "/home/ada/inet", Workdir: "examples/wireless", Command: cmd,
		Snapshot: "5a", Artifact: "a7", Runs: 2400, Submitted: now.Add(-38 * time.Minute), State: simswarm.CampaignActive}
	enginetest.PutCampaign(t, eng, c)
	list := simswarm.RunList{Key: simswarm.ListKey(c.Artifact, c.Workdir, cmd)}
	for n := 0; n < c.Runs; n++ {
		list.Runs = append(list.Runs, n)
		list.Vars = append(list.Vars, fmt.Sprintf("$numHosts=%d, $bitrate=%dMbps, $repetition=%d", 2+n/60, []int{6, 12, 24, 54}[n/15%4], n%15))
	}
	enginetest.PutList(t, eng, list)
	done := simswarm.Campaign{ID: "d0d0d0d0d0d0d0d0", Project: "/home/ada/aloha", Workdir: ".", Snapshot: "5b", Artifact: "a8",
		Command: simswarm.Command{Kind: simswarm.KindOmnetpp, Argv: []string{"./aloha", "-c", "PureAlohaExperiment"}},
		Runs:    42, Submitted: now.Add(-55 * time.Minute), State: simswarm.CampaignDone}
	enginetest.PutCampaign(t, eng, done)
	put := func(camp string, n int, state simswarm.RunState, finished time.Time, wall time.Duration, host string) {
		rec := simswarm.RunRecord{Campaign: camp, Run: n, State: state, Host: host, Worker: host + "-1", Wall: wall,
			Started: finished.Add(-wall), Finished: finished}
		if state == simswarm.RunFailed {
			rec.Exit, rec.Errors = 1, []string{"<!> Error: Cannot evaluate parameter 'numHosts'"}
		}
		if state == simswarm.RunRunning {
			rec.Finished = time.Time{}
		}
		enginetest.PutStatus(t, eng, &rec)
	}
	for n := 0; n < 42; n++ {
		put(done.ID, n, simswarm.RunSucceeded, now.Add(-50*time.Minute+time.Duration(n)*10*time.Second), 9*time.Second, "node1")
	}
	// The big campaign: one runner host at first, four from minute 20 on.
	n := 0
	for m := 37; m >= 1 && n < 1890; m-- {
		perMin := 14
		if m < 20 {
			perMin = 58
		}
		for k := 0; k < perMin && n < 1890; k++ {
			st := simswarm.RunSucceeded
			if n%23 == 5 {
				st = simswarm.RunFailed
			}
			host := []string{"node1", "node2", "node3", "node4"}[n%4]
			if m >= 20 {
				host = "node1"
			}
			put(c.ID, n, st, now.Add(-time.Duration(m)*time.Minute+time.Duration(k)*time.Second), time.Duration(50+n%40)*time.Second, host)
			n++
		}
	}
	for ; n < 1960; n++ {
		put(c.ID, n, simswarm.RunRunning, time.Time{}, 0, []string{"node1", "node2", "node3", "node4"}[n%4])
	}
	_, hs := serve(t, eng, Options{Engine: "nats://manager:4222"})

	run(t, bctx, chromedp.Navigate(hs.URL+"/"))
	waitJS(t, bctx, 5*time.Second, "graph shows the history", `document.querySelectorAll('#graph circle.pt').length >= 35`)
	waitJS(t, bctx, 5*time.Second, "cluster view marks the lost host", `document.querySelectorAll('#cluster .minihost.lost').length === 1`)
	waitJS(t, bctx, 5*time.Second, "active campaign has an ETA", `document.querySelector('tr.campaign[data-id="5ca1ab1e5ca1ab1e"] td:nth-child(4)').textContent.match(/\d+m|\d+ s/)`)
	shot(t, bctx, shots, "cluster-overview")

	run(t, bctx, chromedp.Navigate(hs.URL+"/workers"))
	waitJS(t, bctx, 5*time.Second, "lost host in red", `document.querySelector('.host.lost h2').textContent === 'node4'`)
	waitJS(t, bctx, 5*time.Second, "draining runner", `document.querySelector('.worker.w-draining button').textContent === 'Resume'`)
	shot(t, bctx, shots, "cluster-workers")

	run(t, bctx, chromedp.Navigate(hs.URL+"/campaigns/"+c.ID+"?sort=wall&order=desc&page=3"))
	waitJS(t, bctx, 5*time.Second, "page 3 of the runs by wall time", `document.querySelectorAll('#runs tbody tr').length === 100 && document.querySelector('.pages a[aria-current]').textContent === '3'`)
	waitJS(t, bctx, 5*time.Second, "iteration variables from the run list", `document.querySelector('#runs td.vars').textContent.startsWith('$numHosts=')`)
	png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot()) // the window, not all 100 rows
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shots, "cluster-campaign.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
