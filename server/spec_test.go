package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSpecCheckerCatchesMismatch makes sure checkSpec can fail: a body that
// breaks the documented schema and an undocumented status are reported.
func TestSpecCheckerCatchesMismatch(t *testing.T) {
	router, err := loadSpec()
	require.NoError(t, err)
	req, err := http.NewRequest("GET", "http://127.0.0.1:1/healthz", nil)
	require.NoError(t, err)
	route, params, err := router.FindRoute(req)
	require.NoError(t, err)
	validate := func(status int, body string) error {
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
			Status:                 status,
			Header:                 http.Header{"Content-Type": {"application/json"}},
			Options:                &openapi3filter.Options{IncludeResponseStatus: true},
		}
		in.SetBodyBytes([]byte(body))
		return openapi3filter.ValidateResponse(context.Background(), in)
	}
	assert.NoError(t, validate(200, `{"status":"ok"}`), "the documented answer")
	assert.Error(t, validate(200, `{"status":42}`), "a body breaking the schema")
	assert.Error(t, validate(299, `{"status":"ok"}`), "an undocumented status")
	// A component schema is applied: an agent with a malformed id and no
	// name is refused.
	create, err := http.NewRequest("POST", "http://127.0.0.1:1/agents", nil)
	require.NoError(t, err)
	cr, cp, err := router.FindRoute(create)
	require.NoError(t, err)
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: create, PathParams: cp, Route: cr},
		Status:                 201,
		Header:                 http.Header{"Content-Type": {"application/json"}},
	}
	in.SetBodyBytes([]byte(`{"id":"nope"}`))
	assert.Error(t, openapi3filter.ValidateResponse(context.Background(), in), "an agent breaking the Agent schema")
	// Multi-segment file paths route to their operation.
	files, err := http.NewRequest("GET", "http://127.0.0.1:1/agents/agt_aaaaaaaaaaaaaaaaaaaa/draft/files/knowledge/a.md", nil)
	require.NoError(t, err)
	fr, _, err := router.FindRoute(files)
	require.NoError(t, err)
	assert.Equal(t, "GET /agents/{id}/draft/files/{path} 200", specKey(fr, 200))
}
