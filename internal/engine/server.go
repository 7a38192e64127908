package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/sys/unix"
)

// Embedded is a JetStream server running inside this process, holding an
// exclusive lock on its state directory.
type Embedded struct {
	srv  *server.Server
	lock *os.File
	Dir  string
}

// ErrStateBusy means another simswarm process holds the state directory.
var ErrStateBusy = errors.New("state dir is in use by another simswarm process")

// StartEmbedded starts JetStream on 127.0.0.1 on a free port with its files
// under dir. The lock makes two embedded engines on one directory impossible:
// JetStream's file store does not survive two writers.
func StartEmbedded(dir string) (*Embedded, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("state dir %s: %w", dir, unwrapPath(err))
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName:             "simswarm-embedded",
		Host:                   "127.0.0.1",
		Port:                   server.RANDOM_PORT,
		JetStream:              true,
		StoreDir:               filepath.Join(dir, "jetstream"),
		NoSigs:                 true,
		NoLog:                  true,
		DisableJetStreamBanner: true,
		MaxPayload:             8 << 20,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("embedded engine: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(20 * time.Second) {
		srv.Shutdown()
		lock.Close()
		return nil, fmt.Errorf("embedded engine in %s did not start within 20s", dir)
	}
	return &Embedded{srv: srv, lock: lock, Dir: dir}, nil
}

// URL is where other processes on this machine can reach the engine.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Connect opens an in-process connection: the NATS protocol without a socket.
func (e *Embedded) Connect(name string) (*nats.Conn, error) {
	return nats.Connect("", nats.InProcessServer(e.srv), nats.Name(name), nats.MaxReconnects(-1))
}

// Setup connects and creates the engine's streams and buckets.
func (e *Embedded) Setup(ctx context.Context) (*Engine, error) {
	nc, err := e.Connect("simswarm-setup")
	if err != nil {
		return nil, err
	}
	eng, err := Setup(ctx, nc, 1)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return eng, nil
}

// Shutdown stops the server (JetStream flushes its files) and frees the lock.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	e.lock.Close()
}

func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("state dir %s: %w", dir, unwrapPath(err))
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		pid := strings.TrimSpace(string(b))
		if pid != "" {
			return nil, fmt.Errorf("%w (pid %s): %s", ErrStateBusy, pid, dir)
		}
		return nil, fmt.Errorf("%w: %s", ErrStateBusy, dir)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// unwrapPath drops the path from a PathError: callers name the directory
// themselves, and saying it twice makes a long line.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
