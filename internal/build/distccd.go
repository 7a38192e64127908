package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"sort"
	"strconv"

	"github.com/simswarm/simswarm/internal/proc"
)

// Distccd is a distcc compile server restricted to the build network.
type Distccd struct {
	Host    string // address to listen on; "" or 0.0.0.0: all
	Port    int
	Allow   []string // CIDRs or addresses; see CheckAllow
	Jobs    int
	LogFile string // "": log to Stderr
	Stderr  io.Writer
}

// The widest allow list accepted: a private network. 10.0.0.0/8 is the
// largest IPv4 one; a /48 is a whole IPv6 site (a unique local prefix).
var (
	maxAllow4 = big.NewInt(1 << 24)
	maxAllow6 = new(big.Int).Lsh(big.NewInt(1), 128-48)
)

// CheckAllow refuses allow lists that admit more than a private network
// together: an open distccd runs anyone's commands, and 0.0.0.0/1 plus
// 128.0.0.0/1 is as open as 0.0.0.0/0.
func CheckAllow(allow []string) error {
	if len(allow) == 0 {
		return errors.New("--allow is required: the network (CIDR) of the builders, e.g. the buildnet subnet")
	}
	var v4, v6 []netip.Prefix
	for _, a := range allow {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			addr, aerr := netip.ParseAddr(a)
			if aerr != nil {
				return fmt.Errorf("invalid --allow %q: want an address or CIDR such as 10.0.9.0/24", a)
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		p = p.Masked()
		if p.Bits() == 0 {
			return fmt.Errorf("--allow %s admits every address: an open distccd runs anyone's commands", a)
		}
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	if n := covered(v4); n.Cmp(maxAllow4) > 0 {
		return fmt.Errorf("--allow admits %s IPv4 addresses in all, more than a private network (10.0.0.0/8, %s): an open distccd runs anyone's commands", n, maxAllow4)
	}
	if n := covered(v6); n.Cmp(maxAllow6) > 0 {
		return fmt.Errorf("--allow admits %s IPv6 addresses in all, more than a private network (a /48): an open distccd runs anyone's commands", n)
	}
	return nil
}

// covered counts the addresses of a set of prefixes. Two prefixes either
// nest or are disjoint, so the union is the sum over those inside no other.
func covered(ps []netip.Prefix) *big.Int {
	sort.Slice(ps, func(i, j int) bool { return ps[i].Bits() < ps[j].Bits() })
	total := new(big.Int)
	var kept []netip.Prefix
	for _, p := range ps {
		inside := false
		for _, k := range kept {
			if k.Contains(p.Addr()) {
				inside = true
				break
			}
		}
		if inside {
			continue
		}
		kept = append(kept, p)
		total.Add(total, new(big.Int).Lsh(big.NewInt(1), uint(p.Addr().BitLen()-p.Bits())))
	}
	return total
}

// Run runs Debian's distccd until ctx ends, as a supervised process tree:
// its pre-forked workers end with it, and with this process even when it
// is killed with SIGKILL. It returns distccd's exit status when distccd
// ended on its own.
func (d *Distccd) Run(ctx context.Context) (exit int, err error) {
	if err := CheckAllow(d.Allow); err != nil {
		return 0, err
	}
	bin, err := exec.LookPath("distccd")
	if err != nil {
		return 0, errors.New("distccd is not installed (Debian: apt-get install distcc)")
	}
	argv := []string{bin, "--daemon", "--no-detach", "--port", strconv.Itoa(d.Port), "--jobs", strconv.Itoa(d.Jobs)}
	if d.Host != "" && d.Host != "0.0.0.0" {
		argv = append(argv, "--listen", d.Host)
	}
	for _, a := range d.Allow {
		argv = append(argv, "--allow", a)
	}
	if os.Geteuid() == 0 {
		// distccd refuses to compile as root and drops to this user.
		argv = append(argv, "--user", "nobody")
	}
	if d.LogFile != "" {
		if err := prepareLog(d.LogFile); err != nil {
			return 0, fmt.Errorf("--log-file %s: %w", d.LogFile, err)
		}
		argv = append(argv, "--log-file", d.LogFile, "--log-level", "info")
	} else {
		argv = append(argv, "--log-stderr")
	}
	res, err := proc.Run(ctx, proc.Spec{Argv: argv, Output: d.Stderr, TailBytes: 4 << 10})
	if err != nil {
		return 0, fmt.Errorf("start distccd: %w", err)
	}
	if ctx.Err() != nil {
		return 0, nil
	}
	if res.Failed() {
		return max(res.Exit, 1), fmt.Errorf("distccd: %s", res.Describe())
	}
	return 0, nil
}

// prepareLog creates the log file for the user distccd runs as: after
// dropping root it could not create it itself.
func prepareLog(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	f.Close()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(path, uid, gid)
}
