package server_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzAPIBodies sends arbitrary bodies to every route that takes one; no
// input may produce a 5xx.
func FuzzAPIBodies(f *testing.F) {
	for _, seed := range []string{
		`{"name":"x"}`, `{"changes":[{"path":"knowledge/a.md","content":"a"}]}`, `{"version":"v1"}`,
		`{"agentId":"agt_aaaaaaaaaaaaaaaaaaaa","draftMode":true}`, `{"text":"hi"}`, `{"url":"http://127.0.0.1/x","events":["version.published"]}`,
		`{"title":"t","tags":["a"],"content":"c"}`, `{"triggers":["x"],"steps":[{"say":"hi"}]}`, `[]`, `null`, `{"a":`, "\x00\xff",
	} {
		f.Add(0, []byte(seed))
	}
	e := newEnv(f)
	id := e.createAgent("fuzz")
	e.publish(id)
	sid := str(f, e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id}).json(f), "id")
	f.Fuzz(func(t *testing.T, route int, body []byte) {
		routes := []struct{ method, path string }{
			{"POST", "/agents"},
			{"POST", "/agents/" + id + "/draft/commits"},
			{"PUT", "/agents/" + id + "/draft/files/knowledge/fuzz.md"},
			{"PUT", "/agents/" + id + "/draft/settings"},
			{"PUT", "/agents/" + id + "/draft/knowledge/fuzz"},
			{"PUT", "/agents/" + id + "/draft/skills/fuzz"},
			{"PUT", "/agents/" + id + "/draft/guardrails/fuzz"},
			{"PUT", "/agents/" + id + "/draft/playbooks/fuzz"},
			{"POST", "/agents/" + id + "/publish"},
			{"POST", "/agents/" + id + "/rollback"},
			{"POST", "/chat/sessions"},
			{"POST", "/chat/sessions/" + sid + "/messages"},
			{"POST", "/webhooks"},
			{"POST", "/keys"},
		}
		rt := routes[(route%len(routes)+len(routes))%len(routes)]
		req, err := http.NewRequest(rt.method, e.srv.URL+rt.path, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+e.admin)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err, "%s %s", rt.method, rt.path)
		out, err := io.ReadAll(res.Body)
		res.Body.Close()
		require.NoError(t, err, "read body")
		assert.Less(t, res.StatusCode, 500, "%s %s with %q: a 5xx\n%s", rt.method, rt.path, body, out)
	})
}
