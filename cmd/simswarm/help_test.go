package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestFlagHelpPlaceholders: cobra takes a backquoted word in a flag's help
// as the placeholder of its value, so `simswarm server` in a sentence
// showed as "--creds simswarm server". Every placeholder of every command
// is one capitalised word such as FILE or N.
func TestFlagHelpPlaceholders(t *testing.T) {
	placeholder := regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		check := func(f *pflag.Flag) {
			if !strings.Contains(f.Usage, "`") {
				return
			}
			name, _ := pflag.UnquoteUsage(f)
			if !placeholder.MatchString(name) {
				t.Errorf("%s --%s: placeholder %q taken from the help %q", c.CommandPath(), f.Name, name, f.Usage)
			}
		}
		c.LocalFlags().VisitAll(check)
		c.PersistentFlags().VisitAll(check)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(rootCommand())
}

// TestReadmeRunFlags: every flag of simswarm run (but those of the
// connection and the compiler cache, documented with the cluster) is in the
// README's table.
func TestReadmeRunFlags(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	elsewhere := map[string]bool{"server": true, "creds": true, "tls-ca": true, "help": true, "distcc-hosts": true, "distcc-dns": true,
		"distcc-per-host": true, "ccache-dir": true, "ccache-size": true}
	var run *cobra.Command
	for _, c := range rootCommand().Commands() {
		if c.Name() == "run" {
			run = c
		}
	}
	run.Flags().VisitAll(func(f *pflag.Flag) {
		if elsewhere[f.Name] {
			return
		}
		if !strings.Contains(readme, "`--"+f.Name) && (f.Shorthand == "" || !strings.Contains(readme, "`-"+f.Shorthand)) {
			t.Errorf("simswarm run --%s is not in the README's flag table", f.Name)
		}
	})
}
