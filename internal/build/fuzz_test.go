package build

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzParseHosts: any --distcc-hosts is refused or read into hosts with a
// positive job limit, and what a host writes reads back the same.
func FuzzParseHosts(f *testing.F) {
	for _, s := range []string{"10.0.0.2 10.0.0.3:3633/8,lzo", "localhost/2 a", "h/0", "h/-1", "h/99999999999999999999", "[::1]:3632/4", ":/,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		hosts, err := ParseHosts(spec, 4)
		if err != nil {
			return
		}
		for _, h := range hosts {
			if h.Limit < 1 || h.Addr == "" {
				t.Fatalf("ParseHosts(%q) gave %+v", spec, h)
			}
			again, err := ParseHosts(h.spec(), 4)
			if err != nil || len(again) != 1 || again[0] != h {
				t.Fatalf("host %+v written as %q reads back as %+v, %v", h, h.spec(), again, err)
			}
		}
	})
}

// FuzzCheckAllow: no --allow list that CheckAllow accepts admits more
// addresses than a private network (a /8 of IPv4, a /7 of IPv6 ULA).
func FuzzCheckAllow(f *testing.F) {
	for _, s := range []string{"10.0.9.0/24", "0.0.0.0/1,128.0.0.0/1", "::ffff:10.0.0.0/104", "fd00::/8", "1.2.3.4", "::/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		allow := strings.Split(list, ",")
		if CheckAllow(allow) != nil {
			return
		}
		for _, a := range allow {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				continue // a single address
			}
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			if (p.Addr().Is4() && p.Bits() < 8) || (!p.Addr().Is4() && p.Bits() < 7) {
				t.Fatalf("CheckAllow accepted %q with %s", list, a)
			}
		}
	})
}
