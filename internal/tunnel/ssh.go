// Package tunnel is the SSH side of a cluster on AWS: a connection to the
// manager that trusts only the host key recorded when the cluster was made,
// remote commands over it, and the local port forwards (engine, dashboard,
// visualizer) that let a client on this machine reach the cluster, run in
// the background with a PID file as the reference tool did.
package tunnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Config says how to reach the manager and what to forward.
type Config struct {
	Addr       string // host:port of the manager's sshd
	User       string
	KeyPath    string // private key, must be 0600
	KnownHosts string // the file holding the manager's recorded host key
	Forwards   []Forward
	// KeepAlive is how often the connection is probed; a dead one (laptop
	// slept, manager halted) is noticed and dialled again. Default 30 s.
	KeepAlive   time.Duration
	DialTimeout time.Duration // default 20 s
}

// HostKeyError is a manager presenting another key than the one recorded:
// the instance was replaced, or someone sits in between. Never retried.
type HostKeyError struct {
	Addr       string
	KnownHosts string
	Got        string // fingerprint presented
	Want       string // fingerprint recorded; empty when none was recorded
}

func (e *HostKeyError) Error() string {
	if e.Want == "" {
		return fmt.Sprintf("no host key recorded for %s in %s: refusing to connect (simswarm aws init or resume records it)", e.Addr, e.KnownHosts)
	}
	return fmt.Sprintf("host key mismatch for %s: it presented %s but %s records %s; refusing to connect (the manager was replaced, or someone is intercepting the connection)",
		e.Addr, e.Got, e.KnownHosts, e.Want)
}

// LoadKey reads the private key, refusing one that others can read: ssh
// refuses it too, and it opens every node of the cluster.
func LoadKey(path string) (ssh.Signer, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("SSH key %s does not exist (it is written by simswarm aws init; was the cluster made on another machine?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("SSH key %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("SSH key %s is readable by group or others (mode %04o): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("SSH key %s: %w", path, err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("SSH key %s: not a usable private key: %w", path, err)
	}
	return s, nil
}

// hostKeyCallback checks against known_hosts and turns knownhosts' errors
// into a HostKeyError, kept in *found so that Dial can tell it apart from
// a network error however the handshake wraps it.
func hostKeyCallback(path string, found **HostKeyError) (ssh.HostKeyCallback, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("known hosts file %s: %w (simswarm aws init or resume writes it)", path, err)
	}
	cb, err := knownhosts.New(path)
	if err != nil {
		return nil, fmt.Errorf("reading known hosts %s: %w", path, err)
	}
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostname, remote, key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			he := &HostKeyError{Addr: hostname, KnownHosts: path, Got: key.Type() + " " + ssh.FingerprintSHA256(key)}
			if len(ke.Want) > 0 {
				var want []string
				for _, w := range ke.Want {
					want = append(want, ssh.FingerprintSHA256(w.Key))
				}
				he.Want = strings.Join(want, ", ")
			}
			*found = he
			return he
		}
		return err
	}, nil
}

// Dial connects and authenticates to the manager.
func Dial(ctx context.Context, c Config) (*ssh.Client, error) {
	signer, err := LoadKey(c.KeyPath)
	if err != nil {
		return nil, err
	}
	var hkErr *HostKeyError
	cb, err := hostKeyCallback(c.KnownHosts, &hkErr)
	if err != nil {
		return nil, err
	}
	timeout := c.DialTimeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	cfg := &ssh.ClientConfig{
		User:            c.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: cb,
		Timeout:         timeout,
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to the manager at %s: %w", c.Addr, err)
	}
	// The handshake has no context of its own: a deadline bounds it.
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(timeout))
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, c.Addr, cfg)
	if err != nil {
		conn.Close()
		if hkErr != nil {
			return nil, hkErr
		}
		return nil, fmt.Errorf("SSH to the manager at %s as %s: %w", c.Addr, c.User, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), nil
}

// Run runs a command on the manager, feeding it stdin when not nil, and
// returns its standard output. A failure carries the end of its stderr.
func Run(ctx context.Context, client *ssh.Client, cmd string, stdin io.Reader) (string, error) {
	s, err := client.NewSession()
	if err != nil {
		return "", fmt.Errorf("opening an SSH session for %q: %w", cmd, err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	if stdin != nil {
		s.Stdin = stdin
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGTERM)
		s.Close()
		return out.String(), fmt.Errorf("remote command %q: %w", cmd, ctx.Err())
	}
	if err != nil {
		tail := strings.TrimSpace(errb.String())
		if len(tail) > 2000 {
			tail = "..." + tail[len(tail)-2000:]
		}
		if tail != "" {
			return out.String(), fmt.Errorf("remote command %q: %w: %s", cmd, err, tail)
		}
		return out.String(), fmt.Errorf("remote command %q: %w", cmd, err)
	}
	return out.String(), nil
}

// KnownHostsLine is the known_hosts entry recording key for addr
// (host:port), in the form ssh itself reads.
func KnownHostsLine(addr string, key ssh.PublicKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
}
