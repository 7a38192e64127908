// Package sshdtest starts a real OpenSSH server on a loopback port for
// tests: Debian's sshd with a generated host key and a generated user key,
// standing in for the manager of a cluster on AWS, which tests cannot
// reach. Tests skip when sshd is not installed (CI installs
// openssh-server).
package sshdtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Server is a running sshd.
type Server struct {
	t    testing.TB
	dir  string
	cmd  *exec.Cmd
	bin  string
	Addr string // 127.0.0.1:port
	User string
	// KeyPath is the user's private key (0600); its public half is the
	// only authorized key.
	KeyPath string
	// HostKey is the server's current public host key.
	HostKey ssh.PublicKey
	// KeyPEM is the user's private key as written to KeyPath.
	KeyPEM []byte
}

// Find returns sshd's path, or "" when it is not installed.
func Find() string {
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("sshd"); err == nil {
		return p
	}
	return ""
}

// Start starts sshd, skipping the test when it is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Find()
	if bin == "" {
		t.Skip("sshd is not installed (Debian: openssh-server); the SSH tunnel tests need a real sshd")
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	// sshd refuses to start without its privilege separation directory;
	// Debian creates it only when its service starts.
	if os.Geteuid() == 0 {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("creating sshd's privilege separation directory: %v", err)
		}
	}
	s := &Server{t: t, dir: t.TempDir(), bin: bin, User: u.Username}
	s.KeyPath = filepath.Join(s.dir, "user_key")
	pub, pemBytes := NewKey(t)
	s.KeyPEM = pemBytes
	if err := os.WriteFile(s.KeyPath, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "authorized_keys"), ssh.MarshalAuthorizedKey(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	s.newHostKey()
	s.Addr = "127.0.0.1:" + freePort(t)
	s.start()
	t.Cleanup(s.Stop)
	s.probe()
	return s
}

// probe logs in once. sshd without PAM refuses accounts whose password is
// locked, as a developer's own account may be (root in CI is not): that
// is this machine's policy, not a failure of the code under test.
func (s *Server) probe() {
	s.t.Helper()
	signer, err := ssh.ParsePrivateKey(s.KeyPEM)
	if err != nil {
		s.t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{
		User: s.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey), Timeout: 10 * time.Second,
	})
	if err != nil {
		if strings.Contains(err.Error(), "unable to authenticate") {
			s.t.Skipf("the test sshd refuses user %s (a locked account?); run as root or a user sshd admits: %v\n%s", s.User, err, s.Log())
		}
		s.t.Fatalf("logging in to the test sshd: %v\n%s", err, s.Log())
	}
	c.Close()
}

// NewKey makes an ed25519 key pair: the public key and the private key in
// OpenSSH PEM form.
func NewKey(t testing.TB) (ssh.PublicKey, []byte) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "simswarm-test")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sp, pem.EncodeToMemory(blk)
}

func (s *Server) newHostKey() {
	pub, pemBytes := NewKey(s.t)
	if err := os.WriteFile(filepath.Join(s.dir, "host_key"), pemBytes, 0o600); err != nil {
		s.t.Fatal(err)
	}
	s.HostKey = pub
}

func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

func (s *Server) start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	cfg := filepath.Join(s.dir, "sshd_config")
	lines := []string{
		"Port " + port,
		"ListenAddress 127.0.0.1",
		"HostKey " + filepath.Join(s.dir, "host_key"),
		"AuthorizedKeysFile " + filepath.Join(s.dir, "authorized_keys"),
		"PidFile " + filepath.Join(s.dir, "sshd.pid"),
		"UsePAM no",
		"StrictModes no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"AllowTcpForwarding yes",
		"LogLevel VERBOSE",
		// bash runs ~/.bashrc for every command sshd starts unless it is
		// a nested shell; a developer's heavy ~/.bashrc (pyenv ...) would
		// add a second to each remote command.
		"SetEnv SHLVL=1",
	}
	if os.Geteuid() == 0 {
		lines = append(lines, "PermitRootLogin prohibit-password")
	}
	if err := os.WriteFile(cfg, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		s.t.Fatal(err)
	}
	// sshd wants to be started by its absolute path (it re-executes
	// itself for every connection).
	s.cmd = exec.Command(s.bin, "-D", "-e", "-f", cfg)
	log, err := os.OpenFile(filepath.Join(s.dir, "sshd.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting sshd: %v", err)
	}
	log.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("sshd did not listen on %s: %v\n%s", s.Addr, err, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Log is what sshd said so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "sshd.log"))
	return string(b)
}

// Stop stops the listening sshd. Established sessions are served by its
// per-connection children and end when their clients close them.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// RegenerateHostKey restarts sshd on the same port with a new host key,
// as a replaced (or impersonated) manager would present.
func (s *Server) RegenerateHostKey() {
	s.t.Helper()
	s.Stop()
	s.newHostKey()
	s.start()
}

// KnownHosts writes a known_hosts file recording the server's current
// host key and returns its path.
func (s *Server) KnownHosts(dir string) string {
	s.t.Helper()
	p := filepath.Join(dir, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKey)
	if err := os.WriteFile(p, []byte(line+"\n"), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return p
}

func (s *Server) String() string { return fmt.Sprintf("sshd on %s for %s", s.Addr, s.User) }

// Echo starts a server that answers every connection with what it receives, then closes
// its side once the client has closed its own.
func Echo(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return l.Addr().String()
}

// FreeAddr is a loopback address with a port nobody listens on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// RoundTrip sends payload through addr and expects it back, checking that
// both directions and the end of stream pass through.
func RoundTrip(t testing.TB, addr string, payload []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dialling forwarded %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading back through %s: %v", addr, err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("writing through %s: %v", addr, err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("through %s: sent %d bytes, got %d back (or different bytes)", addr, len(payload), len(got))
	}
}
