package server_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBadRequests sends many kinds of bad request; each must get its 4xx
// problem, never a 5xx, and none may leave a half-written repository.
func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("target")
	e.publish(id)
	sess := str(t, e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id}).json(t), "id")
	big := strings.Repeat("x", 300<<10)
	huge := `{"name":"` + strings.Repeat("x", 2<<20) + `"}`
	a := "/agents/" + id
	cases := []struct {
		name, method, path string
		body               any
		headers            []string
		status             int
		code               string
	}{
		{"broken json", "POST", "/agents", `{"name":`, nil, 400, "invalid_request"},
		{"not json at all", "POST", "/agents", `hello`, nil, 400, "invalid_request"},
		{"trailing garbage", "POST", "/agents", `{"name":"a"} x`, nil, 400, "invalid_request"},
		{"two values", "POST", "/agents", `{"name":"a"}{"name":"b"}`, nil, 400, "invalid_request"},
		{"empty body", "POST", "/agents", ``, nil, 400, "invalid_request"},
		{"array body", "POST", "/agents", `[]`, nil, 422, "validation_failed"},
		{"name wrong type", "POST", "/agents", `{"name":42}`, nil, 422, "validation_failed"},
		{"name missing", "POST", "/agents", `{"description":"x"}`, nil, 422, "validation_failed"},
		{"name blank", "POST", "/agents", `{"name":"   "}`, nil, 422, "validation_failed"},
		{"name too long", "POST", "/agents", `{"name":"` + strings.Repeat("n", 201) + `"}`, nil, 422, "validation_failed"},
		{"unknown field", "POST", "/agents", `{"name":"a","color":"red"}`, nil, 422, "validation_failed"},
		{"form body", "POST", "/agents", []byte(`name=a`), []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"},
		{"xml body", "POST", "/agents", []byte(`<agent/>`), []string{"Content-Type", "text/xml"}, 415, "unsupported_media_type"},
		{"json sent as text", "POST", "/agents", []byte(`{"name":"a"}`), []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"bad content type", "POST", "/agents", []byte(`{}`), []string{"Content-Type", "application/json; ===="}, 400, "invalid_request"},
		{"oversize json", "POST", "/agents", huge, nil, 413, "payload_too_large"},
		{"json over 1 MiB", "POST", "/agents", `{"name":"` + strings.Repeat("x", 1100<<10) + `"}`, nil, 413, "payload_too_large"},
		{"limit zero", "GET", "/agents?limit=0", nil, nil, 400, "invalid_request"},
		{"limit huge", "GET", "/agents?limit=100000", nil, nil, 400, "invalid_request"},
		{"limit text", "GET", "/agents?limit=ten", nil, nil, 400, "invalid_request"},
		{"bad agents cursor", "GET", "/agents?cursor=!!!", nil, nil, 400, "invalid_request"},
		{"garbage agents cursor", "GET", "/agents?cursor=bm9wZQ", nil, nil, 400, "invalid_request"},
		{"bad agent id", "GET", "/agents/nope", nil, nil, 404, "agent_not_found"},
		{"unknown agent id", "GET", "/agents/agt_aaaaaaaaaaaaaaaaaaaa", nil, nil, 404, "agent_not_found"},
		{"traversal path", "PUT", a + "/draft/files/../../etc/passwd", []byte("x"), nil, 422, "invalid_path"},
		{"encoded traversal", "PUT", a + "/draft/files/%2e%2e/x.md", []byte("x"), nil, 422, "invalid_path"},
		{"dot git", "PUT", a + "/draft/files/.git/config", []byte("x"), nil, 422, "invalid_path"},
		{"unknown dir", "PUT", a + "/draft/files/foo/bar.txt", []byte("x"), nil, 422, "invalid_path"},
		{"nul byte", "PUT", a + "/draft/files/knowledge/a%00.md", []byte("x"), nil, 422, "invalid_path"},
		{"compiled path", "PUT", a + "/draft/files/compiled/agent.json", []byte("{}"), nil, 422, "invalid_path"},
		{"upper-case slug", "PUT", a + "/draft/files/knowledge/Hello.md", []byte("x"), nil, 422, "invalid_path"},
		{"wrong extension", "PUT", a + "/draft/files/skills/x.yml", []byte("x"), nil, 422, "invalid_path"},
		{"backslash", "PUT", a + "/draft/files/knowledge%5Cx.md", []byte("x"), nil, 422, "invalid_path"},
		{"oversize file", "PUT", a + "/draft/files/knowledge/big.md", []byte(big), nil, 413, "payload_too_large"},
		{"delete agent.yaml", "DELETE", a + "/draft/files/agent.yaml", nil, nil, 422, "invalid_path"},
		{"read missing file", "GET", a + "/draft/files/knowledge/none.md", nil, nil, 404, "file_not_found"},
		{"commit no changes", "POST", a + "/draft/commits", map[string]any{"changes": []any{}}, nil, 422, "validation_failed"},
		{"commit changes wrong type", "POST", a + "/draft/commits", `{"changes":"all"}`, nil, 422, "validation_failed"},
		{"commit content wrong type", "POST", a + "/draft/commits", `{"changes":[{"path":"knowledge/a.md","content":5}]}`, nil, 422, "validation_failed"},
		{"commit duplicate path", "POST", a + "/draft/commits", map[string]any{"changes": []map[string]any{{"path": "knowledge/a.md", "content": "1"}, {"path": "knowledge/a.md", "content": "2"}}}, nil, 422, "validation_failed"},
		{"commit bad base64", "POST", a + "/draft/commits", map[string]any{"changes": []map[string]any{{"path": "knowledge/a.md", "content": "!!", "encoding": "base64"}}}, nil, 422, "validation_failed"},
		{"commit bad revision", "POST", a + "/draft/commits", map[string]any{"expectedRevision": "zz", "changes": []map[string]any{{"path": "knowledge/a.md", "content": "1"}}}, nil, 422, "validation_failed"},
		{"history bad cursor", "GET", a + "/draft/history?cursor=xyz", nil, nil, 400, "invalid_request"},
		{"history unknown cursor", "GET", a + "/draft/history?cursor=" + strings.Repeat("0", 40), nil, nil, 400, "invalid_request"},
		{"unknown kind", "GET", a + "/draft/widgets", nil, nil, 404, "not_found"},
		{"bad typed name", "PUT", a + "/draft/skills/Bad_Name", map[string]any{}, nil, 422, "invalid_path"},
		{"typed not object", "PUT", a + "/draft/knowledge/x", `"text"`, nil, 422, "validation_failed"},
		{"typed broken json", "PUT", a + "/draft/knowledge/x", `{"content":`, nil, 400, "invalid_request"},
		{"typed unknown field", "PUT", a + "/draft/playbooks/p", map[string]any{"triggers": []string{"x"}, "steps": []map[string]any{{"say": "hi"}}, "color": 1}, nil, 422, "validation_failed"},
		{"guardrail bad regex", "PUT", a + "/draft/guardrails/g", map[string]any{"applies": "input", "block": map[string]any{"patterns": []string{"(("}, "message": "no"}}, nil, 422, "validation_failed"},
		{"settings temp range", "PUT", a + "/draft/settings", map[string]any{"name": "x", "model": map[string]any{"name": "m", "temperature": 3}}, nil, 422, "validation_failed"},
		{"publish wrong type", "POST", a + "/publish", `{"notes":7}`, nil, 422, "validation_failed"},
		{"publish bad expected", "POST", a + "/publish", map[string]any{"expectedDraftRevision": "nothex"}, nil, 422, "validation_failed"},
		{"publish long idem key", "POST", a + "/publish", nil, []string{"Idempotency-Key", strings.Repeat("k", 300)}, 400, "invalid_request"},
		{"rollback no version", "POST", a + "/rollback", map[string]any{}, nil, 422, "validation_failed"},
		{"rollback bad version", "POST", a + "/rollback", map[string]any{"version": "three"}, nil, 422, "validation_failed"},
		{"rollback v0", "POST", a + "/rollback", map[string]any{"version": "v0"}, nil, 422, "validation_failed"},
		{"rollback number", "POST", a + "/rollback", `{"version":3}`, nil, 422, "validation_failed"},
		{"rollback unknown", "POST", a + "/rollback", map[string]any{"version": "v99"}, nil, 404, "version_not_found"},
		{"version bad id", "GET", a + "/versions/latest", nil, nil, 404, "version_not_found"},
		{"version unknown", "GET", a + "/versions/v42", nil, nil, 404, "version_not_found"},
		{"version leading zero", "GET", a + "/versions/v01", nil, nil, 404, "version_not_found"},
		{"versions bad cursor", "GET", a + "/versions?cursor=abc", nil, nil, 400, "invalid_request"},
		{"version file traversal", "GET", a + "/versions/v1/files/../x", nil, nil, 422, "invalid_path"},
		{"version file missing", "GET", a + "/versions/v1/files/knowledge/none.md", nil, nil, 404, "file_not_found"},
		{"diff bad base", "GET", a + "/versions/v1/diff?base=v77", nil, nil, 404, "version_not_found"},
		{"diff bad format", "GET", a + "/versions/v1/diff?format=xml", nil, nil, 400, "invalid_request"},
		{"diff bad paths", "GET", a + "/versions/v1/diff?paths=some", nil, nil, 400, "invalid_request"},
		{"deployments bad cursor", "GET", a + "/deployments?cursor=-4", nil, nil, 400, "invalid_request"},
		{"session no agent", "POST", "/chat/sessions", map[string]any{}, nil, 422, "validation_failed"},
		{"session unknown agent", "POST", "/chat/sessions", map[string]any{"agentId": "agt_bbbbbbbbbbbbbbbbbbbb"}, nil, 404, "agent_not_found"},
		{"session bad channel", "POST", "/chat/sessions", map[string]any{"agentId": id, "channel": "fax"}, nil, 422, "validation_failed"},
		{"session draft phone", "POST", "/chat/sessions", map[string]any{"agentId": id, "channel": "phone", "draftMode": true}, nil, 422, "validation_failed"},
		{"session draftMode string", "POST", "/chat/sessions", `{"agentId":"` + id + `","draftMode":"yes"}`, nil, 422, "validation_failed"},
		{"unknown session", "GET", "/chat/sessions/ses_nope", nil, nil, 404, "session_not_found"},
		{"message empty", "POST", "/chat/sessions/" + sess + "/messages", map[string]any{"text": ""}, nil, 422, "validation_failed"},
		{"message blank", "POST", "/chat/sessions/" + sess + "/messages", map[string]any{"text": "   "}, nil, 422, "validation_failed"},
		{"message too long", "POST", "/chat/sessions/" + sess + "/messages", map[string]any{"text": strings.Repeat("a", 5000)}, nil, 422, "validation_failed"},
		{"message wrong type", "POST", "/chat/sessions/" + sess + "/messages", `{"text":["a"]}`, nil, 422, "validation_failed"},
		{"message unknown session", "POST", "/chat/sessions/ses_nope/messages", map[string]any{"text": "hi"}, nil, 404, "session_not_found"},
		{"usage bad from", "GET", "/usage?from=yesterday", nil, nil, 400, "invalid_request"},
		{"usage inverted", "GET", "/usage?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", nil, nil, 400, "invalid_request"},
		{"webhook bad url", "POST", "/webhooks", map[string]any{"url": "ftp://x", "events": []string{"version.published"}}, nil, 422, "validation_failed"},
		{"webhook no events", "POST", "/webhooks", map[string]any{"url": "https://example.com/h", "events": []string{}}, nil, 422, "validation_failed"},
		{"webhook unknown event", "POST", "/webhooks", map[string]any{"url": "https://example.com/h", "events": []string{"agent.exploded"}}, nil, 422, "validation_failed"},
		{"webhook unknown agent", "POST", "/webhooks", map[string]any{"url": "https://example.com/h", "events": []string{"version.published"}, "agentId": "agt_cccccccccccccccccccc"}, nil, 404, "agent_not_found"},
		{"webhook unknown", "GET", "/webhooks/wh_nope", nil, nil, 404, "webhook_not_found"},
		{"key bad scope", "POST", "/keys", map[string]any{"name": "k", "scopes": []string{"root"}}, nil, 422, "validation_failed"},
		{"key unknown", "DELETE", "/keys/key_nope", nil, nil, 404, "key_not_found"},
		{"unknown route", "GET", "/nothing/here", nil, nil, 404, "not_found"},
		{"wrong method", "PATCH", "/agents", `{}`, nil, 405, "method_not_allowed"},
		{"unknown problem page", "GET", "/problems/nope", nil, nil, 404, "not_found"},
	}
	require.GreaterOrEqual(t, len(cases), 50, "cases")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, e.admin, tc.body, tc.headers...)
			require.Less(t, r.StatusCode, 500, "%s %s: a 5xx\n%s", tc.method, tc.path, r.body)
			problemCode(t, r, tc.status, tc.code)
		})
	}
	assert.Contains(t, e.do("PATCH", "/agents", e.admin, `{}`).Header.Get("Allow"), "GET", "405 Allow header")
	// Nothing above left a half-written repository or a stray version.
	git(t, e.repos.Path(id), "fsck", "--strict")
	assert.Equal(t, []string{"v1"}, strings.Fields(git(t, e.repos.Path(id), "tag")), "tags")
}

func TestTypeErrorPointerNamesArrayElement(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("ptr")
	m := problemCode(t, e.do("POST", "/agents/"+id+"/draft/commits", e.admin, `{"changes":[{"path":"knowledge/a.md","content":"ok"},{"path":"knowledge/b.md","content":5}]}`), 422, "validation_failed")
	assert.Equal(t, "/changes/1/content", elem(t, arr(t, m, "errors"), 0)["pointer"], "pointer")
}
