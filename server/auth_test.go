package server_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server"
	"github.com/flowyte/flowyte/server/backend"
)

func TestKeyFormat(t *testing.T) {
	k, err := backend.NewKeySecret()
	require.NoError(t, err)
	require.Len(t, k, len("flowyte_sk_")+38, "key %q has the wrong length", k)
	require.True(t, strings.HasPrefix(k, "flowyte_sk_"), "key %q has the wrong prefix", k)
	assert.NoError(t, backend.ParseKey(k), "fresh key refused")
	// Flip one random character: the checksum catches it.
	b := []byte(k)
	if b[15] == 'a' {
		b[15] = 'b'
	} else {
		b[15] = 'a'
	}
	assert.Error(t, backend.ParseKey(string(b)), "a mistyped key passed the checksum")
	for _, bad := range []string{"", "flowyte_sk_", "sk_" + k[11:], k + "x", k[:len(k)-1] + "!"} {
		assert.Error(t, backend.ParseKey(bad), "ParseKey(%q) = nil, want an error", bad)
	}
}

// TestAuthMatrix walks every authenticated route with no key, a bad key, a
// key lacking the scope, and another workspace's key.
func TestAuthMatrix(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("auth")
	e.publish(id)
	sess := str(t, e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id}).json(t), "id")
	wh := str(t, e.must(201, "POST", "/webhooks", e.admin, map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"version.published"}}).json(t), "id")
	lacking := map[string]string{ // a key of workspace a without the route's scope
		server.ScopeAgentsRead:    e.chatOnly,
		server.ScopeAgentsWrite:   e.reader,
		server.ScopeChatWrite:     e.reader,
		server.ScopeWebhooksWrite: e.reader,
		server.ScopeKeysWrite:     e.reader,
	}
	routes := []struct {
		method, path, scope string
		body                any
		tenant              bool // another workspace gets 404
	}{
		{"POST", "/agents", server.ScopeAgentsWrite, map[string]any{"name": "x"}, false},
		{"GET", "/agents", server.ScopeAgentsRead, nil, false},
		{"GET", "/agents/" + id, server.ScopeAgentsRead, nil, true},
		{"DELETE", "/agents/" + id, server.ScopeAgentsWrite, nil, true},
		{"GET", "/agents/" + id + "/draft", server.ScopeAgentsRead, nil, true},
		{"GET", "/agents/" + id + "/draft/files/agent.yaml", server.ScopeAgentsRead, nil, true},
		{"PUT", "/agents/" + id + "/draft/files/knowledge/x.md", server.ScopeAgentsWrite, []byte("x"), true},
		{"DELETE", "/agents/" + id + "/draft/files/knowledge/x.md", server.ScopeAgentsWrite, nil, true},
		{"POST", "/agents/" + id + "/draft/commits", server.ScopeAgentsWrite, map[string]any{"changes": []map[string]any{{"path": "knowledge/y.md", "content": "y"}}}, true},
		{"GET", "/agents/" + id + "/draft/history", server.ScopeAgentsRead, nil, true},
		{"GET", "/agents/" + id + "/draft/settings", server.ScopeAgentsRead, nil, true},
		{"PUT", "/agents/" + id + "/draft/settings", server.ScopeAgentsWrite, map[string]any{"name": "n"}, true},
		{"GET", "/agents/" + id + "/draft/knowledge", server.ScopeAgentsRead, nil, true},
		{"GET", "/agents/" + id + "/draft/knowledge/x", server.ScopeAgentsRead, nil, true},
		{"PUT", "/agents/" + id + "/draft/knowledge/x", server.ScopeAgentsWrite, map[string]any{"content": "x"}, true},
		{"DELETE", "/agents/" + id + "/draft/knowledge/x", server.ScopeAgentsWrite, nil, true},
		{"POST", "/agents/" + id + "/publish", server.ScopeAgentsWrite, nil, true},
		{"POST", "/agents/" + id + "/rollback", server.ScopeAgentsWrite, map[string]any{"version": "v1"}, true},
		{"GET", "/agents/" + id + "/versions", server.ScopeAgentsRead, nil, true},
		{"GET", "/agents/" + id + "/versions/v1", server.ScopeAgentsRead, nil, true},
		{"GET", "/agents/" + id + "/versions/v1/compiled", server.ScopeAgentsRead, nil, true},
		{"GET", "/agents/" + id + "/versions/v1/files/agent.yaml", server.ScopeAgentsRead, nil, true},
		{"GET", "/agents/" + id + "/versions/v1/diff", server.ScopeAgentsRead, nil, true},
		{"GET", "/agents/" + id + "/prepublish-report", server.ScopeAgentsRead, nil, true},
		{"GET", "/agents/" + id + "/deployments", server.ScopeAgentsRead, nil, true},
		{"GET", "/agents/" + id + "/channels", server.ScopeAgentsRead, nil, true},
		{"GET", "/usage?agentId=" + id, server.ScopeAgentsRead, nil, true},
		{"POST", "/chat/sessions", server.ScopeChatWrite, map[string]any{"agentId": id}, true},
		{"GET", "/chat/sessions/" + sess, server.ScopeChatWrite, nil, true},
		{"POST", "/chat/sessions/" + sess + "/messages", server.ScopeChatWrite, map[string]any{"text": "hi"}, true},
		{"POST", "/webhooks", server.ScopeWebhooksWrite, map[string]any{"url": "http://127.0.0.1:9/x", "events": []string{"version.published"}}, false},
		{"GET", "/webhooks", server.ScopeWebhooksWrite, nil, false},
		{"GET", "/webhooks/" + wh, server.ScopeWebhooksWrite, nil, true},
		{"DELETE", "/webhooks/" + wh, server.ScopeWebhooksWrite, nil, true},
		{"GET", "/webhooks/" + wh + "/deliveries", server.ScopeWebhooksWrite, nil, true},
		{"POST", "/webhooks/" + wh + "/deliveries/msg_x/redeliver", server.ScopeWebhooksWrite, nil, true},
		{"POST", "/keys", server.ScopeKeysWrite, map[string]any{"name": "k", "scopes": []string{"agents:read"}}, false},
		{"GET", "/keys", server.ScopeKeysWrite, nil, false},
		{"DELETE", "/keys/key_nope", server.ScopeKeysWrite, nil, false},
	}
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			r := e.do(rt.method, rt.path, "", rt.body)
			problemCode(t, r, 401, "unauthorized")
			assert.Equal(t, `Bearer realm="flowyte"`, r.Header.Get("WWW-Authenticate"), "no key: WWW-Authenticate")
			r = e.do(rt.method, rt.path, "flowyte_sk_00000000000000000000000000000000AAAAAA", rt.body)
			problemCode(t, r, 401, "unauthorized")
			assert.Contains(t, r.Header.Get("WWW-Authenticate"), `error="invalid_token"`, "bad key: WWW-Authenticate")
			r = e.do(rt.method, rt.path, lacking[rt.scope], rt.body)
			problemCode(t, r, 403, "insufficient_scope")
			want := `Bearer error="insufficient_scope", scope="` + rt.scope + `"`
			assert.Equal(t, want, r.Header.Get("WWW-Authenticate"), "lacking scope: WWW-Authenticate")
			if rt.tenant {
				r = e.do(rt.method, rt.path, e.other, rt.body)
				assert.Equal(t, 404, r.StatusCode, "other workspace: status\n%s", r.body)
			}
		})
	}
	// A revoked key is an invalid token.
	k := e.key("a", "temp", server.ScopeAgentsRead)
	e.must(200, "GET", "/agents", k, nil)
	keys := arr(t, e.must(200, "GET", "/keys", e.admin, nil).json(t), "data")
	revoked := 0
	for i := range keys {
		if x := elem(t, keys, i); x["name"] == "temp" {
			e.must(204, "DELETE", "/keys/"+str(t, x, "id"), e.admin, nil)
			revoked++
		}
	}
	require.Equal(t, 1, revoked, "keys named temp in the list %v", keys)
	r := e.do("GET", "/agents", k, nil)
	problemCode(t, r, 401, "unauthorized")
	assert.Contains(t, r.Header.Get("WWW-Authenticate"), "invalid_token", "revoked key: WWW-Authenticate")
}

func TestOpenEndpointsNeedNoKey(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/healthz", "/readyz", "/openapi.json", "/problems/no_published_version"} {
		r := e.do("GET", p, "", nil)
		assert.Equal(t, 200, r.StatusCode, "GET %s: status", p)
		assert.NotEmpty(t, r.Header.Get("X-Request-Id"), "GET %s: no X-Request-Id", p)
	}
	r := e.do("GET", "/healthz", "", nil, "X-Request-Id", "trace-123")
	assert.Equal(t, "trace-123", r.Header.Get("X-Request-Id"), "X-Request-Id not echoed")
	problemCode(t, e.do("GET", "/metrics", "", nil), 401, "unauthorized")
	m := e.must(200, "GET", "/metrics", e.reader, nil)
	for _, name := range []string{"flowyte_http_requests_total", "flowyte_http_request_duration_seconds", "flowyte_publishes_total", "flowyte_compile_failures_total"} {
		assert.Contains(t, string(m.body), name, "/metrics lacks %s", name)
	}
}

func TestRequestIDEchoed(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"abc", "trace id with spaces", strings.Repeat("x", 200)} {
		assert.Equal(t, id, e.do("GET", "/healthz", "", nil, "X-Request-Id", id).Header.Get("X-Request-Id"), "X-Request-Id echoed")
	}
	got := e.do("GET", "/healthz", "", nil).Header.Get("X-Request-Id")
	assert.GreaterOrEqual(t, len(got), 16, "no generated X-Request-Id: %q", got)
}
