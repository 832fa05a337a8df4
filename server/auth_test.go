package server_test

import (
	"strings"
	"testing"

	"github.com/flowyte/flowyte/server"
	"github.com/flowyte/flowyte/server/backend"
)

func TestKeyFormat(t *testing.T) {
	k, err := backend.NewKeySecret()
	if err != nil {
		t.Fatal(err)
	}
	if len(k) != len("flowyte_sk_")+38 || !strings.HasPrefix(k, "flowyte_sk_") {
		t.Fatalf("key %q has the wrong shape", k)
	}
	if err := backend.ParseKey(k); err != nil {
		t.Fatalf("fresh key refused: %v", err)
	}
	// Flip one random character: the checksum catches it.
	b := []byte(k)
	if b[15] == 'a' {
		b[15] = 'b'
	} else {
		b[15] = 'a'
	}
	if backend.ParseKey(string(b)) == nil {
		t.Fatal("a mistyped key passed the checksum")
	}
	for _, bad := range []string{"", "flowyte_sk_", "sk_" + k[11:], k + "x", k[:len(k)-1] + "!"} {
		if backend.ParseKey(bad) == nil {
			t.Fatalf("ParseKey(%q) = nil, want an error", bad)
		}
	}
}

// TestAuthMatrix walks every authenticated route with no key, a bad key, a
// key lacking the scope, and another workspace's key.
func TestAuthMatrix(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("auth")
	e.publish(id)
	sess := e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id}).json(t)["id"].(string)
	wh := e.must(201, "POST", "/webhooks", e.admin, map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"version.published"}}).json(t)["id"].(string)
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
			if h := r.Header.Get("WWW-Authenticate"); h != `Bearer realm="flowyte"` {
				t.Fatalf("no key: WWW-Authenticate=%q", h)
			}
			r = e.do(rt.method, rt.path, "flowyte_sk_00000000000000000000000000000000AAAAAA", rt.body)
			problemCode(t, r, 401, "unauthorized")
			if h := r.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="invalid_token"`) {
				t.Fatalf("bad key: WWW-Authenticate=%q", h)
			}
			r = e.do(rt.method, rt.path, lacking[rt.scope], rt.body)
			problemCode(t, r, 403, "insufficient_scope")
			want := `Bearer error="insufficient_scope", scope="` + rt.scope + `"`
			if h := r.Header.Get("WWW-Authenticate"); h != want {
				t.Fatalf("lacking scope: WWW-Authenticate=%q, want %q", h, want)
			}
			if rt.tenant {
				r = e.do(rt.method, rt.path, e.other, rt.body)
				if r.StatusCode != 404 {
					t.Fatalf("other workspace: status=%d, want 404\n%s", r.StatusCode, r.body)
				}
			}
		})
	}
	// A revoked key is an invalid token.
	k := e.key("a", "temp", server.ScopeAgentsRead)
	e.must(200, "GET", "/agents", k, nil)
	keys := e.must(200, "GET", "/keys", e.admin, nil).json(t)["data"].([]any)
	for _, x := range keys {
		if x.(map[string]any)["name"] == "temp" {
			e.must(204, "DELETE", "/keys/"+x.(map[string]any)["id"].(string), e.admin, nil)
		}
	}
	r := e.do("GET", "/agents", k, nil)
	problemCode(t, r, 401, "unauthorized")
	if !strings.Contains(r.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("revoked key header %q", r.Header.Get("WWW-Authenticate"))
	}
}

func TestOpenEndpointsNeedNoKey(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/healthz", "/readyz", "/openapi.json", "/problems/no_published_version"} {
		r := e.do("GET", p, "", nil)
		if r.StatusCode != 200 {
			t.Fatalf("GET %s: status=%d", p, r.StatusCode)
		}
		if r.Header.Get("X-Request-Id") == "" {
			t.Fatalf("GET %s: no X-Request-Id", p)
		}
	}
	r := e.do("GET", "/healthz", "", nil, "X-Request-Id", "trace-123")
	if r.Header.Get("X-Request-Id") != "trace-123" {
		t.Fatalf("X-Request-Id not echoed: %q", r.Header.Get("X-Request-Id"))
	}
	problemCode(t, e.do("GET", "/metrics", "", nil), 401, "unauthorized")
	m := e.must(200, "GET", "/metrics", e.reader, nil)
	for _, name := range []string{"flowyte_http_requests_total", "flowyte_http_request_duration_seconds", "flowyte_publishes_total", "flowyte_compile_failures_total"} {
		if !strings.Contains(string(m.body), name) {
			t.Fatalf("/metrics lacks %s", name)
		}
	}
}

func TestRequestIDEchoed(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"abc", "trace id with spaces", strings.Repeat("x", 200)} {
		if got := e.do("GET", "/healthz", "", nil, "X-Request-Id", id).Header.Get("X-Request-Id"); got != id {
			t.Fatalf("X-Request-Id %q echoed as %q", id, got)
		}
	}
	if got := e.do("GET", "/healthz", "", nil).Header.Get("X-Request-Id"); len(got) < 16 {
		t.Fatalf("no generated X-Request-Id: %q", got)
	}
}
