// Package embedded runs a whole simswarm on this machine inside one process:
// a JetStream engine, a builder and a runner, each talking to the engine only
// through its own NATS connection, exactly as they would across a cluster.
package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"

	"github.com/simswarm/simswarm/internal/build"
	"github.com/simswarm/simswarm/internal/cpuprof"
	"github.com/simswarm/simswarm/internal/creds"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/gcpace"
	"github.com/simswarm/simswarm/internal/runner"
)

// Options sizes the embedded cluster.
type Options struct {
	StateDir string
	Slots    int
	Host     string
	Log      *slog.Logger
	Accel    build.Accel
	// Listen, when set (host:port, port 0: a free one), has the engine
	// listen there for workers elsewhere (Slurm pilots), who must present
	// Creds.
	Listen string
	Creds  creds.Creds
	// ListsOnly: the in-process runner lists runs but runs none (they run
	// on the workers elsewhere).
	ListsOnly bool
	// NoBuilder: no builder in this process (builds run elsewhere: a Slurm
	// build job).
	NoBuilder bool
}

// Instance is a running embedded simswarm.
type Instance struct {
	Eng    *engine.Engine
	srv    *engine.Embedded
	cancel context.CancelFunc
	wg     sync.WaitGroup
	conns  []*engine.Engine
}

// Start brings up the engine and its workers. In a CPU profile
// (internal/cpuprof), the engine's server and every connection's protocol
// work, both ends, count as part=engine, the builder's and runner's own
// goroutines as theirs; the rest is the client's.
func Start(ctx context.Context, o Options) (in *Instance, err error) {
	cpuprof.Do(ctx, "engine", func(ctx context.Context) { in, err = startAll(ctx, o) })
	return in, err
}

func startAll(ctx context.Context, o Options) (*Instance, error) {
	if o.Slots < 1 {
		o.Slots = runtime.NumCPU()
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	srv, err := start(o)
	if err != nil {
		return nil, err
	}
	in := &Instance{srv: srv}
	fail := func(err error) (*Instance, error) {
		in.Stop()
		return nil, err
	}
	if in.Eng, err = srv.Setup(ctx); err != nil {
		return fail(err)
	}
	in.Eng.Log = o.Log
	in.conns = append(in.conns, in.Eng)
	// Nobody else can hold this engine's jobs (the state dir is locked), so
	// jobs a killed earlier process had taken go out again now instead of
	// after their lease.
	if err := in.Eng.ResetConsumers(ctx); err != nil {
		return fail(err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	// The engine's heap is mostly long-lived indexes: collect tightly once
	// it is large.
	gcpace.SetFloor(25)
	worker := func(name string) (*engine.Engine, error) {
		eng, err := srv.Open(ctx, name)
		if err != nil {
			return nil, err
		}
		eng.Log = o.Log
		in.conns = append(in.conns, eng)
		return eng, nil
	}
	if !o.NoBuilder {
		beng, err := worker("simswarm-builder")
		if err != nil {
			return fail(err)
		}
		b := &build.Builder{Eng: beng, Dir: filepath.Join(o.StateDir, "workspaces"), Host: o.Host, Log: o.Log, Accel: o.Accel}
		in.wg.Add(1)
		cpuprof.Do(wctx, "builder", func(wctx context.Context) {
			go func() { defer in.wg.Done(); _ = b.Serve(wctx) }()
		})
	}
	reng, err := worker("simswarm-runner")
	if err != nil {
		return fail(err)
	}
	r := &runner.Runner{Eng: reng, Dir: filepath.Join(o.StateDir, "runner"), Slots: o.Slots, Host: o.Host,
		Log: o.Log, SharedDisk: true, ID: engine.WorkerID(o.Host, "embedded"), ListsOnly: o.ListsOnly}
	in.wg.Add(1)
	cpuprof.Do(wctx, "runner", func(wctx context.Context) {
		go func() {
			defer in.wg.Done()
			if err := r.Serve(wctx); err != nil && wctx.Err() == nil {
				o.Log.Error("runner stopped", "err", err)
			}
		}()
	})
	return in, nil
}

// start starts the engine, listening where o says.
func start(o Options) (*engine.Embedded, error) {
	dir := filepath.Join(o.StateDir, "engine")
	if o.Listen == "" {
		return engine.StartEmbedded(dir)
	}
	host, p, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("invalid listen address %q: want host:port", o.Listen)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("invalid listen address %q: bad port", o.Listen)
	}
	if port == 0 {
		port = -1 // NATS: a free port (its 0 means 4222)
	}
	return engine.StartServer(engine.ServerOptions{Dir: dir, Name: "simswarm-embedded", Host: host, Port: port,
		User: o.Creds.User, Password: o.Creds.Password})
}

// Port is the port the engine listens on (0: none).
func (in *Instance) Port() int { return in.srv.Port() }

// Stop kills running simulations, stops the workers and shuts the engine
// down cleanly so that its files are consistent.
func (in *Instance) Stop() {
	if in.cancel != nil {
		in.cancel()
	}
	in.wg.Wait()
	for _, c := range in.conns {
		c.Close()
	}
	in.srv.Shutdown()
}

// Open starts the engine of a state directory without workers, to read it.
func Open(ctx context.Context, stateDir string) (*Instance, error) {
	srv, err := engine.StartEmbedded(filepath.Join(stateDir, "engine"))
	if err != nil {
		return nil, err
	}
	in := &Instance{srv: srv}
	if in.Eng, err = srv.Setup(ctx); err != nil {
		in.Stop()
		return nil, err
	}
	in.conns = append(in.conns, in.Eng)
	return in, nil
}
