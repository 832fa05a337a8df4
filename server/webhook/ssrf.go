package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrPrivateAddress is returned (wrapped) by [CheckURL] and by dials of a
// [NewClient] client when the target is not globally reachable and private
// addresses are not allowed: every range of the IANA IPv4 and IPv6
// Special-Purpose Address Registries that is not globally reachable
// (loopback, RFC 1918, CGNAT 100.64.0.0/10, link-local, the TEST-NETs and
// 2001:db8::/32, benchmarking, Teredo, local-use NAT64 64:ff9b:1::/48,
// unique local fc00::/7, ...), multicast, reserved 240.0.0.0/4, IPv6
// outside 2000::/3, and IPv4-mapped, IPv4-compatible, NAT64 (64:ff9b::/96)
// or 6to4 (2002::/16) forms of a refused IPv4 address.
var ErrPrivateAddress = errors.New("webhook: private or reserved address")

// ErrInvalidURL is returned (wrapped) by [CheckURL] for a URL that is not an
// absolute http or https URL with a host and without user information.
var ErrInvalidURL = errors.New("webhook: invalid endpoint url")

// DefaultTimeout is the per-attempt timeout of [NewClient] when given zero.
const DefaultTimeout = 15 * time.Second

// CheckURL validates an endpoint URL for registration: http or https, a
// host, no user information, no fragment. Unless allowPrivate, it resolves
// the host with resolver (nil: net.DefaultResolver) and refuses it with
// [ErrPrivateAddress] if any address is private or reserved (see
// ErrPrivateAddress); "localhost" and names under ".localhost" are refused
// without a lookup. An IP literal is checked without resolving.
// CheckURL never dials the endpoint.
func CheckURL(ctx context.Context, raw string, allowPrivate bool, resolver *net.Resolver) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidURL, stripURL(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%w: scheme must be http or https", ErrInvalidURL)
	case u.Opaque != "":
		return fmt.Errorf("%w: not a hierarchical url", ErrInvalidURL)
	case u.User != nil:
		return fmt.Errorf("%w: user information is not allowed", ErrInvalidURL)
	case u.Hostname() == "":
		return fmt.Errorf("%w: host required", ErrInvalidURL)
	case u.Fragment != "":
		return fmt.Errorf("%w: fragment is not allowed", ErrInvalidURL)
	}
	if p := u.Port(); p != "" {
		if n, err := parsePort(p); err != nil || n == 0 {
			return fmt.Errorf("%w: bad port %q", ErrInvalidURL, p)
		}
	}
	if allowPrivate {
		return nil
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if addr, err := netip.ParseAddr(host); err == nil {
		if blocked(addr) {
			return fmt.Errorf("%w: %s", ErrPrivateAddress, addr)
		}
		return nil
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("%w: %s", ErrPrivateAddress, host)
	}
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	addrs, err := resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrInvalidURL, lookupFailure(host, err))
	}
	if len(addrs) == 0 {
		return fmt.Errorf("%w: %s has no addresses", ErrInvalidURL, host)
	}
	for _, a := range addrs {
		if blocked(a) {
			return fmt.Errorf("%w: %s resolves to %s", ErrPrivateAddress, host, a.Unmap())
		}
	}
	return nil
}

// lookupFailure describes a failed DNS lookup of host without the
// resolver's address, which a *net.DNSError carries in its message
// ("lookup x on 127.0.0.53:53: no such host") and which is internal.
func lookupFailure(host string, err error) string {
	var de *net.DNSError
	switch {
	case errors.As(err, &de) && de.IsNotFound:
		return "host " + host + " does not resolve"
	case errors.As(err, &de) && de.IsTimeout, errors.Is(err, context.DeadlineExceeded):
		return "host " + host + ": dns lookup timed out"
	case errors.Is(err, context.Canceled):
		return "host " + host + ": dns lookup canceled"
	default:
		return "host " + host + ": dns lookup failed"
	}
}

func parsePort(p string) (int, error) {
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, errors.New("not a number")
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return 0, errors.New("out of range")
		}
	}
	return n, nil
}

// blockedV4 lists the IPv4 ranges of the IANA IPv4 Special-Purpose Address
// Registry that are not globally reachable, plus multicast, the reserved
// 240.0.0.0/4 block and the deprecated 6to4 relay anycast block.
var blockedV4 = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network" (RFC 791)
	netip.MustParsePrefix("10.0.0.0/8"),      // private (RFC 1918)
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space, CGNAT (RFC 6598)
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback
	netip.MustParsePrefix("169.254.0.0/16"),  // link-local, cloud metadata
	netip.MustParsePrefix("172.16.0.0/12"),   // private (RFC 1918)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments (RFC 6890)
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1 (RFC 5737)
	netip.MustParsePrefix("192.88.99.0/24"),  // deprecated 6to4 relay anycast (RFC 7526)
	netip.MustParsePrefix("192.168.0.0/16"),  // private (RFC 1918)
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking (RFC 2544)
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2 (RFC 5737)
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3 (RFC 5737)
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and 255.255.255.255 broadcast
}

// blockedV6 lists the IPv6 ranges refused outright. Everything outside
// 2000::/3 (the only block IANA allocates global unicast from) is refused
// too; the ranges below are inside it, or named for the reader.
var blockedV6 = []netip.Prefix{
	netip.MustParsePrefix("::/96"),          // IPv4-compatible (deprecated), :: and ::1
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64 (RFC 8215)
	netip.MustParsePrefix("100::/64"),       // discard-only (RFC 6666)
	netip.MustParsePrefix("2001::/23"),      // IETF protocol assignments: Teredo 2001::/32, benchmarking, ORCHID
	netip.MustParsePrefix("2001:db8::/32"),  // documentation (RFC 3849)
	netip.MustParsePrefix("3fff::/20"),      // documentation (RFC 9637)
	netip.MustParsePrefix("5f00::/16"),      // SRv6 SIDs (RFC 9602)
	netip.MustParsePrefix("fc00::/7"),       // unique local (RFC 4193)
	netip.MustParsePrefix("fe80::/10"),      // link-local
	netip.MustParsePrefix("fec0::/10"),      // site-local (deprecated)
	netip.MustParsePrefix("ff00::/8"),       // multicast
}

var (
	globalUnicastV6 = netip.MustParsePrefix("2000::/3")
	nat64V6         = netip.MustParsePrefix("64:ff9b::/96") // well-known NAT64 (RFC 6052)
	sixToFourV6     = netip.MustParsePrefix("2002::/16")    // 6to4 (RFC 3056)
)

// blocked reports whether a is an address webhooks must not reach unless
// private addresses are allowed. IPv4-mapped (::ffff:0:0/96), well-known
// NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses are judged by the
// IPv4 address they embed.
func blocked(a netip.Addr) bool {
	a = a.WithZone("")
	if !a.IsValid() {
		return true
	}
	if a.Is4In6() {
		return blocked(a.Unmap())
	}
	if a.Is4() {
		for _, p := range blockedV4 {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	b := a.As16()
	switch {
	case nat64V6.Contains(a):
		return blocked(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFourV6.Contains(a):
		return blocked(netip.AddrFrom4([4]byte(b[2:6])))
	case !globalUnicastV6.Contains(a):
		return true
	}
	for _, p := range blockedV6 {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// NewClient returns the HTTP client deliveries go through: every dial
// checks the address actually connected to (after DNS, so a name that
// re-resolves to a private address is caught) and fails with
// [ErrPrivateAddress] unless allowPrivate; redirects are not followed (the
// 3xx response is returned as is); proxies from the environment are not
// used; each request times out after timeout (zero: [DefaultTimeout]).
func NewClient(allowPrivate bool, timeout time.Duration) *http.Client {
	return newClient(allowPrivate, timeout, nil)
}

// newClient is NewClient with the dialer's resolver (nil: the default), so
// tests can model DNS that changes between registration and delivery.
func newClient(allowPrivate bool, timeout time.Duration, resolver *net.Resolver) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dialer := &net.Dialer{
		Timeout:   min(timeout, 10*time.Second),
		KeepAlive: 30 * time.Second,
		Resolver:  resolver,
		Control: func(network, address string, _ syscall.RawConn) error {
			if allowPrivate {
				return nil
			}
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: unparsable dial address %q", ErrPrivateAddress, address)
			}
			if blocked(ap.Addr()) {
				return fmt.Errorf("%w: %s", ErrPrivateAddress, ap.Addr().Unmap())
			}
			return nil
		},
	}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// stripURL returns the error inside a *url.Error, whose message would
// repeat the URL (which may carry a token in its query).
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
