package dashboard

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/simswarm/simswarm/internal/campaign"
	"github.com/simswarm/simswarm/internal/results"
)

// TestBrowserPlots follows aloha's PureAlohaExperiment (42 runs: 3 numHosts
// × 7 iaMean × 2 repetitions) in a real browser while it runs: the
// campaign page's scalar plot fills in live as runs finish (a screenshot
// mid-campaign), the scalar is chosen with the form, one series per
// numHosts, and at the end every plotted mean and confidence bar equals
// what `simswarm results --summary` computes from the result files; the
// wall-time histogram counts every run.
func TestBrowserPlots(t *testing.T) {
	for _, tool := range []string{"make", "cc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: cannot build the aloha example", tool)
		}
	}
	bctx := browser(t)
	shots := screenshots(t)
	inst, state := cluster(t, 2)
	dir := copyExample(t, "aloha")
	host, _ := os.Hostname()
	_, hs := serve(t, inst.Eng, Options{LocalFiles: true, Engine: "embedded"})

	done := make(chan error, 1)
	var sum *campaign.Summary
	go func() {
		// Twelve simulated hours make each run last about a second (more under load).
		c := &campaign.Client{Eng: inst.Eng, Opt: campaign.Options{Dir: dir, Argv: []string{"./aloha", "-c", "PureAlohaExperiment", "--sim-time-limit=12h"},
			Results: "results", StateDir: state, Local: true, Host: host, Progress: &strings.Builder{}, Quiet: true, Stdout: &strings.Builder{}}}
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		var err error
		sum, err = c.Run(ctx)
		done <- err
	}()

	run(t, bctx, chromedp.Navigate(hs.URL+"/"))
	waitJS(t, bctx, 2*time.Minute, "the campaign appears on the overview", `document.querySelector('tr.campaign[data-id]')`)
	id, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector('tr.campaign[data-id]').dataset.id`))
	if err != nil {
		t.Fatal(err)
	}
	run(t, bctx, chromedp.Navigate(hs.URL+"/campaigns/"+id))
	waitJS(t, bctx, time.Minute, "the scalar list fills in", `[...document.querySelectorAll('#plot-y option')].some(o => o.value === 'Aloha.server.channelUtilization:last')`)
	run(t, bctx, chromedp.SetValue(chromedp.ID("plot-y"), "Aloha.server.channelUtilization:last"), chromedp.Click(chromedp.CSS(`form.plotsel button`)))
	waitJS(t, bctx, 10*time.Second, "the plot shows the chosen scalar",
		`location.search.includes('channelUtilization') && document.querySelector('#plot svg.plot circle.mpt')`)
	// Mid-campaign: some points are in, the campaign is not done.
	waitJS(t, bctx, 2*time.Minute, "several points plotted while runs go on",
		`document.querySelectorAll('#plot svg.plot circle.mpt').length >= 3`)
	midRuns, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector('#plot p').textContent`))
	shot(t, bctx, shots, "campaign-plot-mid")
	select {
	case err := <-done:
		t.Logf("the campaign finished before the mid-campaign check (%v): %s", err, midRuns)
		done <- err
	default:
		t.Logf("mid-campaign: %s", midRuns)
	}
	if err := <-done; err != nil {
		t.Fatalf("campaign: %v", err)
	}
	if sum.Succeeded != 42 {
		t.Fatalf("campaign: %+v", sum)
	}
	// The page keeps up by itself: 42 runs, 7 points on each of 3 series.
	waitJS(t, bctx, 30*time.Second, "all 42 runs plotted, live",
		`document.querySelector('#plot p').textContent.startsWith('42 runs plotted') && document.querySelectorAll('#plot svg.plot g.series').length === 3 && `+
			`document.querySelectorAll('#plot svg.plot circle.mpt').length === 21`)
	shot(t, bctx, shots, "campaign-plot-done")

	// Each point's tooltip against the summary of the result files.
	titles, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#plot svg.plot circle.mpt title')].map(t => t.textContent)`))
	if err != nil || len(titles) != 21 {
		t.Fatalf("tooltips: %v %v", titles, err)
	}
	files, err := results.Find(filepath.Join(dir, "results"), false)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := results.Summarize(context.Background(), files, results.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]float64{}
	for _, g := range groups {
		if g.Name != "channelUtilization:last" {
			continue
		}
		var ia, nh string
		for _, a := range g.Vars {
			switch a.Name {
			case "iaMean":
				ia = a.Value
			case "numHosts":
				nh = a.Value
			}
		}
		want["iaMean="+ia+", numHosts="+nh] = [2]float64{g.Mean, g.CI95}
	}
	re := regexp.MustCompile(`^(iaMean=\S+, numHosts=\S+): mean (\S+) over 2 runs, 95% CI ±(\S+)$`)
	for _, title := range titles {
		m := re.FindStringSubmatch(title)
		if m == nil {
			t.Errorf("tooltip %q", title)
			continue
		}
		w, ok := want[m[1]]
		mean, _ := strconv.ParseFloat(m[2], 64)
		ci, _ := strconv.ParseFloat(m[3], 64)
		if !ok || math.Abs(mean-w[0]) > 1e-4*math.Abs(w[0]) || math.Abs(ci-w[1]) > 1e-4*math.Abs(w[1]) {
			t.Errorf("%s: plotted mean %v ± %v, the result files give %v ± %v", m[1], mean, ci, w[0], w[1])
		}
	}
	// The wall-time histogram counts every executed run.
	counts, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#walls rect.bar title')].map(t => t.textContent)`))
	if err != nil || len(counts) != 20 {
		t.Fatalf("histogram bars: %v %v", counts, err)
	}
	total := 0
	for _, c := range counts {
		n, _ := strconv.Atoi(c[strings.LastIndex(c, ": ")+2 : strings.Index(c, " runs")])
		total += n
	}
	if total != 42 {
		t.Errorf("histogram counts %d runs, want 42", total)
	}
}
