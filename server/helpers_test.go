package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/fixtures"
	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server"
	"github.com/flowyte/flowyte/server/backend"
	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/store/pgtest"
	"github.com/flowyte/flowyte/server/store/storetest"
	"github.com/flowyte/flowyte/server/webhook"
)

// env is one daemon under test: real temp git repositories, a real
// database (a SQLite file, or PostgreSQL with FLOWYTE_TEST_DATABASE set:
// see server/store/pgtest), and keys of two workspaces.
type env struct {
	tb       testing.TB
	srv      *httptest.Server
	api      *server.Server
	store    testStore
	repos    *repo.Store
	dir      string
	admin    string // workspace a, every scope
	reader   string // workspace a, agents:read
	chatOnly string // workspace a, chat:write
	other    string // workspace b, every scope
	notifier *countingNotifier
	opts     backend.Options
	backend  *backend.Backend
}

// withDispatcher serves the same data through a server wired to a real
// webhook dispatcher.
func (e *env) withDispatcher(d interface {
	backend.Notifier
	backend.Redeliverer
}) {
	opts := e.opts
	opts.Webhooks, opts.Redeliver = d, d
	e.serve(opts)
}

// serve wires a backend with opts and its HTTP transport into e.
func (e *env) serve(opts backend.Options) {
	e.opts = opts
	e.backend = backend.New(opts)
	e.api = server.New(server.Deps{Backend: e.backend, Log: zerolog.Nop()})
	if e.srv != nil {
		e.srv.Config.Handler = e.api
	}
}

type countingNotifier struct{ n chan struct{} }

func (c *countingNotifier) Notify() {
	select {
	case c.n <- struct{}{}:
	default:
	}
}

func compileArtifact(files map[string][]byte) ([]byte, error) {
	res := compile.Compile(files)
	if !res.OK() {
		return nil, res.Errors
	}
	return res.JSON, nil
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	return newEnvOpts(tb, true)
}

// newStrictEnv is a daemon without --webhook-allow-private.
func newStrictEnv(tb testing.TB, _ *env) *env {
	tb.Helper()
	return newEnvOpts(tb, false)
}

// testStore is a metadata engine as the server tests use it.
type testStore interface {
	backend.Store
	webhook.Store
}

// openTestStore opens SQLite under dir, or PostgreSQL when
// FLOWYTE_TEST_DATABASE is set, so every server test can run on either.
func openTestStore(tb testing.TB, dir string) testStore {
	tb.Helper()
	if os.Getenv(pgtest.EnvDatabase) != "" {
		return storetest.Open(tb)
	}
	st, err := store.Open(filepath.Join(dir, "flowyte.db"), store.WithSynchronous(os.Getenv("FLOWYTE_TEST_SYNC")+"FULL"[:4*btoi(os.Getenv("FLOWYTE_TEST_SYNC") == "")]))
	require.NoError(tb, err, "open store")
	tb.Cleanup(func() { st.Close() })
	return st
}

// TestMain shares one throwaway PostgreSQL cluster across the package's
// tests when they run on PostgreSQL.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func newEnvOpts(tb testing.TB, allowPrivate bool) *env {
	tb.Helper()
	dir := tb.TempDir()
	st := openTestStore(tb, dir)
	repos, err := repo.Open(repo.Options{Root: filepath.Join(dir, "agents"), Compile: compileArtifact})
	require.NoError(tb, err, "open repos")
	e := &env{tb: tb, store: st, repos: repos, dir: dir, notifier: &countingNotifier{n: make(chan struct{}, 1)}}
	e.serve(backend.Options{Repos: repos, Store: st, Log: zerolog.Nop(), Webhooks: e.notifier, AllowPrivateWebhooks: allowPrivate,
		PublicURL: "http://flowyte.test"})
	e.srv = httptest.NewServer(e.api)
	tb.Cleanup(e.srv.Close)
	e.admin = e.key("a", "admin", backend.AllScopes...)
	e.reader = e.key("a", "reader", server.ScopeAgentsRead)
	e.chatOnly = e.key("a", "chat", server.ScopeChatWrite)
	e.other = e.key("b", "intruder", backend.AllScopes...)
	return e
}

func (e *env) key(ws, name string, scopes ...string) string {
	e.tb.Helper()
	secret, _, err := backend.CreateKey(context.Background(), e.store, ws, name, scopes, time.Now())
	require.NoError(e.tb, err, "create key")
	return secret
}

// resp is a finished response with its body read.
type resp struct {
	*http.Response
	body []byte
}

func (r resp) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	require.NoError(tb, json.Unmarshal(r.body, &m), "%s %s: body is not a JSON object:\n%s", r.Request.Method, r.Request.URL.Path, r.body)
	return m
}

// do sends a request; body may be nil, []byte, string (raw) or any value
// (JSON-encoded).
func (e *env) do(method, path, key string, body any, headers ...string) resp {
	e.tb.Helper()
	var rdr io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rdr = bytes.NewReader(b)
	case string:
		rdr = strings.NewReader(b)
		ct = "application/json"
	default:
		data, err := json.Marshal(b)
		require.NoError(e.tb, err, "encode")
		rdr = bytes.NewReader(data)
		ct = "application/json"
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rdr)
	require.NoError(e.tb, err, "new request")
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.tb, err, "%s %s", method, path)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(e.tb, err, "read body")
	checkSpec(e.tb, req, res, data)
	return resp{Response: res, body: data}
}

// must asserts the status and returns the response.
func (e *env) must(status int, method, path, key string, body any, headers ...string) resp {
	e.tb.Helper()
	r := e.do(method, path, key, body, headers...)
	require.Equal(e.tb, status, r.StatusCode, "%s %s: status\n%s", method, path, r.body)
	return r
}

// problemCode asserts r is a problem with status and detail code.
func problemCode(tb testing.TB, r resp, status int, code string) map[string]any {
	tb.Helper()
	req := r.Request.Method + " " + r.Request.URL.Path
	require.Equal(tb, status, r.StatusCode, "%s: status\n%s", req, r.body)
	ct := r.Header.Get("Content-Type")
	require.True(tb, strings.HasPrefix(ct, "application/problem+json"), "%s: Content-Type=%q, want application/problem+json", req, ct)
	m := r.json(tb)
	require.Equal(tb, code, m["detail"], "%s: detail\n%s", req, r.body)
	assert.Equal(tb, "/problems/"+code, m["type"], "%s: problem type", req)
	assert.Equal(tb, http.StatusText(status), m["title"], "%s: problem title", req)
	assert.EqualValues(tb, status, m["status"], "%s: problem status", req)
	return m
}

// createAgent makes an agent and returns its id.
func (e *env) createAgent(name string) string {
	e.tb.Helper()
	r := e.must(201, "POST", "/agents", e.admin, map[string]any{"name": name})
	return str(e.tb, r.json(e.tb), "id")
}

// loadFixture writes a fixture agent's files into the draft in one commit.
func (e *env) loadFixture(id, name string) string {
	e.tb.Helper()
	files, err := fixtures.Files(name)
	require.NoError(e.tb, err, "fixture %s", name)
	paths := make([]string, 0, len(files))
	for p := range files {
		if _, _, err := compile.ParsePath(p); err == nil {
			paths = append(paths, p) // the broken fixture also holds a stray file
		}
	}
	sort.Strings(paths)
	changes := []map[string]any{}
	for _, p := range paths {
		changes = append(changes, map[string]any{"path": p, "content": string(files[p])})
	}
	r := e.must(201, "POST", "/agents/"+id+"/draft/commits", e.admin, map[string]any{"message": "load " + name, "changes": changes})
	return str(e.tb, r.json(e.tb), "revision")
}

// publish publishes the draft and returns the version id.
func (e *env) publish(id string) string {
	e.tb.Helper()
	r := e.must(201, "POST", "/agents/"+id+"/publish", e.admin, map[string]any{"notes": "test"})
	return str(e.tb, r.json(e.tb), "id")
}

// str returns m[key] as a string; the test stops when it is not one.
func str(tb testing.TB, m map[string]any, key string) string {
	tb.Helper()
	s, ok := m[key].(string)
	require.True(tb, ok, "%s=%v (%T), want a string in %v", key, m[key], m[key], m)
	return s
}

// obj returns m[key] as a JSON object; the test stops when it is not one.
func obj(tb testing.TB, m map[string]any, key string) map[string]any {
	tb.Helper()
	o, ok := m[key].(map[string]any)
	require.True(tb, ok, "%s=%v (%T), want an object in %v", key, m[key], m[key], m)
	return o
}

// arr returns m[key] as a JSON array; the test stops when it is not one.
func arr(tb testing.TB, m map[string]any, key string) []any {
	tb.Helper()
	a, ok := m[key].([]any)
	require.True(tb, ok, "%s=%v (%T), want an array in %v", key, m[key], m[key], m)
	return a
}

// elem returns a[i] as a JSON object; the test stops when it is not one.
func elem(tb testing.TB, a []any, i int) map[string]any {
	tb.Helper()
	require.Greater(tb, len(a), i, "array too short: %v", a)
	o, ok := a[i].(map[string]any)
	require.True(tb, ok, "[%d]=%v (%T), want an object", i, a[i], a[i])
	return o
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// loadSpec parses openapi.json once for all tests and builds a router over
// it: servers are dropped (the test server listens on any port) and the
// multi-segment {path} parameters match across slashes, as gin's *path does.
var loadSpec = sync.OnceValues(func() (routers.Router, error) {
	data, err := os.ReadFile("openapi.json")
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load openapi.json: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("openapi.json is not a valid OpenAPI document: %w", err)
	}
	doc.Servers = nil
	// The raw-text answers (files, patches, problem pages) are documented
	// as strings: read them as text, not as YAML or an unknown type.
	for _, mt := range []string{"text/markdown", "text/x-diff", "text/html", "application/yaml"} {
		openapi3filter.RegisterBodyDecoder(mt, openapi3filter.PlainBodyDecoder)
	}
	for path, item := range doc.Paths.Map() {
		if strings.HasSuffix(path, "{path}") {
			doc.Paths.Delete(path)
			doc.Paths.Set(strings.TrimSuffix(path, "{path}")+"{path:.+}", item)
		}
	}
	return gorillamux.NewRouter(doc)
})

// specKey names a response by its documented operation and status.
func specKey(route *routers.Route, status int) string {
	return fmt.Sprintf("%s %s %d", route.Method, strings.ReplaceAll(route.Path, "{path:.+}", "{path}"), status)
}

// checkSpec validates one response (status, headers, body) against the
// operation openapi.json documents for its request. Requests to routes the
// document does not have (deliberately bad paths and methods) are skipped:
// TestOpenAPICoversEveryRoute checks that every real route is documented.
func checkSpec(tb testing.TB, req *http.Request, res *http.Response, body []byte) {
	tb.Helper()
	router, err := loadSpec()
	require.NoError(tb, err)
	route, params, err := router.FindRoute(req)
	if errors.Is(err, routers.ErrPathNotFound) || errors.Is(err, routers.ErrMethodNotAllowed) {
		return
	}
	require.NoError(tb, err, "find route for %s %s", req.Method, req.URL.Path)
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 res.StatusCode,
		Header:                 res.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	err = openapi3filter.ValidateResponse(context.Background(), in)
	assert.NoError(tb, err, "%s %s: response does not match openapi.json (%s)\n%s", req.Method, req.URL.RequestURI(), specKey(route, res.StatusCode), truncate(body, 2000))
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
