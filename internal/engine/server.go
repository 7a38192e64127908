package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/simswarm/simswarm/internal/fserr"
	"github.com/simswarm/simswarm/internal/retry"
	"golang.org/x/sys/unix"
)

// Embedded is a JetStream server running inside this process, holding an
// exclusive lock on its state directory.
type Embedded struct {
	srv        *server.Server
	lock       *os.File
	Dir        string
	user, pass string
	tls        bool
}

// ErrStateBusy means another simswarm process holds the state directory.
var ErrStateBusy = errors.New("state dir is in use by another simswarm process")

// StartEmbedded starts JetStream with its files under dir, for this
// process's exclusive use. It listens on no socket: a port without
// credentials would let any local user have runners execute commands.
func StartEmbedded(dir string) (*Embedded, error) {
	return StartServer(ServerOptions{Dir: dir, Name: "simswarm-embedded", NoListen: true})
}

// ServerOptions configures an engine server.
type ServerOptions struct {
	Dir  string
	Host string
	Port int
	Name string
	// User and Password, when set, are required of every client.
	User, Password  string
	TLSCert, TLSKey string
	// ClusterHost/ClusterPort listen for routes from the other servers of a
	// JetStream cluster named ClusterName; Routes are their route URLs.
	ClusterName string
	ClusterHost string
	ClusterPort int
	Routes      []string
	// SyncInterval is how often JetStream fsyncs (0: its default, 2 min);
	// SyncAlways fsyncs every write.
	SyncInterval time.Duration
	SyncAlways   bool
	// NoListen serves in-process connections only.
	NoListen bool
	// Log lets the NATS server log to stderr.
	Log bool
	// MonitorHost/MonitorPort serve NATS's HTTP monitoring (/varz, /jsz).
	MonitorHost string
	MonitorPort int
}

// StartServer starts an engine server. The lock on its state directory makes
// two servers on one directory impossible: JetStream's file store does not
// survive two writers.
func StartServer(o ServerOptions) (*Embedded, error) {
	dir := o.Dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("state dir %s: %w", dir, fserr.WithoutPath(err))
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName:             o.Name,
		Host:                   o.Host,
		Port:                   o.Port,
		JetStream:              true,
		StoreDir:               filepath.Join(dir, "jetstream"),
		NoSigs:                 true,
		NoLog:                  !o.Log,
		DisableJetStreamBanner: true,
		MaxPayload:             8 << 20,
		DontListen:             o.NoListen,
		HTTPHost:               o.MonitorHost,
		HTTPPort:               o.MonitorPort,
		Username:               o.User,
		Password:               o.Password,
		SyncInterval:           o.SyncInterval,
		SyncAlways:             o.SyncAlways,
	}
	if o.TLSCert != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: o.TLSCert, KeyFile: o.TLSKey})
		if err != nil {
			lock.Close()
			return nil, fmt.Errorf("TLS: %w", err)
		}
		opts.TLSConfig, opts.TLS, opts.TLSCert, opts.TLSKey = tc, true, o.TLSCert, o.TLSKey
	}
	if o.ClusterPort != 0 {
		opts.Cluster = server.ClusterOpts{Name: o.ClusterName, Host: o.ClusterHost, Port: o.ClusterPort,
			Username: o.User, Password: o.Password}
		for _, r := range o.Routes {
			u, err := url.Parse(r)
			if err != nil || u.Host == "" {
				lock.Close()
				return nil, fmt.Errorf("malformed route %q: want nats://host:port", r)
			}
			if o.User != "" && u.User == nil {
				u.User = url.UserPassword(o.User, o.Password)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	// nats-server finds a busy port only after start, and then never
	// becomes ready: say so at once instead of after the 20 s wait below.
	if err := checkListen(o); err != nil {
		lock.Close()
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("engine server: %w", err)
	}
	if o.Log {
		srv.ConfigureLogger()
	}
	go srv.Start()
	if !srv.ReadyForConnections(20 * time.Second) {
		srv.Shutdown()
		lock.Close()
		return nil, fmt.Errorf("engine in %s did not start within 20s (is %s:%d free?)", dir, o.Host, o.Port)
	}
	return &Embedded{srv: srv, lock: lock, Dir: dir, user: o.User, pass: o.Password, tls: o.TLSCert != ""}, nil
}

// Port is the client port the server listens on (0: none).
func (e *Embedded) Port() int {
	if a, ok := e.srv.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// URL is where other processes on this machine can reach the engine.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Connect opens a connection to the server from this process: in-process
// (the NATS protocol without a socket) when the server listens on none, else
// over loopback, because JetStream API requests of an in-process connection
// go unanswered in a cluster.
func (e *Embedded) Connect(name string) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1), quietErrors}
	if e.user != "" {
		opts = append(opts, nats.UserInfo(e.user, e.pass))
	}
	addr, ok := e.srv.Addr().(*net.TCPAddr)
	if !ok {
		return nats.Connect("", append(opts, nats.InProcessServer(e.srv))...)
	}
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "nats"
	if e.tls {
		scheme = "tls"
		opts = append(opts, nats.Secure(&tls.Config{InsecureSkipVerify: true})) // our own server, over loopback
	}
	return nats.Connect(fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(host, strconv.Itoa(addr.Port))), opts...)
}

// Open connects from this process and binds the engine a Setup created;
// each worker of an embedded engine has its own connection, as it would
// across a cluster.
func (e *Embedded) Open(ctx context.Context, name string) (*Engine, error) {
	nc, err := e.Connect(name)
	if err != nil {
		return nil, err
	}
	eng, err := Open(ctx, nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return eng, nil
}

// Setup connects and creates the engine's streams and buckets.
func (e *Embedded) Setup(ctx context.Context) (*Engine, error) {
	nc, err := e.Connect("simswarm-setup")
	if err != nil {
		return nil, err
	}
	eng, err := Setup(ctx, nc, 1, 0)
	if err != nil {
		if cerr := e.corruptConsumer(ctx, nc); cerr != nil {
			err = cerr
		}
		nc.Close()
		return nil, err
	}
	return eng, nil
}

// SetupCluster creates the engine on a server that is part of a JetStream
// cluster, with every stream replicated on `replicas` servers. It waits
// for the cluster to elect a leader, which takes a few seconds after start.
func (e *Embedded) SetupCluster(ctx context.Context, replicas int, lease time.Duration) (*Engine, error) {
	nc, err := e.Connect("simswarm-setup")
	if err != nil {
		return nil, err
	}
	var eng *Engine
	err = retry.Do(ctx, retry.Policy{First: time.Second, Max: time.Second, For: 90 * time.Second}, func(int) error {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		var err error
		if eng, err = Setup(sctx, nc, replicas, lease); err != nil {
			if cerr := e.corruptConsumer(ctx, nc); cerr != nil {
				return retry.Stop(cerr)
			}
			slog.Debug("engine setup waits for the cluster", "err", err)
		}
		return err
	})
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
		return nil, fmt.Errorf("state dir %s: %w", dir, fserr.WithoutPath(err))
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

// checkListen fails at once when an address the server is to listen on is
// taken.
func checkListen(o ServerOptions) error {
	if o.NoListen {
		return nil
	}
	for _, a := range []struct {
		what string
		host string
		port int
	}{{"client", o.Host, o.Port}, {"cluster", o.ClusterHost, o.ClusterPort}, {"monitor", o.MonitorHost, o.MonitorPort}} {
		if a.port <= 0 {
			continue
		}
		addr := net.JoinHostPort(a.host, strconv.Itoa(a.port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			var se *os.SyscallError
			if errors.As(err, &se) {
				err = se.Err
			}
			return fmt.Errorf("cannot listen on %s for %s connections: %v (another server there? choose another address)", addr, a.what, err)
		}
		ln.Close()
	}
	return nil
}

// corruptConsumer names a consumer of the state directory that JetStream
// could not load (it logs and skips a corrupt consumer file, and creating
// the consumer again then fails with a bare API error), and how to recover.
func (e *Embedded) corruptConsumer(ctx context.Context, nc *nats.Conn) error {
	dirs, _ := filepath.Glob(filepath.Join(e.Dir, "jetstream", "jetstream", "*", "streams", "*", "obs", "*"))
	if len(dirs) == 0 {
		return nil
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil
	}
	for _, d := range dirs {
		stream, name := filepath.Base(filepath.Dir(filepath.Dir(d))), filepath.Base(d)
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := js.Stream(cctx, stream)
		if err == nil {
			_, err = s.Consumer(cctx, name)
		}
		cancel()
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("engine state: consumer %s of %s is corrupt and was not loaded (%s); "+
				"to recover, remove that directory while no simswarm uses %s and start again: the queued jobs are kept and handed out anew",
				name, stream, d, e.Dir)
		}
	}
	return nil
}
