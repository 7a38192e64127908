package campaign

import (
	"context"
	"fmt"
	"github.com/simswarm/simswarm"
	"sync"
	"time"

	"github.com/simswarm/simswarm/internal/engine"
)

// missingAfter is how long a client waits without a heartbeat of the role
// it needs before it says so.
const missingAfter = 10 * time.Second

// unreachableAfter is how long the engine may be away (a server restart)
// before the client says so.
const unreachableAfter = 5 * time.Second

// sayIfMissing watches the engine's heartbeats while the client waits for
// a worker of role (a build for a builder, a run list or runs for a
// runner): when none has been heard for missingAfter, it says so in one
// line naming the command that starts one, and the client keeps waiting.
func (c *Client) sayIfMissing(ctx context.Context, role simswarm.Role) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	start := time.Now()
	var last time.Time // when a heartbeat of role was last heard (this host's clock)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			_ = c.Eng.Follow(ctx, engine.BucketWorkers, func() {}, func(e engine.Entry) {
				if e.Deleted || roleOf(e.Key) != role {
					return
				}
				heard := time.Now()
				if e.Initial {
					// Stored before: the engine's clock says how long ago.
					heard = heard.Add(-max(time.Since(e.At), 0))
				}
				mu.Lock()
				if heard.After(last) {
					last = heard
				}
				mu.Unlock()
			})
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		said := false
		var lost time.Time // when the engine became unreachable, if it is
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// With the engine away no heartbeat can arrive: that, not a
			// missing worker, is what the user must hear.
			if !c.Eng.Connected() {
				if lost.IsZero() {
					lost = time.Now()
				}
				if time.Since(lost) >= unreachableAfter && !said {
					said = true
					c.warnf("the engine%s is unreachable (for %s); still trying to reconnect",
						c.serverNamed(), time.Since(lost).Round(time.Second))
				}
				continue
			}
			if !lost.IsZero() {
				// Back: heartbeats resume within a beat; count from now.
				lost, said = time.Time{}, false
				mu.Lock()
				last = time.Now()
				mu.Unlock()
			}
			mu.Lock()
			since := time.Since(start) // at least: nothing heard since we began
			if !last.IsZero() {
				since = time.Since(last)
			}
			mu.Unlock()
			switch {
			case since >= missingAfter && !said:
				said = true
				c.warnf("no %s has sent a heartbeat for %s; start one with: %s (still waiting; Ctrl-C cancels)",
					role, since.Round(time.Second), c.startCommand(role))
			case since < missingAfter:
				said = false
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// roleOf is the role part of a workers-bucket key ("runner.<id>").
func roleOf(key string) simswarm.Role {
	for i := range key {
		if key[i] == '.' {
			return simswarm.Role(key[:i])
		}
	}
	return simswarm.Role(key)
}

// startCommand is how a user starts a worker of role for this engine.
func (c *Client) startCommand(role simswarm.Role) string {
	cmd := "simswarm " + string(role)
	if c.Opt.Server != "" {
		cmd += " --server " + c.Opt.Server
	}
	if c.Opt.Creds != "" {
		cmd += " --creds " + c.Opt.Creds
	}
	return cmd
}

// serverNamed is " at URL" for a cluster engine.
func (c *Client) serverNamed() string {
	if c.Opt.Server == "" {
		return ""
	}
	return " at " + c.Opt.Server
}

// warnf tells the user something the campaign cannot show otherwise.
func (c *Client) warnf(format string, a ...any) {
	w := c.Opt.Progress
	if w == nil {
		return
	}
	fmt.Fprintf(w, "simswarm: "+format+"\n", a...)
}
