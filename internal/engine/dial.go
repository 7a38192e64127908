package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/simswarm/simswarm/internal/creds"
	"github.com/simswarm/simswarm/internal/retry"
)

// DialOptions says how to reach a cluster engine.
type DialOptions struct {
	URL   string
	Creds *creds.Creds // nil: no credentials
	CA    string       // PEM file of the CA for tls:// servers
	Name  string       // connection name, shown by the server
	// Wait keeps trying to connect until ctx ends (workers started before
	// their server); otherwise an unreachable server is an error at once.
	Wait bool
}

// CheckURL validates a --server value, so a typo is named as such and not
// reported as a network error.
func CheckURL(raw string) error {
	for _, one := range strings.Split(raw, ",") {
		u, err := url.Parse(one)
		if err != nil || u.Host == "" || u.Opaque != "" {
			return fmt.Errorf("malformed server URL %q: want nats://host:port", one)
		}
		switch u.Scheme {
		case "nats", "tls":
		default:
			return fmt.Errorf("malformed server URL %q: scheme must be nats:// or tls://", one)
		}
		if u.Port() == "" {
			return fmt.Errorf("malformed server URL %q: no port (the engine listens on 4222 by default)", one)
		}
	}
	return nil
}

// AdvertisedURL is the URL others dial for an engine listening on listen
// (host:port): its host, or host (this machine's name) where it listens on
// all addresses.
func AdvertisedURL(scheme, listen, host string) (string, error) {
	h, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("listen address %q: want host:port", listen)
	}
	if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
		h = host
	}
	return scheme + "://" + net.JoinHostPort(h, port), nil
}

// Dial connects to a cluster engine. Connections reconnect forever once up:
// a server restart must not end a campaign or a worker.
func Dial(ctx context.Context, o DialOptions) (*nats.Conn, error) {
	if err := CheckURL(o.URL); err != nil {
		return nil, err
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.Timeout(3 * time.Second),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.PingInterval(10 * time.Second),
		quietErrors,
	}
	if o.Creds != nil {
		opts = append(opts, nats.UserInfo(o.Creds.User, o.Creds.Password))
	}
	if o.CA != "" {
		opts = append(opts, nats.RootCAs(o.CA))
	}
	var nc *nats.Conn
	policy := retry.Policy{First: 2 * time.Second, Max: 2 * time.Second}
	if !o.Wait {
		policy.For = time.Nanosecond // one attempt
	}
	err := retry.Do(ctx, policy, func(int) error {
		var err error
		if nc, err = nats.Connect(o.URL, opts...); err != nil {
			err = explain(o, err)
			if errors.Is(err, errAuth) {
				return retry.Stop(err)
			}
		}
		return err
	})
	return nc, err
}

// Connect dials a cluster engine and opens it. With o.Wait it keeps trying
// while the server is down or has no engine yet (workers started before
// their server); otherwise any failure is an error at once.
func Connect(ctx context.Context, o DialOptions, log *slog.Logger) (*Engine, error) {
	if log == nil {
		log = slog.Default()
	}
	nc, err := Dial(ctx, o)
	if err != nil {
		return nil, err
	}
	var eng *Engine
	policy := retry.Policy{First: 2 * time.Second, Max: 2 * time.Second}
	if !o.Wait {
		policy.For = time.Nanosecond
	}
	err = retry.Do(ctx, policy, func(int) error {
		var err error
		if eng, err = Open(ctx, nc); err != nil && o.Wait {
			log.Warn("waiting for the engine", "server", o.URL, "err", err)
		}
		return err
	})
	if err != nil {
		nc.Close()
		if errors.Is(err, ErrNotEngine) {
			return nil, fmt.Errorf("%s: %w", o.URL, err)
		}
		return nil, err
	}
	eng.Log = log
	return eng, nil
}

var errAuth = errors.New("the server refused the credentials")

func explain(o DialOptions, err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, nats.ErrAuthorization) || strings.Contains(strings.ToLower(msg), "authorization"):
		if o.Creds == nil {
			return fmt.Errorf("%w at %s: it requires credentials; pass --creds FILE or set SIMSWARM_CREDS", errAuth, o.URL)
		}
		return fmt.Errorf("%w at %s: check the --creds file against the server's client.creds", errAuth, o.URL)
	case errors.Is(err, nats.ErrNoServers):
		return fmt.Errorf("cannot reach the simswarm server at %s: no server answers there", o.URL)
	}
	return fmt.Errorf("cannot reach the simswarm server at %s: %v", o.URL, err)
}
