package aws

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// IPEndpointEnv overrides the service that tells this machine's public
// address (tests point it at a local server).
const IPEndpointEnv = "SIMSWARM_IP_ENDPOINT"

// DefaultIPEndpoint answers a plain-text IPv4 address.
const DefaultIPEndpoint = "https://checkip.amazonaws.com"

// SSHCIDR returns cidr checked, or when empty this machine's public IPv4
// address as a /32, asked of endpoint (IPEndpointEnv or the default when
// empty): SSH to the manager is admitted from there only.
func SSHCIDR(ctx context.Context, cidr, endpoint string) (string, error) {
	if cidr != "" {
		pfx, err := netip.ParsePrefix(cidr)
		if err != nil {
			return "", fmt.Errorf("--ssh-cidr %q is not an address range such as 203.0.113.7/32", cidr)
		}
		if !pfx.Addr().Is4() {
			return "", fmt.Errorf("--ssh-cidr %q: the cluster's network is IPv4 only; give your IPv4 address", cidr)
		}
		if pfx.Bits() == 0 {
			return "", fmt.Errorf("--ssh-cidr %q would admit SSH from the whole internet; give your own address, e.g. 203.0.113.7/32", cidr)
		}
		return pfx.Masked().String(), nil
	}
	if endpoint == "" {
		endpoint = DefaultIPEndpoint
	}
	addr, err := publicIPv4(ctx, endpoint)
	if err != nil {
		return "", fmt.Errorf("finding this machine's public address for the SSH rule failed (%v): pass --ssh-cidr with your public IPv4 address, e.g. --ssh-cidr 203.0.113.7/32", err)
	}
	return addr.String() + "/32", nil
}

func publicIPv4(ctx context.Context, endpoint string) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Over IPv4 only: the answer must be the address the security
	// group sees, and the cluster's network is IPv4.
	d := &net.Dialer{}
	client := &http.Client{Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp4", addr)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return netip.Addr{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("asking %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return netip.Addr{}, fmt.Errorf("%s answered %s", endpoint, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("reading %s: %w", endpoint, err)
	}
	a, err := netip.ParseAddr(strings.TrimSpace(string(b)))
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%s answered %q, not an IPv4 address", endpoint, strings.TrimSpace(string(b)))
	}
	return a, nil
}
