package build

import (
	"strings"
	"testing"
)

// TestCheckAllow: allow lists are refused when, together, they admit more
// than a private network (10.0.0.0/8; a /48 for IPv6), however they are
// split; the networks of a build cluster pass.
func TestCheckAllow(t *testing.T) {
	ok := [][]string{
		{"10.0.9.0/24"},
		{"10.0.0.0/8"},
		{"127.0.0.1"},
		{"10.0.0.0/8", "10.1.0.0/16"}, // nested: the /8 counts once
		{"192.168.0.0/16", "172.16.0.0/12"},
		{"fd00:1:2::/48"},
		{"::ffff:10.0.0.0/104"},
	}
	for _, a := range ok {
		if err := CheckAllow(a); err != nil {
			t.Errorf("CheckAllow(%v): %v", a, err)
		}
	}
	bad := []struct {
		allow []string
		want  string
	}{
		{nil, "--allow is required"},
		{[]string{"0.0.0.0/0"}, "admits every address"},
		{[]string{"::/0"}, "admits every address"},
		{[]string{"0.0.0.0/1", "128.0.0.0/1"}, "admits 4294967296 IPv4 addresses in all, more than a private network"},
		{[]string{"10.0.0.0/8", "11.0.0.0/8"}, "admits 33554432 IPv4 addresses"},
		{[]string{"9.0.0.0/7"}, "more than a private network"},
		{[]string{"fd00::/8"}, "IPv6 addresses in all"},
		{[]string{"::ffff:0.0.0.0/96"}, "admits every address"},
		{[]string{"nonsense"}, `invalid --allow "nonsense"`},
		{[]string{"10.0.0.0/33"}, `invalid --allow "10.0.0.0/33"`},
	}
	for _, b := range bad {
		err := CheckAllow(b.allow)
		if err == nil || !strings.Contains(err.Error(), b.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("CheckAllow(%v) = %v, want one line saying %q", b.allow, err, b.want)
		}
	}
}
