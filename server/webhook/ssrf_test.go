package webhook

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

// stubResolver returns a resolver that never touches the network: it
// answers A queries from names (without the trailing dot) and says
// NXDOMAIN for anything else.
func stubResolver(tb testing.TB, names map[string]string) *net.Resolver {
	tb.Helper()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			client, server := net.Pipe()
			go serveStubDNS(server, names)
			return client, nil
		},
	}
}

// serveStubDNS answers DNS-over-stream queries (2-byte length framing, as
// the Go resolver uses on a non-packet conn) until the conn closes.
func serveStubDNS(c net.Conn, names map[string]string) {
	defer c.Close()
	for {
		var n uint16
		if err := binary.Read(c, binary.BigEndian, &n); err != nil {
			return
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		var q dnsmessage.Message
		if err := q.Unpack(buf); err != nil || len(q.Questions) != 1 {
			return
		}
		question := q.Questions[0]
		resp := dnsmessage.Message{
			Header:    dnsmessage.Header{ID: q.ID, Response: true, Authoritative: true, RecursionAvailable: true},
			Questions: q.Questions,
		}
		ip, ok := names[strings.TrimSuffix(question.Name.String(), ".")]
		switch {
		case !ok:
			resp.RCode = dnsmessage.RCodeNameError
		case question.Type == dnsmessage.TypeA:
			resp.Answers = []dnsmessage.Resource{{
				Header: dnsmessage.ResourceHeader{Name: question.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
				Body:   &dnsmessage.AResource{A: netip.MustParseAddr(ip).As4()},
			}}
		}
		out, err := resp.Pack()
		if err != nil {
			return
		}
		if err := binary.Write(c, binary.BigEndian, uint16(len(out))); err != nil {
			return
		}
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// publicV4 stands for a public endpoint address in tests; the TEST-NETs
// are refused like any other special-purpose range.
const publicV4 = "93.184.215.14"

func TestCheckURL(t *testing.T) {
	res := stubResolver(t, map[string]string{
		"loopback.example.test": "127.0.0.1",
		"metadata.example.test": "169.254.169.254",
		"testnet.example.test":  "198.51.100.7",
		"public.example.test":   publicV4,
	})
	cases := []struct {
		url          string
		allowPrivate bool
		want         error // nil: accepted
	}{
		{url: "http://127.0.0.1/hook", want: ErrPrivateAddress},
		{url: "http://127.1.2.3:8080/hook", want: ErrPrivateAddress},
		{url: "http://localhost/hook", want: ErrPrivateAddress},
		{url: "http://LOCALHOST./hook", want: ErrPrivateAddress},
		{url: "http://api.localhost/hook", want: ErrPrivateAddress},
		{url: "http://[::1]/hook", want: ErrPrivateAddress},
		{url: "http://10.1.2.3/hook", want: ErrPrivateAddress},
		{url: "http://172.16.0.1/hook", want: ErrPrivateAddress},
		{url: "http://172.31.255.255/hook", want: ErrPrivateAddress},
		{url: "http://192.168.1.1/hook", want: ErrPrivateAddress},
		{url: "http://169.254.169.254/latest/meta-data", want: ErrPrivateAddress},
		{url: "http://0.0.0.0/hook", want: ErrPrivateAddress},
		{url: "http://[::]/hook", want: ErrPrivateAddress},
		{url: "http://[::ffff:127.0.0.1]/hook", want: ErrPrivateAddress},
		{url: "http://[::ffff:10.0.0.1]/hook", want: ErrPrivateAddress},
		{url: "http://[::127.0.0.1]/hook", want: ErrPrivateAddress},
		{url: "http://[fd00::1]/hook", want: ErrPrivateAddress},
		{url: "http://[fe80::1]/hook", want: ErrPrivateAddress},
		{url: "http://[ff02::1]/hook", want: ErrPrivateAddress},
		{url: "http://[64:ff9b::7f00:1]/hook", want: ErrPrivateAddress},
		{url: "http://[64:ff9b:1::a00:1]/hook", want: ErrPrivateAddress},
		{url: "http://[2002:7f00:1::]/hook", want: ErrPrivateAddress},
		{url: "http://[2001:db8::1]/hook", want: ErrPrivateAddress},
		{url: "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook", want: ErrPrivateAddress},
		{url: "http://100.64.0.1/hook", want: ErrPrivateAddress},
		{url: "http://100.127.255.254/hook", want: ErrPrivateAddress},
		{url: "http://192.0.2.1/hook", want: ErrPrivateAddress},
		{url: "http://198.51.100.1/hook", want: ErrPrivateAddress},
		{url: "http://203.0.113.10/hook", want: ErrPrivateAddress},
		{url: "http://224.0.0.1/hook", want: ErrPrivateAddress},
		{url: "http://255.255.255.255/hook", want: ErrPrivateAddress},
		{url: "http://loopback.example.test/hook", want: ErrPrivateAddress},
		{url: "https://metadata.example.test/hook", want: ErrPrivateAddress},
		{url: "https://testnet.example.test/hook", want: ErrPrivateAddress},

		{url: "https://public.example.test/hook?token=x"},
		{url: "http://" + publicV4 + ":8080/hook"},
		{url: "https://100.128.0.1/hook"}, // just outside 100.64.0.0/10
		{url: "https://172.32.0.1/hook"},  // just outside 172.16.0.0/12
		{url: "https://[2606:4700::1111]/hook"},
		{url: "https://[::ffff:" + publicV4 + "]/hook"},
		{url: "https://[64:ff9b::5db8:d70e]/hook"}, // NAT64 of publicV4

		{url: "ftp://public.example.test/x", want: ErrInvalidURL},
		{url: "public.example.test/hook", want: ErrInvalidURL},
		{url: "http:///nohost", want: ErrInvalidURL},
		{url: "https://user:pass@public.example.test/hook", want: ErrInvalidURL},
		{url: "https://public.example.test:99999/hook", want: ErrInvalidURL},
		{url: "https://public.example.test/hook#frag", want: ErrInvalidURL},
		{url: "https://nxdomain.example.test/hook", want: ErrInvalidURL},
		{url: "mailto:a@b.c", want: ErrInvalidURL},
		{url: "://bad", want: ErrInvalidURL},

		// --webhook-allow-private: private targets are fine, syntax still checked.
		{url: "http://127.0.0.1:8080/hook", allowPrivate: true},
		{url: "http://localhost/hook", allowPrivate: true},
		{url: "http://[::1]/hook", allowPrivate: true},
		{url: "https://user@127.0.0.1/", allowPrivate: true, want: ErrInvalidURL},
	}
	for _, c := range cases {
		err := CheckURL(context.Background(), c.url, c.allowPrivate, res)
		if c.want == nil {
			assert.NoError(t, err, "CheckURL(%q, allowPrivate=%v)", c.url, c.allowPrivate)
		} else {
			assert.ErrorIs(t, err, c.want, "CheckURL(%q, allowPrivate=%v)", c.url, c.allowPrivate)
		}
	}
}

// TestBlocked walks the edges of every special-purpose range.
func TestBlocked(t *testing.T) {
	cases := []struct {
		addr    string
		blocked bool
	}{
		{"0.255.255.255", true},
		{"1.0.0.0", false},
		{"9.255.255.255", false},
		{"10.0.0.0", true},
		{"100.63.255.255", false},
		{"100.64.0.0", true},
		{"100.127.255.255", true},
		{"100.128.0.0", false},
		{"127.255.255.255", true},
		{"169.254.0.1", true},
		{"172.15.255.255", false},
		{"172.16.0.0", true},
		{"192.0.0.8", true},
		{"192.0.2.255", true},
		{"192.0.3.0", false},
		{"192.88.99.1", true},
		{"192.168.255.255", true},
		{"198.17.255.255", false},
		{"198.18.0.0", true},
		{"198.19.255.255", true},
		{"198.20.0.0", false},
		{"198.51.100.0", true},
		{"203.0.113.255", true},
		{"203.0.114.0", false},
		{"223.255.255.255", false},
		{"224.0.0.0", true},
		{"239.255.255.255", true},
		{"240.0.0.1", true},
		{"255.255.255.255", true},
		{publicV4, false},

		{"::", true},
		{"::1", true},
		{"::10.0.0.1", true},
		{"::ffff:0.0.0.0", true},
		{"::ffff:192.168.0.1", true},
		{"::ffff:100.64.0.1", true},
		{"::ffff:198.18.0.1", true},
		{"::ffff:" + publicV4, false},
		{"64:ff9b::10.0.0.1", true},
		{"64:ff9b::192.0.2.1", true},
		{"64:ff9b::" + publicV4, false},
		{"64:ff9b:1::1", true},
		{"64:ff9b:1:ffff:ffff:ffff:ffff:ffff", true},
		{"100::1", true},
		{"1fff:ffff::1", true}, // outside 2000::/3: unallocated
		{"2001::1", true},      // Teredo
		{"2001:1ff::1", true},  // IETF protocol assignments
		{"2001:200::1", false}, // first global allocation after 2001::/23
		{"2001:db8::", true},
		{"2001:db8:ffff::1", true},
		{"2001:db9::1", false},
		{"2002:a00:1::1", true},   // 6to4 of 10.0.0.1
		{"2002:c000:201::", true}, // 6to4 of 192.0.2.1
		{"2002:5db8:d70e::1", false},
		{"2606:4700::1111", false},
		{"3fff::1", true},
		{"4000::1", true},
		{"5f00::1", true},
		{"fc00::1", true},
		{"fdff:ffff::1", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"febf::1", true},
		{"fec0::1", true},
		{"ff02::1", true},
		{"ff0e::1", true},
	}
	for _, c := range cases {
		a, err := netip.ParseAddr(c.addr)
		require.NoError(t, err, c.addr)
		assert.Equal(t, c.blocked, blocked(a), "blocked(%s)", c.addr)
	}
	assert.True(t, blocked(netip.Addr{}), "the zero Addr is blocked")
}

// TestCheckURLHidesResolver: a failed lookup names the host, never the
// address of the daemon's resolver.
func TestCheckURLHidesResolver(t *testing.T) {
	res := stubResolver(t, map[string]string{})
	err := CheckURL(context.Background(), "https://nxdomain.example.test/hook", false, res)
	require.ErrorIs(t, err, ErrInvalidURL)
	assert.Equal(t, "webhook: invalid endpoint url: host nxdomain.example.test does not resolve", err.Error())

	cases := []struct {
		err  error
		want string
	}{
		{&net.DNSError{Err: "no such host", Name: "x.test", Server: "127.0.0.53:53", IsNotFound: true}, "host x.test does not resolve"},
		{&net.DNSError{Err: "i/o timeout", Name: "x.test", Server: "10.0.0.2:53", IsTimeout: true}, "host x.test: dns lookup timed out"},
		{&net.DNSError{Err: "server misbehaving", Name: "x.test", Server: "10.0.0.2:53"}, "host x.test: dns lookup failed"},
		{context.Canceled, "host x.test: dns lookup canceled"},
	}
	for _, c := range cases {
		got := lookupFailure("x.test", c.err)
		assert.Equal(t, c.want, got)
		assert.NotContains(t, got, ":53")
	}
}

// TestDescribeHidesInternalAddresses: the delivery log (read by the
// tenant) never shows the resolver's or the daemon's own address.
func TestDescribeHidesInternalAddresses(t *testing.T) {
	dnsErr := &url.Error{Op: "Post", URL: "https://hooks.example.test/in?token=secret", Err: &net.OpError{
		Op: "dial", Net: "tcp",
		Err: &net.DNSError{Err: "no such host", Name: "hooks.example.test", Server: "127.0.0.53:53", IsNotFound: true},
	}}
	assert.Equal(t, "host hooks.example.test does not resolve", describe(dnsErr, time.Second))

	resetErr := &url.Error{Op: "Post", URL: "https://hooks.example.test/in?token=secret", Err: &net.OpError{
		Op: "read", Net: "tcp",
		Source: &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 40000},
		Addr:   &net.TCPAddr{IP: net.ParseIP(publicV4), Port: 443},
		Err:    &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET},
	}}
	got := describe(resetErr, time.Second)
	assert.Equal(t, "read "+publicV4+":443: read: connection reset by peer", got)
	assert.NotContains(t, got, "10.1.2.3")
	assert.NotContains(t, got, "secret")
}

// TestClientRefusesPrivateAtDial: a URL accepted at registration (the
// name resolved to a public address then) is refused when at delivery time
// the name resolves to loopback (DNS rebinding), before any byte is sent.
func TestClientRefusesPrivateAtDial(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	hookURL := "http://hooks.example.test:" + port + "/in"

	atRegistration := stubResolver(t, map[string]string{"hooks.example.test": publicV4})
	require.NoError(t, CheckURL(context.Background(), hookURL, false, atRegistration), "CheckURL at registration")
	atDelivery := stubResolver(t, map[string]string{"hooks.example.test": "127.0.0.1"})
	cases := []struct {
		name   string
		client *http.Client
		url    string
	}{
		{"name rebinds to loopback", newClient(false, 2*time.Second, atDelivery), hookURL},
		{"loopback literal", NewClient(false, 2*time.Second), srv.URL},
		{"localhost", NewClient(false, 2*time.Second), strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)},
	}
	for _, c := range cases {
		resp, err := c.client.Post(c.url, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
		}
		assert.ErrorIs(t, err, ErrPrivateAddress, c.name)
	}
	assert.Zero(t, hits.Load(), "requests reaching the server")
	// The same rebound name with private addresses allowed reaches it.
	resp, err := newClient(true, 2*time.Second, atDelivery).Post(hookURL, "application/json", strings.NewReader("{}"))
	require.NoError(t, err, "POST with allowPrivate")
	resp.Body.Close()
	assert.EqualValues(t, 1, hits.Load(), "requests reaching the server with allowPrivate")
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	var targetHits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { targetHits.Add(1) }))
	t.Cleanup(target.Close)
	redirector := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	t.Cleanup(redirector.Close)

	c := NewClient(true, 2*time.Second)
	assert.Equal(t, 2*time.Second, c.Timeout)
	tr, ok := c.Transport.(*http.Transport)
	require.True(t, ok, "transport is %T, want *http.Transport", c.Transport)
	assert.Nil(t, tr.Proxy, "transport proxy")
	resp, err := c.Post(redirector.URL, "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode, "the 307 is returned as is")
	assert.Zero(t, targetHits.Load(), "requests reaching the redirect target")
	assert.Equal(t, DefaultTimeout, NewClient(false, 0).Timeout, "default timeout")
}
