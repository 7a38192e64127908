package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestProjectReferenceBadInputs: a referenced project that does not exist,
// a cycle of uses, a project outside every allowed root, the file system
// root and the home directory: each one clear line, exit 2, and the
// campaign that ran before is still whole afterwards.
func TestProjectReferenceBadInputs(t *testing.T) {
	ws := t.TempDir()
	dir := filepath.Join(ws, "aloha")
	if err := os.Rename(example(t, "aloha"), dir); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	args := []string{"run", "-q", "--json", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "0..1"}
	if r := runSimswarm(t, dir, state, args...); r.code != 0 {
		t.Fatalf("setup campaign: exit %d\n%s", r.code, r.stderr)
	}
	home, _ := os.UserHomeDir()
	os.MkdirAll(filepath.Join(ws, "a"), 0o755)
	os.WriteFile(filepath.Join(ws, "a", "simswarm.toml"), []byte("[project]\nuses = [\"../aloha\"]\n"), 0o644)
	outside := t.TempDir()
	for _, c := range []struct {
		name, file, content, want string
	}{
		{"missing project", ".project", "<projectDescription><name>aloha</name><projects><project>inet4.5</project></projects></projectDescription>",
			`referenced project "inet4.5" does not exist (aloha/.project)`},
		{"cycle", "simswarm.toml", "[project]\nuses = [\"../a\"]\n", "projects use each other in a cycle: " + dir + " -> " + filepath.Join(ws, "a") + " -> " + dir},
		{"outside the roots", "simswarm.toml", "[project]\nuses = [\"" + outside + "\"]\n", outside + " (aloha/simswarm.toml uses " + outside + ") is outside every allowed root"},
		{"file system root", "simswarm.toml", "[project]\nuses = [\"/\"]\n", "refusing to snapshot / (aloha/simswarm.toml uses /): it is the file system root"},
		{"home directory", "simswarm.toml", "[project]\nuses = [\"" + home + "\"]\n", "refusing to snapshot " + home},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.file)
			os.WriteFile(p, []byte(c.content), 0o644)
			defer os.Remove(p)
			r := runSimswarm(t, dir, state, args...)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if r.code != 2 || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Fatalf("exit %d, want 2 and one line with %q:\n%s", r.code, c.want, r.stderr)
			}
		})
	}
	r := runSimswarm(t, dir, state, args...)
	if s := jsonSummary(t, r); r.code != 0 || s.Cached != 2 || s.Executed != 0 {
		t.Fatalf("the first campaign is not intact: exit %d %+v\n%s", r.code, s, r.stderr)
	}
}

// TestMissingLibrary: a program whose shared library the runner's
// environment lacks fails with that said, naming the library, not with
// "program failed".
func TestMissingLibrary(t *testing.T) {
	ext := t.TempDir() // a system library: outside every project
	ws := t.TempDir()
	lib := filepath.Join(ext, "libsimext.so")
	os.WriteFile(filepath.Join(ext, "ext.c"), []byte("int ext_runs(void) { return 2; }\n"), 0o644)
	if out, err := exec.Command("cc", "-shared", "-fPIC", "-Wl,-soname,libsimext.so", "-o", lib, filepath.Join(ext, "ext.c")).CombinedOutput(); err != nil {
		t.Fatalf("build the library: %v\n%s", err, out)
	}
	// A program with OMNeT++'s command line, linked by the library's full
	// path, so that no -L makes its directory a project simswarm ships.
	os.WriteFile(filepath.Join(ws, "prog.c"), []byte(`#include <stdio.h>
#include <string.h>
int ext_runs(void);
int main(int argc, char **argv) {
	for (int i = 1; i < argc; i++) if (!strcmp(argv[i], "-q")) {
		if (!strcmp(argv[i+1], "runnumbers")) for (int r = 0; r < ext_runs(); r++) printf(" %d", r);
		printf("\n");
		return 0;
	}
	return 0;
}
`), 0o644)
	os.WriteFile(filepath.Join(ws, "Makefile"), []byte("prog: prog.c\n\tcc -o prog prog.c "+lib+" -Wl,-rpath,"+ext+"\n"), 0o644)
	state := t.TempDir()
	if r := runSimswarm(t, ws, state, "run", "-q", "--", "./prog"); r.code != 0 {
		t.Fatalf("with the library: exit %d\n%s", r.code, r.stderr)
	}
	os.Remove(lib)
	r := runSimswarm(t, ws, state, "run", "-q", "--", "./prog", "-c", "Other")
	want := "the runner's environment lacks the shared library libsimext.so"
	if r.code != 2 || !strings.Contains(r.stderr, want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("exit %d, want 2 and one line saying %q:\n%s", r.code, want, r.stderr)
	}
}
