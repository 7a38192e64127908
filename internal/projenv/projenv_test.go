package projenv

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/simswarm/simswarm"
)

// TestCaptureINETSetenv: what INET's `source setenv` exports, seen from an
// example directory of INET, comes out pointing into the tree; the rest of
// the user's environment stays home.
func TestCaptureINETSetenv(t *testing.T) {
	env := []string{
		"PATH=/home/u/inet/bin:/opt/omnetpp-6.1/bin:/usr/bin",
		"PYTHONPATH=/home/u/inet/python:/opt/omnetpp-6.1/python",
		"INET_ROOT=/home/u/inet",
		"INET_OMNETPP_OPTIONS=--image-path=/home/u/inet/images",
		"INET_GDB_OPTIONS=-quiet -ex run --args",
		"OMNETPP_ROOT=/opt/omnetpp-6.1",
		"PWD=/home/u/inet/examples/inet/nclients",
		"SIMSWARM_STATE=/home/u/inet/.state",
		"OTHER=/home/u/inet2/x", // another directory that starts alike
	}
	got := Capture(env, map[string]string{"/home/u/inet": "."})
	want := []simswarm.EnvVar{
		{Name: "INET_OMNETPP_OPTIONS", Value: "--image-path={tree}/images"},
		{Name: "INET_ROOT", Value: "{tree}"},
		{Name: "PATH", Value: "{tree}/bin", Prepend: true},
		{Name: "PYTHONPATH", Value: "{tree}/python", Prepend: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Capture:\n got %+v\nwant %+v", got, want)
	}
}

// TestCaptureLayout: a project among others (Simu5G beside INET) maps each
// root to its own place in the tree.
func TestCaptureLayout(t *testing.T) {
	env := []string{"INET_ROOT=/w/inet4.5", "SIMU5G_ROOT=/w/simu5g/", "PATH=/w/simu5g/bin:/w/inet4.5/bin:/usr/bin"}
	got := Capture(env, map[string]string{"/w/simu5g": "simu5g", "/w/inet4.5": "inet4.5"})
	want := []simswarm.EnvVar{
		{Name: "INET_ROOT", Value: "{tree}/inet4.5"},
		{Name: "PATH", Value: "{tree}/simu5g/bin:{tree}/inet4.5/bin", Prepend: true},
		{Name: "SIMU5G_ROOT", Value: "{tree}/simu5g/"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Capture:\n got %+v\nwant %+v", got, want)
	}
	if got := Capture(env, map[string]string{"/elsewhere": "."}); got != nil {
		t.Fatalf("nothing points into /elsewhere, got %+v", got)
	}
}

// TestEnvironAndLookPath: on a worker the captured variables point into
// its tree, a search path is put in front of the worker's own, and a bare
// program name is found in the tree first.
func TestEnvironAndLookPath(t *testing.T) {
	tree := t.TempDir()
	if err := os.MkdirAll(filepath.Join(tree, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	launcher := filepath.Join(tree, "bin", "inet")
	if err := os.WriteFile(launcher, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	base := []string{"PATH=/usr/bin:/bin", "INET_ROOT=/home/u/inet", "LANG=C"}
	vars := []simswarm.EnvVar{
		{Name: "INET_ROOT", Value: "{tree}"},
		{Name: "PATH", Value: "{tree}/bin", Prepend: true},
		{Name: "LD_LIBRARY_PATH", Value: "{tree}/src", Prepend: true},
	}
	env := Environ(base, vars, tree)
	for _, want := range []string{"INET_ROOT=" + tree, "PATH=" + tree + "/bin:/usr/bin:/bin", "LANG=C", "LD_LIBRARY_PATH=" + tree + "/src"} {
		if !slices.Contains(env, want) {
			t.Errorf("environment lacks %q: %q", want, env)
		}
	}
	if base[1] != "INET_ROOT=/home/u/inet" {
		t.Errorf("Environ changed its base: %q", base)
	}
	if got := LookPath("inet", env); got != launcher {
		t.Errorf("LookPath(inet) = %q, want the tree's %q", got, launcher)
	}
	if got := LookPath("inet", base); got != "inet" {
		t.Errorf("LookPath(inet) without the tree = %q, want it unchanged", got)
	}
	if got := LookPath("./aloha", env); got != "./aloha" {
		t.Errorf("a path with a slash must stay as it is, got %q", got)
	}
}
