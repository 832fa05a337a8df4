package dashboard_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/dashboard"
)

// client is a cookie-carrying HTTP client signed in to d.
type client struct {
	tb   testing.TB
	d    *daemon
	http *http.Client
	csrf string
}

func (d *daemon) signIn(tb testing.TB, key string) *client {
	tb.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(tb, err)
	c := &client{tb: tb, d: d, http: &http.Client{Jar: jar}}
	res, body := c.do("POST", "/session", `{"apiKey":"`+key+`"}`)
	require.Equal(tb, 201, res.StatusCode, body)
	var s map[string]any
	require.NoError(tb, json.Unmarshal([]byte(body), &s))
	c.csrf = s["csrfToken"].(string)
	return c
}

func (c *client) do(method, path, body string, headers ...string) (*http.Response, string) {
	c.tb.Helper()
	var rdr io.Reader
	if body != "" {
		rdr = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.d.srv.URL+path, rdr)
	require.NoError(c.tb, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.http.Do(req)
	require.NoError(c.tb, err)
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res, string(data)
}

func detail(tb testing.TB, body string) string {
	tb.Helper()
	var p map[string]any
	require.NoError(tb, json.Unmarshal([]byte(body), &p), body)
	s, _ := p["detail"].(string)
	return s
}

// TestCookieStandsInForBearer: every API route accepts the session cookie;
// state-changing ones need X-CSRF-Token and the own Origin.
func TestCookieStandsInForBearer(t *testing.T) {
	d := newDaemon(t)
	c := d.signIn(t, d.admin)
	own := d.srv.URL

	res, body := c.do("GET", "/agents", "")
	require.Equal(t, 200, res.StatusCode, body)
	assert.Contains(t, body, "Acme Support")

	tests := []struct {
		name    string
		headers []string
		status  int
		code    string
	}{
		{"no token", nil, 403, "csrf_failed"},
		{"wrong token", []string{dashboard.CSRFHeader, "nope"}, 403, "csrf_failed"},
		{"token, other origin", []string{dashboard.CSRFHeader, c.csrf, "Origin", "http://127.0.0.1:1"}, 403, "csrf_failed"},
		{"token, cross-site fetch", []string{dashboard.CSRFHeader, c.csrf, "Sec-Fetch-Site", "cross-site"}, 403, "csrf_failed"},
		{"token, own origin", []string{dashboard.CSRFHeader, c.csrf, "Origin", own}, 201, ""},
		{"token, no origin", []string{dashboard.CSRFHeader, c.csrf}, 201, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, body := c.do("POST", "/agents", `{"name":"x"}`, tc.headers...)
			assert.Equal(t, tc.status, res.StatusCode, body)
			if tc.code != "" {
				assert.Equal(t, tc.code, detail(t, body))
				assert.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
			}
		})
	}
	list := d.api("GET", "/agents", d.admin, nil, 200)
	assert.Len(t, list["data"], 3, "only the two accepted requests created agents")

	// The problem page of the new code exists.
	res, _ = c.do("GET", "/problems/csrf_failed", "")
	assert.Equal(t, 200, res.StatusCode)
}

// TestSessionHonoursScopesAndRevocation: the cookie carries the key's
// scopes, and revoking the key ends the session at the next request.
func TestSessionHonoursScopesAndRevocation(t *testing.T) {
	d := newDaemon(t)
	r := d.signIn(t, d.reader)
	res, body := r.do("POST", "/agents/"+d.agent+"/publish", `{}`, dashboard.CSRFHeader, r.csrf)
	assert.Equal(t, 403, res.StatusCode)
	assert.Equal(t, "insufficient_scope", detail(t, body))
	res, body = r.do("GET", "/session", "")
	require.Equal(t, 200, res.StatusCode)
	assert.Contains(t, body, `"scopes":["agents:read","chat:write"]`)

	keys := d.api("GET", "/keys", d.admin, nil, 200)
	var readerID string
	for _, k := range keys["data"].([]any) {
		if k.(map[string]any)["name"] == "reader" {
			readerID = k.(map[string]any)["id"].(string)
		}
	}
	require.NotEmpty(t, readerID)
	d.api("DELETE", "/keys/"+readerID, d.admin, nil, 204)
	res, body = r.do("GET", "/agents", "")
	assert.Equal(t, 401, res.StatusCode, body)
	res, _ = r.do("GET", "/session", "")
	assert.Equal(t, 401, res.StatusCode)
}

// TestSignOutEndsSession and a Bearer header still wins over a cookie.
func TestSignOutEndsSession(t *testing.T) {
	d := newDaemon(t)
	c := d.signIn(t, d.admin)
	res, _ := c.do("DELETE", "/session", "", dashboard.CSRFHeader, c.csrf)
	require.Equal(t, 204, res.StatusCode)
	res, _ = c.do("GET", "/agents", "")
	assert.Equal(t, 401, res.StatusCode)
	res, _ = c.do("GET", "/agents", "", "Authorization", "Bearer "+d.reader)
	assert.Equal(t, 200, res.StatusCode)

	res, body := c.do("POST", "/session", `{"apiKey":"flowyte_sk_nope"}`)
	assert.Equal(t, 401, res.StatusCode)
	assert.Equal(t, "unauthorized", detail(t, body))
}

// TestPagesServedWithSecurityHeaders: GET / and client routes serve the
// app with the strict CSP; API paths are untouched.
func TestPagesServedWithSecurityHeaders(t *testing.T) {
	d := newDaemon(t)
	for _, p := range []string{"/", "/ui/agents/" + d.agent + "/review", "/assets/app.js", "/assets/app.css"} {
		res, err := http.Get(d.srv.URL + p)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, 200, res.StatusCode, p)
		assert.Equal(t, dashboard.ContentSecurityPolicy, res.Header.Get("Content-Security-Policy"), p)
		assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"), p)
		assert.Equal(t, "no-referrer", res.Header.Get("Referrer-Policy"), p)
	}
	req, _ := http.NewRequestWithContext(context.Background(), "GET", d.srv.URL+"/agents", nil)
	req.Header.Set("Accept", "text/html")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 401, res.StatusCode, "API paths stay the API even for browsers")
}
