package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeKeys is a Verifier over one known key that can be revoked.
type fakeKeys struct {
	mu      sync.Mutex
	revoked bool
}

const goodKey = "flowyte_sk_good"

func (f *fakeKeys) Verify(_ context.Context, secret string) (Principal, error) {
	if secret != goodKey {
		return Principal{}, ErrInvalidCredentials
	}
	return f.Lookup(context.Background(), "ref-1")
}

func (f *fakeKeys) Lookup(_ context.Context, ref string) (Principal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.revoked || ref != "ref-1" {
		return Principal{}, ErrInvalidCredentials
	}
	return Principal{KeyID: "key_1", Name: "admin", WorkspaceID: "ws_1", Scopes: []string{"agents:read"}, Ref: ref}, nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestSessions(tb testing.TB) (*Sessions, *fakeKeys, *clock, *MemoryStore) {
	tb.Helper()
	keys := &fakeKeys{}
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st := NewMemoryStore()
	return NewSessions(SessionsOptions{Verifier: keys, Store: st, Now: clk.now}), keys, clk, st
}

// signIn posts the key and returns the response.
func signIn(tb testing.TB, s *Sessions, key string, headers ...string) *httptest.ResponseRecorder {
	tb.Helper()
	body, _ := json.Marshal(map[string]string{"apiKey": key})
	r := httptest.NewRequest("POST", "http://dash.test/session", strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func withCookie(r *http.Request, w *httptest.ResponseRecorder) *http.Request {
	for _, c := range w.Result().Cookies() {
		r.AddCookie(c)
	}
	return r
}

func TestSignInSetsStrictHttpOnlyCookieAndStoresOnlyTheHash(t *testing.T) {
	s, _, _, st := newTestSessions(t)
	w := signIn(t, s, goodKey)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	cookies := w.Result().Cookies()
	require.Len(t, cookies, 1)
	c := cookies[0]
	assert.Equal(t, CookieName, c.Name)
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
	assert.Equal(t, "/", c.Path)
	assert.False(t, c.Secure, "plain HTTP request: no Secure")
	assert.GreaterOrEqual(t, len(c.Value), 43, "32 random bytes, base64url")

	var got map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	assert.Equal(t, "key_1", got["keyId"])
	assert.Equal(t, "admin", got["name"])
	assert.Equal(t, "ws_1", got["workspaceId"])
	assert.NotEmpty(t, got["csrfToken"])
	assert.NotContains(t, w.Body.String(), c.Value, "the token is only in the cookie")
	assert.NotContains(t, w.Body.String(), "ref-1")

	require.Equal(t, 1, st.Len())
	_, err := st.Get(context.Background(), hashToken(c.Value))
	assert.NoError(t, err)
	st.mu.Lock()
	for h := range st.m {
		assert.NotContains(t, string(h[:]), c.Value)
	}
	st.mu.Unlock()
}

func TestSignInSecureCookieOverTLS(t *testing.T) {
	s, _, _, _ := newTestSessions(t)
	body := `{"apiKey":"` + goodKey + `"}`
	r := httptest.NewRequest("POST", "https://dash.test/session", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	require.Equal(t, http.StatusCreated, w.Code)
	assert.True(t, w.Result().Cookies()[0].Secure)
}

func TestSignInRefusals(t *testing.T) {
	s, _, _, _ := newTestSessions(t)
	tests := []struct {
		name    string
		body    string
		ctype   string
		headers []string
		status  int
		code    string
	}{
		{"unknown key", `{"apiKey":"flowyte_sk_bad"}`, "application/json", nil, 401, "unauthorized"},
		{"empty key", `{"apiKey":""}`, "application/json", nil, 401, "unauthorized"},
		{"not json", `apiKey=x`, "application/json", nil, 400, "invalid_request"},
		{"form post", `apiKey=x`, "application/x-www-form-urlencoded", nil, 415, "unsupported_media_type"},
		{"other origin", `{"apiKey":"` + goodKey + `"}`, "application/json", []string{"Origin", "http://evil.test"}, 403, "csrf_failed"},
		{"same site other port", `{"apiKey":"` + goodKey + `"}`, "application/json", []string{"Sec-Fetch-Site", "same-site"}, 403, "csrf_failed"},
		{"huge body", `{"apiKey":"` + strings.Repeat("a", 5000) + `"}`, "application/json", nil, 413, "payload_too_large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "http://dash.test/session", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", tc.ctype)
			for i := 0; i+1 < len(tc.headers); i += 2 {
				r.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			assert.Equal(t, tc.status, w.Code, w.Body.String())
			assert.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
			var p map[string]any
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
			assert.Equal(t, tc.code, p["detail"])
			assert.Equal(t, "/problems/"+tc.code, p["type"])
			assert.Empty(t, w.Result().Cookies())
		})
	}
}

func TestResolveChecksCSRFOnStateChangingRequests(t *testing.T) {
	s, _, _, _ := newTestSessions(t)
	w := signIn(t, s, goodKey)
	require.Equal(t, http.StatusCreated, w.Code)
	var sess Session
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &sess))

	tests := []struct {
		name    string
		method  string
		headers []string
		wantErr error
	}{
		{"GET needs no token", "GET", nil, nil},
		{"HEAD needs no token", "HEAD", nil, nil},
		{"POST with token", "POST", []string{CSRFHeader, sess.CSRFToken}, nil},
		{"POST with token and own origin", "POST", []string{CSRFHeader, sess.CSRFToken, "Origin", "http://dash.test", "Sec-Fetch-Site", "same-origin"}, nil},
		{"POST without token", "POST", nil, ErrCSRF},
		{"PUT with wrong token", "PUT", []string{CSRFHeader, sess.CSRFToken + "x"}, ErrCSRF},
		{"DELETE with token from another origin", "DELETE", []string{CSRFHeader, sess.CSRFToken, "Origin", "http://dash.test:9000"}, ErrCSRF},
		{"POST with token, null origin", "POST", []string{CSRFHeader, sess.CSRFToken, "Origin", "null"}, ErrCSRF},
		{"POST cross-site fetch", "POST", []string{CSRFHeader, sess.CSRFToken, "Sec-Fetch-Site", "cross-site"}, ErrCSRF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := withCookie(httptest.NewRequest(tc.method, "http://dash.test/agents", nil), w)
			for i := 0; i+1 < len(tc.headers); i += 2 {
				r.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			got, err := s.Resolve(r)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "key_1", got.KeyID)
			assert.Equal(t, sess.CSRFToken, got.CSRFToken)
		})
	}
}

func TestSessionExpiresIdleAndAbsolute(t *testing.T) {
	s, _, clk, st := newTestSessions(t)
	w := signIn(t, s, goodKey)
	get := func() error {
		_, err := s.Resolve(withCookie(httptest.NewRequest("GET", "http://dash.test/agents", nil), w))
		return err
	}
	// Active use every 11 h keeps it alive until the 7-day cap.
	for clk.t.Add(11*time.Hour).Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) < DefaultMaxAge {
		clk.t = clk.t.Add(11 * time.Hour)
		require.NoError(t, get(), "at %s", clk.t)
	}
	clk.t = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(DefaultMaxAge + time.Minute)
	assert.ErrorIs(t, get(), ErrNoSession)
	assert.Equal(t, 0, st.Len(), "an expired session is deleted")

	w = signIn(t, s, goodKey)
	clk.t = clk.t.Add(DefaultIdleTimeout + time.Second)
	assert.ErrorIs(t, get(), ErrNoSession)
}

func TestRevokedKeyEndsSession(t *testing.T) {
	s, keys, _, st := newTestSessions(t)
	w := signIn(t, s, goodKey)
	r := withCookie(httptest.NewRequest("GET", "http://dash.test/session", nil), w)
	_, err := s.Resolve(r)
	require.NoError(t, err)
	keys.mu.Lock()
	keys.revoked = true
	keys.mu.Unlock()
	_, err = s.Resolve(r)
	assert.ErrorIs(t, err, ErrNoSession)
	assert.Equal(t, 0, st.Len())
}

func TestSessionEndpoints(t *testing.T) {
	s, _, _, st := newTestSessions(t)
	w := signIn(t, s, goodKey)
	var sess Session
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &sess))

	// GET /session: 200 with the same CSRF token; 401 without a cookie.
	g := httptest.NewRecorder()
	s.ServeHTTP(g, withCookie(httptest.NewRequest("GET", "http://dash.test/session", nil), w))
	require.Equal(t, 200, g.Code)
	assert.Contains(t, g.Body.String(), sess.CSRFToken)
	assert.Equal(t, "no-store", g.Header().Get("Cache-Control"))
	g = httptest.NewRecorder()
	s.ServeHTTP(g, httptest.NewRequest("GET", "http://dash.test/session", nil))
	assert.Equal(t, 401, g.Code)

	// DELETE without the CSRF token is refused and keeps the session.
	d := httptest.NewRecorder()
	s.ServeHTTP(d, withCookie(httptest.NewRequest("DELETE", "http://dash.test/session", nil), w))
	assert.Equal(t, 403, d.Code)
	assert.Equal(t, 1, st.Len())

	// DELETE with it signs out and clears the cookie.
	r := withCookie(httptest.NewRequest("DELETE", "http://dash.test/session", nil), w)
	r.Header.Set(CSRFHeader, sess.CSRFToken)
	d = httptest.NewRecorder()
	s.ServeHTTP(d, r)
	assert.Equal(t, 204, d.Code)
	assert.Equal(t, 0, st.Len())
	require.Len(t, d.Result().Cookies(), 1)
	assert.Equal(t, -1, d.Result().Cookies()[0].MaxAge)

	g = httptest.NewRecorder()
	s.ServeHTTP(g, withCookie(httptest.NewRequest("GET", "http://dash.test/session", nil), w))
	assert.Equal(t, 401, g.Code, "the old cookie no longer works")

	p := httptest.NewRecorder()
	s.ServeHTTP(p, httptest.NewRequest("PATCH", "http://dash.test/session", nil))
	assert.Equal(t, 405, p.Code)
}

func TestMemoryStoreBounded(t *testing.T) {
	st := NewMemoryStore()
	ctx := context.Background()
	base := time.Unix(0, 0)
	for i := range maxMemorySessions + 5 {
		var h [32]byte
		h[0], h[1] = byte(i), byte(i>>8)
		require.NoError(t, st.Create(ctx, Record{TokenHash: h, LastSeen: base.Add(time.Duration(i) * time.Second)}))
	}
	assert.Equal(t, maxMemorySessions, st.Len())
	var first [32]byte
	_, err := st.Get(ctx, first)
	assert.ErrorIs(t, err, ErrSessionNotFound, "the least recently seen is dropped")
}

func TestSignInAgainReplacesTheSession(t *testing.T) {
	s, _, _, st := newTestSessions(t)
	first := signIn(t, s, goodKey)
	body := `{"apiKey":"` + goodKey + `"}`
	r := withCookie(httptest.NewRequest("POST", "http://dash.test/session", strings.NewReader(body)), first)
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	require.Equal(t, http.StatusCreated, w.Code)
	assert.Equal(t, 1, st.Len(), "the old session is gone")
	_, err := s.Resolve(withCookie(httptest.NewRequest("GET", "http://dash.test/session", nil), first))
	assert.ErrorIs(t, err, ErrNoSession)
	_, err = s.Resolve(withCookie(httptest.NewRequest("GET", "http://dash.test/session", nil), w))
	assert.NoError(t, err)
}
