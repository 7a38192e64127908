// Package cpuprof writes a CPU profile of a simswarm process when
// $SIMSWARM_CPUPROFILE names a file, with each sample labelled by the part
// of simswarm that spent it (part=engine, builder, runner; none: the
// client), so that a benchmark can tell where a campaign's CPU goes beyond
// the simulations (bench/cpu.sh). Off, it costs nothing.
package cpuprof

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
)

// Env names the variable that turns profiling on.
const Env = "SIMSWARM_CPUPROFILE"

// Start starts profiling when Env is set and returns what stops it and
// writes the file (call it before the process exits).
func Start() (stop func(), err error) {
	path := os.Getenv(Env)
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Env, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", Env, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// Do runs fn with ctx labelled as part; goroutines fn starts inherit the
// label (a NATS server's, a connection's readers).
func Do(ctx context.Context, part string, fn func(context.Context)) {
	pprof.Do(ctx, pprof.Labels("part", part), fn)
}
