package tunnel

import (
	"context"
	"errors"
	"fmt"
	"github.com/simswarm/simswarm/internal/retry"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Forward is one local port carried to an address as the manager sees it.
type Forward struct {
	Local  string `json:"local"`  // e.g. 127.0.0.1:4222
	Remote string `json:"remote"` // e.g. 127.0.0.1:4222, dialled by the manager
}

// Ports the cluster publishes on its manager: the engine, the dashboard
// and the Swarm visualizer.
const (
	EnginePort     = 4222
	DashboardPort  = 9181
	VisualizerPort = 8080
)

// DefaultForwards carries the engine, dashboard and visualizer ports of
// remoteHost (as the manager reaches it; "" is 127.0.0.1) to the same
// ports on localhost, so `simswarm run --server nats://localhost:4222` and
// http://localhost:9181 just work.
func DefaultForwards(remoteHost string) []Forward {
	if remoteHost == "" {
		remoteHost = "127.0.0.1"
	}
	var f []Forward
	for _, p := range []int{EnginePort, DashboardPort, VisualizerPort} {
		port := strconv.Itoa(p)
		f = append(f, Forward{Local: net.JoinHostPort("127.0.0.1", port), Remote: net.JoinHostPort(remoteHost, port)})
	}
	return f
}

// Tunnel holds the local listeners and the current SSH connection. The
// listeners stay while the connection is dialled again after a loss, so
// clients see a refused stream, not a vanished port.
type Tunnel struct {
	cfg       Config
	Log       *slog.Logger
	listeners []net.Listener

	mu     sync.Mutex
	client *ssh.Client
	closed bool
	wg     sync.WaitGroup
}

// Listen checks the key and binds every local port, before any network
// traffic, so that the usual mistakes fail fast and name what is wrong.
func Listen(c Config) (*Tunnel, error) {
	if _, err := LoadKey(c.KeyPath); err != nil {
		return nil, err
	}
	if len(c.Forwards) == 0 {
		return nil, errors.New("no ports to forward")
	}
	t := &Tunnel{cfg: c, Log: slog.Default()}
	for _, f := range c.Forwards {
		l, err := net.Listen("tcp", f.Local)
		if err != nil {
			t.closeListeners()
			if errors.Is(err, syscall.EADDRINUSE) {
				_, port, _ := net.SplitHostPort(f.Local)
				return nil, fmt.Errorf("local port %s is already in use (another tunnel, or a simswarm server on this machine?): cannot forward %s", port, f.Local)
			}
			return nil, fmt.Errorf("listening on %s: %w", f.Local, err)
		}
		t.listeners = append(t.listeners, l)
	}
	return t, nil
}

// Open binds the local ports and connects: the tunnel is usable on return.
// Serve must then run for connections to be accepted.
func Open(ctx context.Context, c Config) (*Tunnel, error) {
	t, err := Listen(c)
	if err != nil {
		return nil, err
	}
	if err := t.connect(ctx); err != nil {
		t.closeListeners()
		return nil, err
	}
	return t, nil
}

// Addrs are the bound local addresses, in the order of the forwards.
func (t *Tunnel) Addrs() []net.Addr {
	var a []net.Addr
	for _, l := range t.listeners {
		a = append(a, l.Addr())
	}
	return a
}

func (t *Tunnel) connect(ctx context.Context) error {
	cl, err := Dial(ctx, t.cfg)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		cl.Close()
		return errors.New("tunnel closed")
	}
	t.client = cl
	return nil
}

func (t *Tunnel) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

func (t *Tunnel) current() *ssh.Client {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.client
}

// Serve accepts local connections and carries them over SSH until ctx
// ends or the tunnel is closed. A lost connection is dialled again with
// back-off; a host key mismatch is final and returned.
func (t *Tunnel) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i, l := range t.listeners {
		t.wg.Add(1)
		go t.accept(l, t.cfg.Forwards[i])
	}
	keep := t.cfg.KeepAlive
	if keep <= 0 {
		keep = 30 * time.Second
	}
	for {
		if t.isClosed() {
			t.wg.Wait()
			return nil
		}
		cl := t.current()
		if cl != nil {
			lost := make(chan struct{})
			go func() { _ = cl.Wait(); close(lost) }()
			t.keepAlive(ctx, cl, keep, lost)
			if ctx.Err() != nil || t.isClosed() {
				t.Close()
				t.wg.Wait()
				return nil
			}
			t.Log.Warn("SSH connection to the manager lost; dialling again", "addr", t.cfg.Addr)
			t.mu.Lock()
			t.client = nil
			t.mu.Unlock()
		}
		// Dialled again from a second's wait up to 30 s, until a connection,
		// a host key that is not the pinned one, or the end.
		var hk *HostKeyError
		err := retry.Do(ctx, retry.Policy{First: time.Second, Max: 30 * time.Second}, func(int) error {
			if t.isClosed() {
				return retry.Stop(net.ErrClosed)
			}
			err := t.connect(ctx)
			if errors.As(err, &hk) {
				return retry.Stop(err)
			}
			if err != nil {
				t.Log.Warn("dialling the manager", "err", err)
			}
			return err
		})
		if err == nil {
			t.Log.Info("SSH connection to the manager up", "addr", t.cfg.Addr)
			continue
		}
		t.Close()
		t.wg.Wait()
		if hk != nil {
			return err
		}
		return nil
	}
}

// keepAlive returns when the connection is lost (or ctx ends), having
// closed it: a half-dead TCP connection is otherwise noticed only after
// the kernel's timeouts, many minutes later.
func (t *Tunnel) keepAlive(ctx context.Context, cl *ssh.Client, every time.Duration, lost <-chan struct{}) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-lost:
			return
		case <-tick.C:
			res := make(chan error, 1)
			go func() {
				_, _, err := cl.SendRequest("keepalive@openssh.com", true, nil)
				res <- err
			}()
			select {
			case err := <-res:
				if err != nil {
					cl.Close()
					return
				}
			case <-time.After(every):
				cl.Close()
				return
			case <-ctx.Done():
				return
			}
		}
	}
}

func (t *Tunnel) accept(l net.Listener, f Forward) {
	defer t.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			t.Log.Warn("accepting on a forwarded port", "local", f.Local, "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go t.carry(c, f)
	}
}

// carry copies both ways, passing each side's end of stream on to the
// other (half-close), as protocols that read to EOF need.
func (t *Tunnel) carry(local net.Conn, f Forward) {
	defer local.Close()
	cl := t.current()
	if cl == nil {
		t.Log.Warn("no SSH connection to the manager; refusing a forwarded connection", "local", f.Local)
		return
	}
	remote, err := cl.Dial("tcp", f.Remote)
	if err != nil {
		t.Log.Warn("the manager could not reach a forwarded address", "remote", f.Remote, "err", err)
		return
	}
	defer remote.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			dst.Close()
		}
		done <- struct{}{}
	}
	go pipe(remote, local)
	go pipe(local, remote)
	<-done
	<-done
}

func (t *Tunnel) closeListeners() {
	for _, l := range t.listeners {
		l.Close()
	}
}

// Close stops accepting and drops the SSH connection.
func (t *Tunnel) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	cl := t.client
	t.client = nil
	t.mu.Unlock()
	t.closeListeners()
	if cl != nil {
		cl.Close()
	}
}
