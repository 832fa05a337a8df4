package server_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
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
	sid := e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id}).json(f)["id"].(string)
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
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e.admin)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 500 {
			t.Fatalf("%s %s with %q: status %d\n%s", rt.method, rt.path, body, res.StatusCode, out)
		}
	})
}
