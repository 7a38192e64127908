package fingerprint

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestFindProgram(t *testing.T) {
	root := t.TempDir()
	write := func(rel, data string, mode os.FileMode) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("aloha/Makefile", "#\n# OMNeT++/OMNEST Makefile for aloha\n#\n# This file was generated with the command:\n#  opp_makemake -f --deep\n#\n\n# Name of target to be created (-o option)\nTARGET_DIR = .\nTARGET_NAME = aloha$(D)\n", 0o644)
	write("queueinglib/Makefile", "# This file was generated with the command:\n#  opp_makemake -f --make-so -pQUEUEING -I.\nTARGET_DIR = .\nTARGET_NAME = queueinglib$(D)\n", 0o644)
	write("queuenet/queuenet", "#!/bin/sh\nopp_run -l $(dirname $0)/../queueinglib/queueinglib $*\n", 0o755)
	write("handmade/Makefile", "all:\n\tcc -o x x.c\n", 0o644)
	// Hand-written Makefiles building the directory's program before it
	// exists: simswarm's bundled aloha (PROGRAM := aloha) and a plain rule.
	bundled, err := os.ReadFile(filepath.Join("..", "..", "examples", "aloha", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	write("examples/aloha/Makefile", string(bundled), 0o644)
	write("plain/Makefile", "plain: plain.c\n\tcc -o $@ $<\n", 0o644)
	for wd, want := range map[string][]string{"aloha": {"./aloha"}, "queuenet": {"./queuenet"}, "examples/aloha": {"./aloha"}, "plain": {"./plain"}} {
		got, err := FindProgram(root, wd)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %q, %v", wd, got, err)
		}
	}
	for _, wd := range []string{"queueinglib", "handmade", "missing"} {
		if _, err := FindProgram(root, wd); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: want a one-line error, got %v", wd, err)
		}
	}
	// INET's layout: the launcher at the root serves every example.
	write("bin/inet", "#!/bin/sh\n", 0o755)
	write("examples/ethernet/lans/omnetpp.ini", "", 0o644)
	got, err := FindProgram(root, "examples/ethernet/lans")
	if err != nil || !reflect.DeepEqual(got, []string{"../../../bin/inet"}) {
		t.Errorf("INET layout: %q, %v", got, err)
	}
}
