package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOpenAPIDocumentsHeadOnEveryGet fails when a GET operation outside
// /git has no head operation beside it: the daemon answers HEAD on every
// GET route, and a validating proxy refuses methods the document lacks.
func TestOpenAPIDocumentsHeadOnEveryGet(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	data, err := os.ReadFile("openapi.json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &doc), "openapi.json")
	gets := 0
	for p, ops := range doc.Paths {
		if _, ok := ops["get"]; !ok || strings.HasPrefix(p, "/git/") {
			continue
		}
		gets++
		assert.Contains(t, ops, "head", "GET %s has no head operation", p)
	}
	assert.GreaterOrEqual(t, gets, 25, "GET paths checked")
}

// TestHeadAnswersMatchOpenAPI sends HEAD requests and checks that each is
// a documented operation and that its status and headers match it (env.do
// validates every response against openapi.json).
func TestHeadAnswersMatchOpenAPI(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("Head")
	router, err := loadSpec()
	require.NoError(t, err)
	e.must(200, "PUT", "/agents/"+id+"/draft/files/knowledge/returns.md", e.admin, []byte("# Returns\n\n30 days.\n"))
	file := e.must(200, "GET", "/agents/"+id+"/draft/files/agent.yaml", e.admin, nil)
	etag := file.Header.Get("ETag")
	require.NotEmpty(t, etag, "ETag of agent.yaml")

	cases := []struct {
		name, path, key string
		headers         []string
		status          int
	}{
		{"list", "/agents", e.admin, nil, 200},
		{"agent", "/agents/" + id, e.admin, nil, 200},
		{"unknown agent", "/agents/agt_aaaaaaaaaaaaaaaaaaaa", e.admin, nil, 404},
		{"no key", "/agents", "", nil, 401},
		{"file", "/agents/" + id + "/draft/files/agent.yaml", e.admin, nil, 200},
		{"file not modified", "/agents/" + id + "/draft/files/agent.yaml", e.admin, []string{"If-None-Match", etag}, 304},
		{"encoded slash", "/agents/" + id + "/draft/files/knowledge%2Freturns.md", e.admin, nil, 200},
		{"missing file", "/agents/" + id + "/draft/files/knowledge/none.md", e.admin, nil, 404},
		{"healthz", "/healthz", "", nil, 200},
		{"bad query", "/healthz?x=%ZZ", "", nil, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodHead, tc.path, nil)
			_, _, err := router.FindRoute(req)
			require.NoError(t, err, "HEAD %s is not a documented operation", tc.path)
			r := e.do(http.MethodHead, tc.path, tc.key, nil, tc.headers...)
			assert.Equal(t, tc.status, r.StatusCode, "HEAD %s status", tc.path)
			assert.Empty(t, r.body, "HEAD %s has a body", tc.path)
		})
	}
}

// TestRawFileUploadsPassRequestValidation validates raw draft-file PUTs,
// as a validating proxy would, in the media types clients send: YAML and
// Markdown must not be parsed against a JSON schema, and curl's default
// type for --data-binary must be accepted too.
func TestRawFileUploadsPassRequestValidation(t *testing.T) {
	router, err := loadSpec()
	require.NoError(t, err)
	body := "description: Look up an order\nhttp:\n  method: GET\n  url: https://api.example.com/orders/{id}\n"
	for _, ct := range []string{
		"application/yaml", "text/yaml", "application/x-yaml", "text/markdown; charset=utf-8",
		"text/plain", "application/octet-stream", "application/x-www-form-urlencoded",
	} {
		t.Run(ct, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPut, "/agents/agt_aaaaaaaaaaaaaaaaaaaa/draft/files/skills/order.yaml", strings.NewReader(body))
			req.Header.Set("Content-Type", ct)
			req.Header.Set("Authorization", "Bearer flowyte_sk_x")
			route, params, err := router.FindRoute(req)
			require.NoError(t, err, "find route")
			err = openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
				Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
			})
			assert.NoError(t, err, "PUT with Content-Type %s", ct)
		})
	}
}
