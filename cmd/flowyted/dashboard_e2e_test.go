package main

import (
	"bytes"
	"net/http"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store/pgtest"
)

// dashCookie signs in to the dashboard of d with secret.
func dashCookie(t *testing.T, d *daemon, secret string) *http.Cookie {
	t.Helper()
	res, err := http.Post(d.url+"/session", "application/json", bytes.NewReader([]byte(`{"apiKey":"`+secret+`"}`)))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode, "dashboard sign-in")
	for _, c := range res.Cookies() {
		if c.Name == "flowyte_session" {
			return c
		}
	}
	require.FailNow(t, "sign-in set no flowyte_session cookie")
	return nil
}

// dashStatus answers GET /session on d with cookie c.
func dashStatus(t *testing.T, d *daemon, c *http.Cookie) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, d.url+"/session", nil)
	require.NoError(t, err)
	req.AddCookie(c)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	return res.StatusCode
}

// TestDashboardSessionsOnPostgres: behind a load balancer, a dashboard
// session made on one daemon works on the other, and survives restarting
// both (sessions are rows in PostgreSQL, not daemon memory).
func TestDashboardSessionsOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("two daemons on PostgreSQL")
	}
	dsn := pgtest.Start(t)
	data := t.TempDir()
	a := startDaemon(t, data, "--database", dsn)
	key := a.bootstrapKey()
	b := startDaemon(t, data, "--database", dsn)

	c := dashCookie(t, a, key)
	assert.Equal(t, http.StatusOK, dashStatus(t, b, c), "session of A on B")
	require.NoError(t, a.stop(syscall.SIGTERM))
	require.NoError(t, b.stop(syscall.SIGTERM))
	a = startDaemon(t, data, "--database", dsn)
	assert.Equal(t, http.StatusOK, dashStatus(t, a, c), "session after restarting both daemons")
}
