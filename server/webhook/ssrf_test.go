package webhook

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

func TestCheckURLRefusesPrivate(t *testing.T) {
	ctx := context.Background()
	res := stubResolver(t, map[string]string{
		"loopback.example.test": "127.0.0.1",
		"metadata.example.test": "169.254.169.254",
		"public.example.test":   "203.0.113.10",
	})
	refused := []string{
		"http://127.0.0.1/hook",
		"http://127.1.2.3:8080/hook",
		"http://localhost/hook",
		"http://LOCALHOST./hook",
		"http://api.localhost/hook",
		"http://[::1]/hook",
		"http://10.1.2.3/hook",
		"http://172.16.0.1/hook",
		"http://172.31.255.255/hook",
		"http://192.168.1.1/hook",
		"http://169.254.169.254/latest/meta-data",
		"http://0.0.0.0/hook",
		"http://[::]/hook",
		"http://[::ffff:127.0.0.1]/hook",
		"http://[::ffff:10.0.0.1]/hook",
		"http://[::127.0.0.1]/hook",
		"http://[fd00::1]/hook",
		"http://[fe80::1]/hook",
		"http://[ff02::1]/hook",
		"http://[64:ff9b::7f00:1]/hook",
		"http://[2002:7f00:1::]/hook",
		"http://100.64.0.1/hook",
		"http://100.127.255.254/hook",
		"http://224.0.0.1/hook",
		"http://255.255.255.255/hook",
		"http://loopback.example.test/hook",
		"https://metadata.example.test/hook",
	}
	for _, u := range refused {
		if err := CheckURL(ctx, u, false, res); !errors.Is(err, ErrPrivateAddress) {
			t.Errorf("CheckURL(%q) err = %v, want ErrPrivateAddress", u, err)
		}
	}
	accepted := []string{
		"https://public.example.test/hook?token=x",
		"http://203.0.113.10:8080/hook",
		"https://100.128.0.1/hook", // just outside 100.64.0.0/10
		"https://172.32.0.1/hook",  // just outside 172.16.0.0/12
		"https://[2001:db8::1]/hook",
	}
	for _, u := range accepted {
		if err := CheckURL(ctx, u, false, res); err != nil {
			t.Errorf("CheckURL(%q) = %v, want nil", u, err)
		}
	}
	invalid := []string{
		"ftp://public.example.test/x",
		"public.example.test/hook",
		"http:///nohost",
		"https://user:pass@public.example.test/hook",
		"https://public.example.test:99999/hook",
		"https://public.example.test/hook#frag",
		"https://nxdomain.example.test/hook",
		"mailto:a@b.c",
		"://bad",
	}
	for _, u := range invalid {
		if err := CheckURL(ctx, u, false, res); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("CheckURL(%q) err = %v, want ErrInvalidURL", u, err)
		}
	}
	// --webhook-allow-private: private targets are fine, syntax still checked.
	for _, u := range []string{"http://127.0.0.1:8080/hook", "http://localhost/hook", "http://[::1]/hook"} {
		if err := CheckURL(ctx, u, true, res); err != nil {
			t.Errorf("CheckURL(%q, allowPrivate) = %v, want nil", u, err)
		}
	}
	if err := CheckURL(ctx, "https://user@127.0.0.1/", true, res); !errors.Is(err, ErrInvalidURL) {
		t.Errorf("CheckURL(userinfo, allowPrivate) err = %v, want ErrInvalidURL", err)
	}
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

	atRegistration := stubResolver(t, map[string]string{"hooks.example.test": "203.0.113.10"})
	if err := CheckURL(context.Background(), hookURL, false, atRegistration); err != nil {
		t.Fatalf("CheckURL at registration: %v, want nil", err)
	}
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
			t.Fatalf("%s: POST status %d, want a dial error", c.name, resp.StatusCode)
		}
		if !errors.Is(err, ErrPrivateAddress) {
			t.Fatalf("%s: POST err = %v, want ErrPrivateAddress", c.name, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("server got %d requests, want 0", n)
	}
	// The same rebound name with private addresses allowed reaches it.
	resp, err := newClient(true, 2*time.Second, atDelivery).Post(hookURL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("POST with allowPrivate: %v, want success", err)
	}
	resp.Body.Close()
	if n := hits.Load(); n != 1 {
		t.Fatalf("server got %d requests with allowPrivate, want 1", n)
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	var targetHits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { targetHits.Add(1) }))
	t.Cleanup(target.Close)
	redirector := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	t.Cleanup(redirector.Close)

	c := NewClient(true, 2*time.Second)
	if c.Timeout != 2*time.Second {
		t.Fatalf("client timeout = %v, want 2s", c.Timeout)
	}
	if tr, ok := c.Transport.(*http.Transport); !ok || tr.Proxy != nil {
		t.Fatalf("client transport = %T with proxy set, want *http.Transport without proxy", c.Transport)
	}
	resp, err := c.Post(redirector.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("status = %d, want 307 returned as is", resp.StatusCode)
	}
	if n := targetHits.Load(); n != 0 {
		t.Fatalf("redirect target got %d requests, want 0", n)
	}
	if got := NewClient(false, 0).Timeout; got != DefaultTimeout {
		t.Fatalf("default timeout = %v, want %v", got, DefaultTimeout)
	}
}
