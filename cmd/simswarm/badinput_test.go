package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBadInputs: each mistake is one clear line naming what is wrong, exit
// status 2, and nothing stored is lost: a finished campaign's results and
// cached runs survive every one of them.
func TestBadInputs(t *testing.T) {
	dir := example(t, "aloha")
	state := t.TempDir()
	// A campaign whose results must survive the mistakes below.
	r := runSimswarm(t, dir, state, "run", "-q", "--json", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "0..1")
	if r.code != 0 {
		t.Fatalf("setup campaign: exit %d\n%s", r.code, r.stderr)
	}
	results := filepath.Join(dir, "results")
	before := files(t, results, "*.sca")

	// Broken programs live in a project of their own: adding them to the
	// example would change its snapshot, and so every run key.
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "garbage.sh"), []byte("#!/bin/sh\necho 'hello there'\n"), 0o755)
	os.WriteFile(filepath.Join(other, "empty.sh"), []byte("#!/bin/sh\necho ''\n"), 0o755)
	os.WriteFile(filepath.Join(other, "notexec"), []byte("x"), 0o644)
	readonly := filepath.Join(t.TempDir(), "ro")
	os.WriteFile(readonly, nil, 0o644) // a file where a directory is needed

	cases := []struct {
		name string
		dir  string
		args []string
		want string
	}{
		{"no command", dir, []string{"run"}, "no simulation command"},
		{"missing -C", dir, []string{"run", "-C", filepath.Join(dir, "nope"), "--", "./aloha"}, "no such directory"},
		{"program not found", dir, []string{"run", "--", "./nosuch", "-c", "PureAlohaExperiment"}, "program ./nosuch not found"},
		{"program not in PATH", dir, []string{"run", "--", "nosuch-simulator"}, "nosuch-simulator not found in PATH"},
		{"not executable", other, []string{"run", "--", "./notexec"}, "./notexec is not executable"},
		{"unknown config", dir, []string{"run", "--", "./aloha", "-c", "NoSuchConfig"}, "<!> Error: No such config: NoSuchConfig"},
		{"garbage run list", other, []string{"run", "--", "./garbage.sh"}, `"hello"`},
		{"empty run list", other, []string{"run", "--", "./empty.sh"}, "run list is empty"},
		{"filter selects nothing", dir, []string{"run", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "$numHosts==99"}, "run list is empty"},
		{"results not writable", dir, []string{"run", "--results", filepath.Join(readonly, "sub"), "--", "./aloha"}, "is not writable"},
		{"-j 0", dir, []string{"run", "-j", "0", "--", "./aloha"}, "-j must be at least 1"},
		{"bad timeout", dir, []string{"run", "--timeout", "soon", "--", "./aloha"}, `invalid --timeout "soon"`},
		{"negative batch", dir, []string{"run", "-b", "-1", "--", "./aloha"}, "-b must be 0"},
		{"unknown flag", dir, []string{"run", "--frobnicate", "--", "./aloha"}, "unknown flag: --frobnicate"},
		{"result-dir given", dir, []string{"run", "--", "./aloha", "--result-dir=x"}, "remove --result-dir"},
		{"campaign id a path", dir, []string{"attach", "../../x"}, `invalid campaign "../../x": a campaign id is 16 hex digits`},
		{"campaign id too short", dir, []string{"attach", "5ca1ab1e"}, "16 hex digits"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runSimswarm(t, c.dir, state, c.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "simswarm: ") || !strings.Contains(last, c.want) {
				t.Fatalf("error line %q does not say %q\nstderr: %s", last, c.want, r.stderr)
			}
		})
	}

	t.Run("state dir unwritable", func(t *testing.T) {
		r := runSimswarm(t, dir, filepath.Join(readonly, "state"), "run", "--", "./aloha")
		if r.code != 2 || !strings.Contains(r.stderr, "state dir") {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	})

	t.Run("build fails", func(t *testing.T) {
		broken := example(t, "aloha")
		os.WriteFile(filepath.Join(broken, "src", "rng.c"), []byte("this is not C;\n"), 0o644)
		r := runSimswarm(t, broken, state, "run", "--", "./aloha", "-c", "PureAlohaExperiment")
		if r.code != 2 || !strings.Contains(r.stderr, "simswarm: build failed") || !strings.Contains(r.stderr, "rng.c") {
			t.Fatalf("exit %d, want 2 with the compiler's error tail:\n%s", r.code, r.stderr)
		}
	})

	t.Run("malformed simswarm.toml", func(t *testing.T) {
		proj := example(t, "aloha")
		os.WriteFile(filepath.Join(proj, "simswarm.toml"), []byte("[build]\ncommand = make\n"), 0o644)
		r := runSimswarm(t, proj, state, "run", "--", "./aloha")
		if r.code != 2 || !strings.Contains(r.stderr, "simswarm.toml:2:") {
			t.Fatalf("exit %d, want 2 naming line 2:\n%s", r.code, r.stderr)
		}
		os.WriteFile(filepath.Join(proj, "simswarm.toml"), []byte("[build]\ncomand = \"make\"\n"), 0o644)
		r = runSimswarm(t, proj, state, "run", "--", "./aloha")
		if r.code != 2 || !strings.Contains(r.stderr, "simswarm.toml:2: unknown key \"build.comand\"") {
			t.Fatalf("exit %d, want 2 naming the unknown key:\n%s", r.code, r.stderr)
		}
	})

	t.Run("state dir held by another simswarm", func(t *testing.T) {
		held := t.TempDir()
		cmd := exec.Command(binary, "run", "-q", "--timeout", "30s", "--", "./aloha", "-c", "Sleepy", "--sleep=20")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "SIMSWARM_STATE="+held)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		// Wait until the first process holds the lock.
		deadline := time.Now().Add(30 * time.Second)
		for {
			b, _ := os.ReadFile(filepath.Join(held, "engine", "lock"))
			if len(b) > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		r := runSimswarm(t, dir, held, "run", "--", "./aloha", "-c", "PureAlohaExperiment")
		if r.code != 2 || !strings.Contains(r.stderr, "in use by another simswarm process (pid") {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	})

	// Nothing stored was lost: the first campaign is still done and cached.
	after := files(t, results, "*.sca")
	if len(after) < len(before) {
		t.Fatalf("results lost: %d before, %d after", len(before), len(after))
	}
	r = runSimswarm(t, dir, state, "run", "-q", "--json", "--", "./aloha", "-c", "PureAlohaExperiment", "-r", "0..1")
	if s := jsonSummary(t, r); r.code != 0 || s.Cached != 2 || s.Executed != 0 {
		t.Fatalf("the earlier campaign is no longer cached: exit %d %+v", r.code, s)
	}
}

// TestHugeOutput: a run printing 1 GiB to stdout does not grow simswarm's
// memory: only a bounded tail is kept, the output itself streams to disk.
func TestHugeOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1 GiB")
	}
	dir := example(t, "aloha")
	state := t.TempDir()
	r := runSimswarm(t, dir, state, "run", "-q", "--json", "--", "./aloha", "-c", "Chatty")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	outs := files(t, filepath.Join(dir, "results"), "Chatty-*.out")
	if len(outs) != 1 {
		t.Fatalf("want the run's .out file, got %v", outs)
	}
	fi, _ := os.Stat(outs[0])
	if fi.Size() < 1<<30 {
		t.Fatalf(".out holds %d bytes, want the whole 1 GiB", fi.Size())
	}
	// Maxrss is in KiB on Linux.
	if rss := r.rusage.Maxrss; rss > 200<<10 {
		t.Fatalf("simswarm peaked at %d MiB for a 1 GiB output; want it bounded (< 200 MiB)", rss>>10)
	}
	t.Logf("peak RSS %d MiB for 1 GiB of output", r.rusage.Maxrss>>10)
}
