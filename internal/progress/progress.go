// Package progress shows a campaign's progress: a bar with counts and an ETA
// on a terminal, and a plain line now and then when output goes to a file or
// a CI log, where redrawing would only add noise.
package progress

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Counts is where a campaign stands.
type Counts struct {
	Total, Done, Failed, Running int
}

// Pending is what has not started.
func (c Counts) Pending() int { return c.Total - c.Done - c.Failed - c.Running }

func (c Counts) String() string {
	return fmt.Sprintf("%d done, %d failed, %d running, %d pending", c.Done, c.Failed, c.Running, c.Pending())
}

// Bar renders progress to w.
type Bar struct {
	w     io.Writer
	bar   *progressbar.ProgressBar
	last  time.Time
	start time.Time
	quiet bool
	shown Counts // what the last line said
	// expect is the whole campaign's expected wall time from earlier
	// runs' times (0: none known); the ETA follows it until the runs'
	// own rate says more.
	expect time.Duration
}

// Expect sets the campaign's expected wall time.
func (b *Bar) Expect(d time.Duration) { b.expect = d }

// New makes a bar for total runs. quiet shows nothing.
func New(w io.Writer, total int, quiet bool) *Bar {
	b := &Bar{w: w, start: time.Now(), quiet: quiet}
	if quiet {
		return b
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetRenderBlankState(true),
		)
	}
	return b
}

// Update shows c. Calling it again with the same counts is how time is
// shown passing while nothing finishes (the bar redraws its clock).
func (b *Bar) Update(c Counts) {
	if b.quiet {
		return
	}
	if b.bar != nil {
		b.bar.Describe(fmt.Sprintf("%d failed, %d running", c.Failed, c.Running))
		_ = b.bar.Set(c.Done + c.Failed)
		return
	}
	// A line when something changed (at most every 5 s), and once a
	// minute while nothing does, so that a long run shows time passing
	// without filling a CI log.
	every := 5 * time.Second
	if c == b.shown {
		every = time.Minute
	}
	if time.Since(b.last) < every && c.Done+c.Failed < c.Total {
		return
	}
	b.last, b.shown = time.Now(), c
	fmt.Fprintf(b.w, "progress: %s (%s elapsed, %s)\n", c, time.Since(b.start).Round(time.Second), b.eta(c))
}

// Finish ends the bar's line.
func (b *Bar) Finish() {
	if b.bar != nil {
		_ = b.bar.Exit()
		fmt.Fprintln(b.w)
	}
}

func (b *Bar) eta(c Counts) string {
	fin := c.Done + c.Failed
	elapsed := time.Since(b.start)
	// Earlier runs' times know the long runs; a rate over the first few
	// does not. The model rules for the first half of the campaign.
	if b.expect > 0 && elapsed < b.expect && fin*2 < c.Total {
		return "ETA " + (b.expect - elapsed).Round(time.Second).String() + " (from earlier run times)"
	}
	if fin == 0 {
		return "ETA unknown"
	}
	left := time.Duration(float64(elapsed) / float64(fin) * float64(c.Total-fin))
	return "ETA " + left.Round(time.Second).String()
}
