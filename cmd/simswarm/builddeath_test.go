package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestBuilderDiesOnEveryDelivery: a build whose builder dies each time it
// takes the job (an infrastructure fault: the builder process is killed,
// not a build command that fails) ends, after the engine's last delivery,
// with a failed build the client reports, instead of a client waiting for
// ever. The builder is started again after each death, as a supervisor
// (systemd, a Swarm service) would.
func TestBuilderDiesOnEveryDelivery(t *testing.T) {
	state := t.TempDir()
	addr := freeAddr(t)
	url := "nats://" + addr
	credsFile := filepath.Join(state, "client.creds")
	work := t.TempDir()
	srv := exec.Command(binary, "server", "--listen", addr, "--state", state, "--lease", "1s")
	srv.Env = cleanEnv()
	srvLog := filepath.Join(work, "server.log")
	lf, _ := os.Create(srvLog)
	srv.Stdout, srv.Stderr = lf, lf
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-srv.Process.Pid, syscall.SIGKILL); _ = srv.Wait(); lf.Close() })
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(readFileOr(srvLog), "listening") {
		if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", readFileOr(srvLog))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The supervisor: a builder again as soon as one ends, up to a bound.
	var deaths atomic.Int32
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 20 && ctx.Err() == nil; i++ {
			b := exec.CommandContext(ctx, binary, "builder", "--server", url, "--creds", credsFile,
				"--dir", filepath.Join(work, "ws"), "--ccache-dir", "off")
			b.Env = cleanEnv()
			_ = b.Run()
			if ctx.Err() == nil {
				deaths.Add(1)
			}
		}
	}()
	t.Cleanup(func() { stop(); <-done })

	dir := t.TempDir()
	// The build command kills its builder (its parent process).
	write(t, filepath.Join(dir, "simswarm.toml"), "[build]\ncommand = \"kill -9 $PPID; sleep 30\"\n\n[run]\ncommand = \"echo r{run} > {resultdir}/r-{run}.txt\"\nrepeat = 2\n")
	began := time.Now()
	r := runSimswarm(t, dir, t.TempDir(), "run", "--server", url, "--creds", credsFile, "-q")
	if r.code != 2 || !strings.Contains(r.stderr, "build failed: gave up after 10 deliveries") {
		t.Fatalf("exit %d after %s, %d builder deaths; want exit 2 and the build given up\n%s%s",
			r.code, time.Since(began).Round(time.Second), deaths.Load(), r.stdout, r.stderr)
	}
	if n := deaths.Load(); n != 10 {
		t.Errorf("%d builders died; want 10 (one per delivery before the last)", n)
	}
}
