package campaign

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/project"
)

// BuildError is a failed build; Tail is the end of the compiler's output.
type BuildError struct {
	Msg  string
	Tail string
}

func (e *BuildError) Error() string { return e.Msg }

// build has a builder build the snapshot and returns the artifact key. The
// builder answers from its cache in milliseconds when nothing changed.
func (c *Client) build(ctx context.Context, proj *project.Project, snap string) (string, error) {
	recipe := proj.Recipe()
	key := simswarm.BuildKey(snap, recipe)
	req := nonce()
	w, err := c.Eng.Builds.Watch(ctx, key, updatesOnly())
	if err != nil {
		return "", fmt.Errorf("watch build: %w", err)
	}
	defer w.Stop()
	announced := false
	start := time.Now()
	sub, err := c.Eng.NC.Subscribe(engine.SubjectBuildLog+"."+req, func(m *nats.Msg) {
		if !announced && !c.Opt.Quiet {
			announced = true
			fmt.Fprintf(c.Opt.Progress, "simswarm: building %s (%s)\n", proj.Root, recipe.Command)
		}
	})
	if err == nil {
		defer sub.Unsubscribe()
	}
	job := simswarm.BuildJob{Version: simswarm.Version, Key: key, Request: req, Project: proj.Name(),
		Snapshot: snap, Recipe: recipe, Rebuild: c.Opt.Rebuild}
	if err := c.Eng.Publish(ctx, engine.SubjectBuild, job, ""); err != nil {
		return "", err
	}
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-c.Opt.Interrupt:
			return "", ErrInterrupted
		case e := <-w.Updates():
			if e == nil {
				continue
			}
			var rec simswarm.BuildRecord
			if err := decode(e.Value(), &rec); err != nil {
				return "", err
			}
			if rec.Request != req {
				continue
			}
			if rec.State == simswarm.BuildFailed {
				return "", &SetupError{Err: &BuildError{Msg: "build failed: " + rec.Error, Tail: rec.Tail}}
			}
			if !rec.Cached && !c.Opt.Quiet && recipe.Command != "" {
				fmt.Fprintf(c.Opt.Progress, "simswarm: built in %s (%d files in the artifact)\n",
					time.Since(start).Round(10*time.Millisecond), rec.Files)
			}
			return rec.Artifact, nil
		}
	}
}

func updatesOnly() jetstream.WatchOpt { return jetstream.UpdatesOnly() }

func decode(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode engine record: %w", err)
	}
	return nil
}
