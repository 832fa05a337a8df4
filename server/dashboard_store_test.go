package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server"
	"github.com/flowyte/flowyte/server/backend"
	"github.com/flowyte/flowyte/server/dashboard"
	"github.com/flowyte/flowyte/server/store"
)

// daemonOver serves a second daemon over e's repositories and the given
// store, as another process behind the same load balancer would.
func daemonOver(t *testing.T, e *env, st backend.Store) *httptest.Server {
	t.Helper()
	opts := e.opts
	opts.Store = st
	srv := httptest.NewServer(server.New(server.Deps{Backend: backend.New(opts), Log: zerolog.Nop()}))
	t.Cleanup(srv.Close)
	return srv
}

// dashSignIn signs in with secret on base and returns the session cookie.
func dashSignIn(t *testing.T, base, secret string) *http.Cookie {
	t.Helper()
	body, err := json.Marshal(map[string]string{"apiKey": secret})
	require.NoError(t, err)
	res, err := http.Post(base+"/session", "application/json", strings.NewReader(string(body)))
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode, "sign-in status")
	for _, c := range res.Cookies() {
		if c.Name == dashboard.CookieName {
			return c
		}
	}
	t.Fatalf("sign-in set no %s cookie", dashboard.CookieName)
	return nil
}

// dashSession answers GET /session on base with cookie c: the status and
// the session's keyId.
func dashSession(t *testing.T, base string, c *http.Cookie) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/session", nil)
	require.NoError(t, err)
	req.AddCookie(c)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var out struct {
		KeyID string `json:"keyId"`
	}
	if res.StatusCode == http.StatusOK {
		require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	}
	return res.StatusCode, out.KeyID
}

// TestDashboardSessionsSharedAcrossDaemons: a dashboard session made on
// one daemon is accepted by another over the same database, survives a
// restart (a fresh store and server over the same file), ends everywhere
// on sign-out, and ends with its key.
func TestDashboardSessionsSharedAcrossDaemons(t *testing.T) {
	e := newEnv(t)
	b := daemonOver(t, e, e.store)
	secret := e.key("a", "dashboard", backend.AllScopes...)

	cookie := dashSignIn(t, e.srv.URL, secret)
	status, keyID := dashSession(t, b.URL, cookie)
	require.Equal(t, http.StatusOK, status, "session of daemon A on daemon B")
	require.NotEmpty(t, keyID)

	// Only the SHA-256 of the token is in the database.
	h := sha256.Sum256([]byte(cookie.Value))
	row, err := e.store.DashboardSession(context.Background(), h[:])
	require.NoError(t, err, "stored row by token hash")
	assert.Equal(t, keyID, row.KeyID)
	sq, ok := e.store.(*store.Store)
	if !ok {
		t.Log("the raw-token and restart checks reopen a SQLite file: PostgreSQL covers them in cmd/flowyted/dashboard_e2e_test.go")
		return
	}
	var n int
	require.NoError(t, sq.DB().QueryRow(`SELECT count(*) FROM dashboard_sessions WHERE token_hash = ? OR key_ref = ?`,
		[]byte(cookie.Value), cookie.Value).Scan(&n))
	assert.Zero(t, n, "the raw token is stored")

	// A restart: a new store handle and server over the same database file.
	st2, err := store.Open(filepath.Join(e.dir, "flowyte.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st2.Close() })
	c := daemonOver(t, e, st2)
	status, _ = dashSession(t, c.URL, cookie)
	assert.Equal(t, http.StatusOK, status, "session after a restart")

	// Sign-out on B ends it on A too.
	other := dashSignIn(t, b.URL, secret)
	req, err := http.NewRequest(http.MethodDelete, b.URL+"/session", nil)
	require.NoError(t, err)
	req.AddCookie(other)
	req.Header.Set(dashboard.CSRFHeader, csrfOf(t, b.URL, other))
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusNoContent, res.StatusCode, "sign-out on B")
	status, _ = dashSession(t, e.srv.URL, other)
	assert.Equal(t, http.StatusUnauthorized, status, "signed-out session on A")

	// Revoking the key (through daemon A's API) ends the session on every
	// daemon and deletes its row.
	e.must(http.StatusNoContent, "DELETE", "/keys/"+keyID, e.admin, nil)
	status, _ = dashSession(t, c.URL, cookie)
	assert.Equal(t, http.StatusUnauthorized, status, "session of a revoked key on C")
	status, _ = dashSession(t, b.URL, cookie)
	assert.Equal(t, http.StatusUnauthorized, status, "session of a revoked key on B")
	_, err = e.store.DashboardSession(context.Background(), h[:])
	assert.ErrorIs(t, err, store.ErrNotFound, "row of a revoked key's session")
}

// csrfOf reads the CSRF token of cookie c's session from base.
func csrfOf(t *testing.T, base string, c *http.Cookie) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/session", nil)
	require.NoError(t, err)
	req.AddCookie(c)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	var out struct {
		CSRF string `json:"csrfToken"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	return out.CSRF
}
