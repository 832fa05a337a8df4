package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store/pgtest"
)

// readyStatus answers GET /readyz on d.
func readyStatus(d *daemon) int {
	client := &http.Client{Timeout: 10 * time.Second}
	res, err := client.Get(d.url + "/readyz")
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// TestPostgresOutage stops PostgreSQL under two running daemons and starts
// it again: while it is down /readyz answers 503, /healthz 200, and API
// calls fail fast with a 503 unavailable problem (no hang); once it is back both
// daemons are ready again without a restart, writes work, and the
// LISTEN/NOTIFY cache invalidation between daemons has reconnected.
func TestPostgresOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a PostgreSQL cluster")
	}
	c := pgtest.NewCluster(t)
	dsn := pgtest.CreateDatabase(t, c.URL("postgres"))
	data := t.TempDir()
	a := startDaemon(t, data, "--database", dsn)
	key := a.bootstrapKey()
	b := startDaemon(t, data, "--database", dsn)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon A:\n%s\ndaemon B:\n%s", a.logs, b.logs)
		}
	})
	id := strField(t, mustCall(t, "POST", a.url+"/agents", key, map[string]any{"name": "outage"}, 201), "id")
	mustCall(t, "PUT", a.url+"/agents/"+id+"/draft/files/knowledge/hours.md", key, []byte("# Hours\n\n9 to 5\n"), 200)
	mustCall(t, "POST", a.url+"/agents/"+id+"/publish", key, map[string]any{}, 201)
	for _, d := range []*daemon{a, b} {
		require.Equal(t, 200, readyStatus(d), "readyz before the outage")
	}

	require.NoError(t, c.Stop(), "stop PostgreSQL")
	for _, d := range []*daemon{a, b} {
		assert.Eventually(t, func() bool { return readyStatus(d) == 503 }, 10*time.Second, 50*time.Millisecond,
			"readyz of %s while PostgreSQL is down, want 503", d.url)
		mustCall(t, "GET", d.url+"/healthz", "", nil, 200)
	}

	// Writes and reads fail fast with a problem, on both daemons.
	client := &http.Client{Timeout: 30 * time.Second}
	for i, req := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/agents", map[string]any{"name": "during"}},
		{"PUT", "/agents/" + id + "/draft/files/knowledge/during.md", []byte("# During\n\nthe outage\n")},
		{"POST", "/agents/" + id + "/publish", map[string]any{}},
		{"GET", "/agents/" + id, nil},
		{"POST", "/chat/sessions", map[string]any{"agentId": id}},
	} {
		d := []*daemon{a, b}[i%2]
		start := time.Now()
		st, body, err := call(client, req.method, d.url+req.path, key, req.body)
		took := time.Since(start)
		require.NoError(t, err, "%s %s while PostgreSQL is down (after %v)", req.method, req.path, took)
		assert.Equal(t, 503, st, "%s %s while PostgreSQL is down: status, body %v", req.method, req.path, body)
		assert.Equal(t, "/problems/unavailable", body["type"], "%s %s: problem type, body %v", req.method, req.path, body)
		assert.Less(t, took, 15*time.Second, "%s %s took %v while PostgreSQL is down", req.method, req.path, took)
		t.Logf("%s %s during the outage: %d %v in %v", req.method, req.path, st, body["detail"], took.Round(time.Millisecond))
	}

	require.NoError(t, c.Start(), "start PostgreSQL again")
	for _, d := range []*daemon{a, b} {
		start := time.Now()
		assert.Eventually(t, func() bool { return readyStatus(d) == 200 }, 30*time.Second, 100*time.Millisecond,
			"readyz of %s after PostgreSQL is back, want 200", d.url)
		t.Logf("%s ready %v after PostgreSQL came back", d.url, time.Since(start).Round(time.Millisecond))
	}

	// Writes work again on both, without a daemon restart.
	for i, d := range []*daemon{a, b} {
		mustCall(t, "PUT", fmt.Sprintf("%s/agents/%s/draft/files/knowledge/after%d.md", d.url, id, i), key, []byte("# After\n\nthe outage\n"), 200)
		mustCall(t, "POST", d.url+"/agents", key, map[string]any{"name": fmt.Sprintf("after-%d", i)}, 201)
	}
	v := mustCall(t, "POST", b.url+"/agents/"+id+"/publish", key, map[string]any{}, 201)
	assert.EqualValues(t, 2, v["number"], "the publish after the outage")

	// The daemons hear each other again (LISTEN reconnected): a rename
	// through one is seen by the other.
	mustCall(t, "PUT", a.url+"/agents/"+id+"/draft/settings", key, map[string]any{"name": "renamed"}, 200)
	assert.Eventually(t, func() bool {
		_, body, err := call(http.DefaultClient, "GET", b.url+"/agents/"+id, key, nil)
		return err == nil && body["name"] == "renamed"
	}, 10*time.Second, 50*time.Millisecond, "the other daemon sees the rename after the outage")
}
