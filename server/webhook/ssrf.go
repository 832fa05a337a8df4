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
// [NewClient] client when the target is a loopback, private (RFC 1918, ULA
// fc00::/7), link-local, unspecified, multicast, shared (CGNAT 100.64.0.0/10)
// or otherwise reserved address, or an IPv4-mapped, IPv4-compatible, NAT64 or
// 6to4 form of one, and private addresses are not allowed.
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
		return fmt.Errorf("%w: resolve %s: %v", ErrInvalidURL, host, err)
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

// blocked reports whether a is an address webhooks must not reach unless
// private addresses are allowed.
func blocked(a netip.Addr) bool {
	a = a.Unmap() // ::ffff:a.b.c.d is a.b.c.d
	if !a.IsValid() {
		return true
	}
	if a.IsLoopback() || a.IsPrivate() || a.IsUnspecified() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsMulticast() {
		return true
	}
	if a.Is4() {
		b := a.As4()
		switch {
		case b[0] == 0: // 0.0.0.0/8 "this network"
			return true
		case b[0] == 100 && b[1]&0xc0 == 64: // 100.64.0.0/10 shared address space (CGNAT)
			return true
		case b[0] == 192 && b[1] == 0 && b[2] == 0: // 192.0.0.0/24 IETF protocol assignments
			return true
		case b[0] == 198 && b[1]&0xfe == 18: // 198.18.0.0/15 benchmarking
			return true
		case b[0] >= 240: // 240.0.0.0/4 reserved, and 255.255.255.255 broadcast
			return true
		}
		return false
	}
	b := a.As16()
	switch {
	case isZero(b[:12]): // ::/96 IPv4-compatible (deprecated) addresses
		return true
	case b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && isZero(b[4:12]): // 64:ff9b::/96 NAT64
		return blocked(netip.AddrFrom4([4]byte(b[12:16])))
	case b[0] == 0x20 && b[1] == 0x02: // 2002::/16 6to4
		return blocked(netip.AddrFrom4([4]byte(b[2:6])))
	case b[0] == 0xfe && b[1]&0xc0 == 0xc0: // fec0::/10 deprecated site-local
		return true
	}
	return false
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
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
