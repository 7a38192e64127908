package build

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/simswarm/simswarm/internal/proc"
)

// Accel says how builds are sped up: ccache in front of the compilers, and
// distcc behind ccache to spread compiles over compile servers.
type Accel struct {
	// DistccHosts is a DISTCC_HOSTS-style list: "host[:port][/limit][,lzo] ...".
	DistccHosts string
	// DistccDNS names every compile server at once (Docker Swarm's
	// tasks.distcc); resolved again for every build, since tasks come and go.
	DistccDNS string
	// PerHost is the job limit of a host that does not give one (default 4).
	PerHost int
	// CcacheDir holds the compiler cache (empty: no ccache); CcacheSize
	// bounds it ("5G").
	CcacheDir  string
	CcacheSize string
}

// Host is one compile server.
type Host struct {
	Addr  string // host:port
	Limit int
	LZO   bool
}

func (h Host) spec() string {
	s := fmt.Sprintf("%s/%d", h.Addr, h.Limit)
	if h.LZO {
		s += ",lzo"
	}
	return s
}

// ParseHosts reads a DISTCC_HOSTS-style list. Entries without a limit get
// perHost; every entry gets lzo, since compile traffic crosses a network.
func ParseHosts(spec string, perHost int) ([]Host, error) {
	if perHost < 1 {
		perHost = 4
	}
	var out []Host
	for _, f := range strings.Fields(spec) {
		if f == "localhost" || strings.HasPrefix(f, "localhost/") {
			continue // the builder compiles locally when no server answers
		}
		if strings.HasPrefix(f, "@") || strings.HasPrefix(f, "--") {
			return nil, fmt.Errorf("distcc host %q: only TCP hosts (host[:port][/limit][,lzo]) are supported", f)
		}
		h := Host{Limit: perHost, LZO: true}
		rest := f
		if i := strings.IndexByte(rest, ','); i >= 0 {
			for _, opt := range strings.Split(rest[i+1:], ",") {
				switch opt {
				case "lzo", "cpp":
				default:
					return nil, fmt.Errorf("distcc host %q: unknown option %q", f, opt)
				}
			}
			rest = rest[:i]
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			n, err := strconv.Atoi(rest[i+1:])
			if err != nil || n < 1 {
				return nil, fmt.Errorf("distcc host %q: the limit after / must be a positive number", f)
			}
			h.Limit, rest = n, rest[:i]
		}
		host, port := rest, "3632"
		switch {
		case strings.HasPrefix(rest, "["):
			h, p, err := net.SplitHostPort(rest)
			if err != nil {
				if h, p = strings.Trim(rest, "[]"), "3632"; strings.ContainsAny(h, "[]") {
					return nil, fmt.Errorf("distcc host %q: malformed address", f)
				}
			}
			host, port = h, p
		case strings.Count(rest, ":") == 1:
			host, port, _ = strings.Cut(rest, ":")
		case strings.Count(rest, ":") > 1:
			return nil, fmt.Errorf("distcc host %q: malformed (write IPv6 addresses as [addr]:port)", f)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("distcc host %q: bad port %q", f, port)
		}
		if host == "" {
			return nil, fmt.Errorf("distcc host %q: no host name", f)
		}
		h.Addr = net.JoinHostPort(host, port)
		out = append(out, h)
	}
	return out, nil
}

// environment prepares what a build runs with: PATH leading to compiler
// wrappers, the ccache and distcc settings, and the make parallelism.
// Problems that only slow the build down come back as warnings. plain
// asks for none of the wrappers (a workspace seeded from the user's build).
func (b *Builder) environment(ctx context.Context, plain bool) (env []string, jobs int, warnings []string) {
	env = proc.Environ() // without SIMSWARM_* (credentials)
	jobs = b.Jobs
	if plain {
		return env, jobs, nil
	}
	a := b.Accel
	hosts, err := ParseHosts(a.DistccHosts, a.PerHost)
	if err != nil {
		warnings = append(warnings, err.Error())
		hosts = nil
	}
	if a.DistccDNS != "" {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		addrs, err := net.DefaultResolver.LookupHost(rctx, a.DistccDNS)
		cancel()
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("distcc servers %s: %v", a.DistccDNS, dnsReason(err)))
		}
		per := a.PerHost
		if per < 1 {
			per = 4
		}
		for _, ip := range addrs {
			hosts = append(hosts, Host{Addr: net.JoinHostPort(ip, "3632"), Limit: per, LZO: true})
		}
	}
	configured := len(hosts) > 0
	hosts = reachable(hosts)
	if configured && len(hosts) == 0 {
		warnings = append(warnings, "no distcc server answers: building locally")
	}
	ccache, _ := exec.LookPath("ccache")
	if a.CcacheDir == "" {
		ccache = ""
	}
	distcc, _ := exec.LookPath("distcc")
	if len(hosts) > 0 && distcc == "" {
		warnings = append(warnings, "distcc is not installed on the builder: building locally")
		hosts = nil
	}
	wrapper := ccache
	if wrapper == "" && len(hosts) > 0 {
		wrapper = distcc
	}
	if wrapper == "" {
		return env, jobs, warnings
	}
	bin, err := masquerade(filepath.Join(b.Dir, ".bin-"+filepath.Base(wrapper)), wrapper)
	if err != nil {
		warnings = append(warnings, "compiler wrappers: "+err.Error())
		return env, jobs, warnings
	}
	env = setEnv(env, "PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	if ccache != "" {
		size := a.CcacheSize
		if size == "" {
			size = "5G"
		}
		// BASEDIR and NOHASHDIR make hits independent of the workspace's
		// path: a fresh workspace reuses what another one compiled.
		env = setEnv(env, "CCACHE_DIR", a.CcacheDir)
		env = setEnv(env, "CCACHE_MAXSIZE", size)
		env = setEnv(env, "CCACHE_BASEDIR", b.Dir)
		env = setEnv(env, "CCACHE_NOHASHDIR", "true")
		if len(hosts) > 0 {
			env = setEnv(env, "CCACHE_PREFIX", "distcc")
		}
	}
	if len(hosts) > 0 {
		var specs []string
		sum := 0
		for _, h := range hosts {
			specs = append(specs, h.spec())
			sum += h.Limit
		}
		env = setEnv(env, "DISTCC_HOSTS", strings.Join(specs, " "))
		// As `distcc -j` reports: the servers' slots, plus local cores for
		// preprocessing and linking.
		jobs = sum + runtime.NumCPU()
	}
	return env, jobs, warnings
}

// reachable keeps the hosts that accept a TCP connection within a second.
func reachable(hosts []Host) []Host {
	type res struct {
		i  int
		ok bool
	}
	ch := make(chan res, len(hosts))
	for i, h := range hosts {
		go func() {
			c, err := net.DialTimeout("tcp", h.Addr, time.Second)
			if err == nil {
				c.Close()
			}
			ch <- res{i, err == nil}
		}()
	}
	ok := make([]bool, len(hosts))
	for range hosts {
		r := <-ch
		ok[r.i] = r.ok
	}
	var out []Host
	for i, h := range hosts {
		if ok[i] {
			out = append(out, h)
		}
	}
	return out
}

func dnsReason(err error) string {
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return "name does not resolve"
	}
	return err.Error()
}

// masquerade makes dir hold compiler-named links to a small script that
// runs the real compiler through wrapper (ccache or distcc), so any
// Makefile that calls compilers by name goes through them unchanged.
//
// The script also names the dependency file explicitly (-MF) when a compile
// asks for one with -MD/-MMD but leaves its name to the compiler: distcc
// 3.4 then writes it beside the source instead of beside the object, ccache
// finds none, compiles a second time and caches nothing, and that is every
// Makefile opp_makemake writes.
func masquerade(dir, wrapper string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	script := filepath.Join(dir, "simswarm-cc")
	body := fmt.Sprintf(ccScript, wrapper)
	if old, err := os.ReadFile(script); err != nil || string(old) != body {
		tmp := script + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o755); err != nil {
			return "", err
		}
		if err := os.Rename(tmp, script); err != nil {
			return "", err
		}
	}
	for _, name := range []string{"cc", "gcc", "c++", "g++", "clang", "clang++"} {
		if _, err := exec.LookPath(name); err != nil {
			continue
		}
		link := filepath.Join(dir, name)
		if target, err := os.Readlink(link); err == nil && target == "simswarm-cc" {
			continue
		}
		os.Remove(link)
		if err := os.Symlink("simswarm-cc", link); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// ccScript runs "<wrapper> <compiler name> args", with its own directory
// taken off PATH so that the wrapper finds the real compiler.
const ccScript = `#!/bin/sh
# Written by the simswarm builder: compilers reached through %[1]s.
self=$(dirname "$0")
PATH=$(printf '%%s' "$PATH" | tr ':' '\n' | grep -vxF "$self" | paste -sd: -)
export PATH
dep=; mf=; out=; compile=
prev=
for a in "$@"; do
	case "$a" in
	-MD|-MMD) dep=1 ;;
	-MF|-MF*) mf=1 ;;
	-c) compile=1 ;;
	esac
	[ "$prev" = "-o" ] && out=$a
	prev=$a
done
if [ -n "$dep" ] && [ -z "$mf" ] && [ -n "$compile" ] && [ -n "$out" ]; then
	set -- "$@" -MF "${out%%.*}.d"
fi
exec %[1]s "$(basename "$0")" "$@"
`

func setEnv(env []string, key, value string) []string {
	prefix := key + "="
	for i, e := range env {
		if strings.HasPrefix(e, prefix) {
			env[i] = prefix + value
			return env
		}
	}
	return append(env, prefix+value)
}
