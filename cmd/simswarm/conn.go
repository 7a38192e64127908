package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/simswarm/simswarm/internal/creds"
	"github.com/simswarm/simswarm/internal/embedded"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/proc"
	"github.com/spf13/pflag"
)

// connFlags are how a client or worker reaches a cluster engine.
type connFlags struct {
	server, creds, ca string
}

func (c *connFlags) add(f *pflag.FlagSet) {
	f.StringVar(&c.server, "server", "", "engine URL, e.g. nats://manager:4222 (env SIMSWARM_SERVER); none: embedded engine")
	f.StringVar(&c.creds, "creds", "", "credentials `FILE` written by simswarm server (env SIMSWARM_CREDS)")
	f.StringVar(&c.ca, "tls-ca", "", "CA certificate (PEM) for a tls:// server")
}

func (c *connFlags) resolve() {
	if c.server == "" {
		c.server = os.Getenv("SIMSWARM_SERVER")
	}
	if c.creds == "" {
		c.creds = os.Getenv("SIMSWARM_CREDS")
	}
}

// required resolves the flags of a command that needs a cluster engine.
func (c *connFlags) required() error {
	c.resolve()
	if c.server == "" {
		return usageErr("--server is required (or SIMSWARM_SERVER)")
	}
	return nil
}

// beginWorker is how every worker process begins, once its flags are
// checked: its logger, the processes a killed predecessor of it left
// running ended, and a context that ends on SIGINT or SIGTERM.
func beginWorker(verbose bool) (*slog.Logger, context.Context, context.CancelFunc) {
	log := logger(verbose)
	proc.Setup(log)
	ctx, stop := untilSignal()
	return log, ctx, stop
}

// connect opens the cluster engine. wait keeps trying while the server is
// down (workers); a client wants a clear error at once instead.
func (c *connFlags) connect(ctx context.Context, name string, wait bool, log *slog.Logger) (*engine.Engine, error) {
	o := engine.DialOptions{URL: c.server, CA: c.ca, Name: name, Wait: wait}
	if c.creds != "" {
		cr, err := creds.Load(c.creds)
		if err != nil {
			return nil, &exitError{code: 2, err: err}
		}
		o.Creds = &cr
	}
	if err := engine.CheckURL(c.server); err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	eng, err := engine.Connect(ctx, o, log)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return eng, nil
}

// untilSignal returns a context that ends on SIGINT or SIGTERM.
func untilSignal() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func logger(verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// openEngine opens the cluster engine when a server is given, else the
// embedded engine of the state directory (without workers), to read it.
func openEngine(ctx context.Context, conn *connFlags, state, name string) (*engine.Engine, func(), error) {
	conn.resolve()
	if conn.server != "" {
		e, err := conn.connect(ctx, name, false, logger(false))
		if err != nil {
			return nil, nil, err
		}
		return e, e.Close, nil
	}
	inst, err := openState(ctx, state)
	if err != nil {
		return nil, nil, err
	}
	return inst.Eng, inst.Stop, nil
}

// openState opens the embedded engine of an existing state directory
// (default when state is ""), for the commands that read one: a misspelled
// --state must not become a fresh, empty engine that shows nothing.
func openState(ctx context.Context, state string) (*embedded.Instance, error) {
	if state == "" {
		state = defaultState()
	}
	if fi, err := os.Stat(filepath.Join(state, "engine")); err != nil || !fi.IsDir() {
		if _, err := os.Stat(state); err != nil {
			return nil, usageErr("state directory %s does not exist (--state or SIMSWARM_STATE)", state)
		}
		return nil, usageErr("state directory %s holds no simswarm engine: nothing has run with it", state)
	}
	inst, err := embedded.Open(ctx, state)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return inst, nil
}

// stateValue is a --state flag: an empty value is a mistake (a variable
// that expanded to nothing), not a request for the default directory.
type stateValue struct{ p *string }

func (v stateValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v stateValue) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("empty: name a directory, or leave --state out for the default")
	}
	*v.p = s
	return nil
}

func (v stateValue) Type() string { return "dir" }

// addStateFlag defines --state on f.
func addStateFlag(f *pflag.FlagSet, p *string, usage string) {
	f.Var(stateValue{p}, "state", usage)
}
