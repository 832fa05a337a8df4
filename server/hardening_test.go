package server_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server"
)

func TestMalformedQueryEscapeIsABadRequest(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("q")
	for _, path := range []string{
		"/agents?limit=%ZZ",
		"/agents/" + id + "/versions?cursor=%",
		"/agents/" + id + "/versions/draft/diff?base=%G1",
	} {
		r := e.do("GET", path, e.admin, nil)
		problemCode(t, r, 400, "invalid_request")
	}
	// A well-formed escape still works.
	e.must(200, "GET", "/agents?limit=%35", e.admin, nil)
}

func TestTenantContentIsNeverPubliclyCacheable(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("c")
	e.loadFixture(id, "acme-support")
	e.publish(id)
	for _, path := range []string{
		"/agents/" + id + "/versions/v1/compiled",
		"/agents/" + id + "/versions/v1/files/agent.yaml",
		"/agents/" + id + "/versions/published/compiled",
		"/agents/" + id + "/draft/files/agent.yaml",
		"/agents/" + id + "/draft",
	} {
		r := e.must(200, "GET", path, e.admin, nil)
		cc := r.Header.Get("Cache-Control")
		assert.Contains(t, cc, "private", path)
		assert.NotContains(t, cc, "public", path)
		assert.Contains(t, r.Header.Get("Vary"), "Authorization", path)
	}
}

func TestSlowBodyIsCutOffAtTheDeadline(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("slow")
	srv := httptest.NewServer(server.New(server.Deps{Backend: e.backend, Log: zerolog.Nop(), BodyTimeout: 300 * time.Millisecond}))
	defer srv.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /agents/%s/draft/files/knowledge/x.md HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 1000\r\n\r\n", id, e.admin)
	start := time.Now()
	done := make(chan *http.Response, 1)
	go func() {
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			done <- res
		}
		close(done)
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case res, ok := <-done:
			require.True(t, ok, "the server closed without an answer")
			assert.Equal(t, http.StatusRequestTimeout, res.StatusCode)
			assert.Less(t, time.Since(start), 10*time.Second, "cut off near the deadline, not after minutes")
			return
		case <-tick.C:
			_, _ = conn.Write([]byte("a")) // 20 B/s: never finishes 1000 bytes in time
		case <-time.After(20 * time.Second):
			require.FailNow(t, "a trickled body held the request for 20s")
		}
	}
}
