package main

// The multi-host tests run real simswarm processes on the nodes of a
// network lab (internal/testkit/netlab); the test process stays in the root
// namespace, on the bridge, as a client.

import (
	"os"
	"strings"
	"testing"

	netlab_ "github.com/simswarm/simswarm/internal/testkit/netlab"
)

type netlab struct{ *netlab_.Lab }

type node = netlab_.Proc

// newNetlab makes one namespace per name, addressed .1, .2, ... in order.
// It skips the test where namespaces cannot be made (not root, no
// iproute2); CI runs as root with iproute2 installed.
func newNetlab(t *testing.T, names ...string) *netlab {
	t.Helper()
	l := &netlab{netlab_.New(t, nil)}
	l.Env = cleanEnv()
	l.Add(names...)
	return l
}

// addr is a node's address.
func (l *netlab) addr(name string) string { return l.Addr(name) }

// start runs simswarm with args on a node.
func (l *netlab) start(name string, args ...string) *node {
	return l.startEnv(name, nil, args...)
}

// startEnv runs simswarm with args and extra environment variables.
func (l *netlab) startEnv(name string, env []string, args ...string) *node {
	return l.Start(name, env, append([]string{binary}, args...)...)
}

// cleanEnv keeps simswarm's own variables of the test environment from
// leaking into the processes under test.
func cleanEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SIMSWARM_") {
			env = append(env, e)
		}
	}
	return env
}
