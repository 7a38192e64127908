package project

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadConfig: any simswarm.toml is refused with one line naming the
// file, or read (never a panic).
func FuzzLoadConfig(f *testing.F) {
	for _, s := range []string{"[build]\ncommand = \"make\"\n", "[build]\ncommand = make\n", "[build]\ncomand = \"make\"\n",
		"[run]\ncommand = \"./p {run} {resultdir}\"\nrepeat = 3\n[run.vars]\na = [1, 2]\nb = [\"x\"]\n",
		"[run.vars]\na.b = [1]\n", "[run]\nvars = 3\n", "[results]\nfiles = [\"*.csv\"]\n", "uses = [\"../lib\"]\n"} {
		f.Add(s)
	}
	dir := f.TempDir()
	path := filepath.Join(dir, "simswarm.toml")
	f.Fuzz(func(t *testing.T, body string) {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(path)
		if err != nil && (!strings.HasPrefix(err.Error(), path) || strings.Count(err.Error(), "\n") > strings.Count(body, "\n")) {
			t.Fatalf("error %q does not name the file", err)
		}
	})
}
