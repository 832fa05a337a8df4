package server_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// teleportTest fails on the acme agent: the shipping article says nothing
// of teleports.
const teleportTest = `description: Shipping by teleport (wrong on purpose)
turns:
  - user: How long does shipping take?
    expect:
      replyContains: ["teleport"]
`

func TestTestRunsAPI(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("Acme")
	rev := e.loadFixture(id, "acme-support")
	base := "/agents/" + id + "/test-runs"

	r := e.must(201, "POST", base, e.admin, nil)
	run := r.json(t)
	runID := str(t, run, "id")
	assert.Regexp(t, `^run_[a-z2-7]+$`, runID)
	assert.Equal(t, base+"/"+runID, r.Header.Get("Location"))
	assert.Equal(t, "draft", run["target"])
	assert.Equal(t, rev, run["draftRevision"])
	assert.Nil(t, run["version"])
	assert.Equal(t, "passed", run["status"])
	assert.EqualValues(t, 8, run["total"])
	assert.EqualValues(t, 8, run["passed"])
	cases := arr(t, run, "cases")
	require.Len(t, cases, 8)
	c := elem(t, cases, 0)
	assert.Equal(t, "abuse-is-blocked", c["test"])
	turn := elem(t, arr(t, c, "turns"), 0)
	assert.Equal(t, "you stupid bot", turn["user"])
	assert.Equal(t, "abuse-and-competitors", obj(t, turn, "trace")["guardrail"])
	assert.Empty(t, arr(t, turn, "failures"))

	one := e.must(201, "POST", base, e.admin, map[string]any{"target": "draft", "tests": []string{"return-opens-label"}}).json(t)
	assert.EqualValues(t, 1, one["total"])
	calls := arr(t, obj(t, elem(t, arr(t, elem(t, arr(t, one, "cases"), 0), "turns"), 2), "trace"), "skillCalls")
	assert.Equal(t, map[string]any{"orderId": "A-10442", "reason": "damaged"}, elem(t, calls, 0)["args"])

	got := e.must(200, "GET", base+"/"+runID, e.reader, nil).json(t)
	assert.Equal(t, runID, got["id"])
	assert.Len(t, arr(t, got, "cases"), 8)

	list := e.must(200, "GET", base+"?limit=1", e.reader, nil).json(t)
	data := arr(t, list, "data")
	require.Len(t, data, 1)
	assert.Equal(t, one["id"], elem(t, data, 0)["id"], "newest first")
	assert.NotContains(t, elem(t, data, 0), "cases", "listed without cases")
	next := str(t, list, "nextCursor")
	list = e.must(200, "GET", base+"?limit=1&cursor="+next, e.reader, nil).json(t)
	assert.Equal(t, runID, elem(t, arr(t, list, "data"), 0)["id"])
	assert.Nil(t, list["nextCursor"])

	for _, tc := range []struct {
		name, method, path, key string
		body                    any
		status                  int
		code                    string
	}{
		{"read key cannot run", "POST", base, e.reader, nil, 403, "insufficient_scope"},
		{"other workspace", "POST", base, e.other, nil, 404, "agent_not_found"},
		{"other workspace reads", "GET", base + "/" + runID, e.other, nil, 404, "agent_not_found"},
		{"unknown run", "GET", base + "/run_nope", e.reader, nil, 404, "not_found"},
		{"unknown test", "POST", base, e.admin, map[string]any{"tests": []string{"nope"}}, 422, "validation_failed"},
		{"bad target", "POST", base, e.admin, map[string]any{"target": "staging"}, 422, "validation_failed"},
		{"unknown version", "POST", base, e.admin, map[string]any{"target": "v9"}, 404, "version_not_found"},
		{"nothing published", "POST", base, e.admin, map[string]any{"target": "published"}, 404, "version_not_found"},
		{"unknown field", "POST", base, e.admin, map[string]any{"targets": "draft"}, 422, "validation_failed"},
		{"not JSON", "POST", base, e.admin, `{`, 400, "invalid_request"},
		{"tests not a list", "POST", base, e.admin, `{"tests":"x"}`, 422, "validation_failed"},
		{"bad cursor", "GET", base + "?cursor=%21%21", e.reader, nil, 400, "invalid_request"},
		{"bad limit", "GET", base + "?limit=0", e.reader, nil, 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problemCode(t, e.do(tc.method, tc.path, tc.key, tc.body), tc.status, tc.code)
		})
	}

	// A draft that does not compile cannot be run.
	e.must(200, "PUT", "/agents/"+id+"/draft/files/tests/bad.yaml", e.admin, []byte("turns: 3\n"), "Content-Type", "application/yaml")
	p := problemCode(t, e.do("POST", base, e.admin, nil), 422, "compile_failed")
	assert.NotEmpty(t, arr(t, p, "errors"))
}

func TestPublishGateAPI(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("Acme")
	e.loadFixture(id, "acme-support")
	e.must(200, "PUT", "/agents/"+id+"/draft/files/tests/teleport.yaml", e.admin, []byte(teleportTest), "Content-Type", "application/yaml")

	rep := e.must(200, "GET", "/agents/"+id+"/prepublish-report", e.reader, nil).json(t)
	assert.Equal(t, false, rep["publishable"])
	assert.Equal(t, []any{"tests_failed"}, rep["blockers"])
	tests := obj(t, rep, "tests")
	assert.EqualValues(t, 9, tests["total"])
	assert.EqualValues(t, 1, tests["failed"])
	run := e.must(200, "GET", "/agents/"+id+"/test-runs/"+str(t, tests, "runId"), e.reader, nil).json(t)
	assert.Equal(t, "failed", run["status"])

	p := problemCode(t, e.do("POST", "/agents/"+id+"/publish", e.admin, map[string]any{"notes": "try"}), 422, "tests_failed")
	fails := arr(t, p, "failures")
	require.Len(t, fails, 1)
	f := elem(t, fails, 0)
	assert.Equal(t, "teleport", f["test"])
	assert.EqualValues(t, 0, f["turn"])
	assert.Equal(t, "replyContains", f["expect"])
	assert.Equal(t, "teleport", f["want"])
	assert.Contains(t, strings.ToLower(str(t, f, "got")), "ships")
	e.must(404, "GET", "/agents/"+id+"/versions/v1", e.reader, nil)

	v := e.must(201, "POST", "/agents/"+id+"/publish", e.admin, map[string]any{"force": true}).json(t)
	assert.Equal(t, map[string]any{"total": 9.0, "passed": 8.0, "failed": 1.0}, v["tests"])
	got := e.must(200, "GET", "/agents/"+id+"/versions/v1", e.reader, nil).json(t)
	assert.Equal(t, v["tests"], got["tests"])
	tj := e.must(200, "GET", "/agents/"+id+"/versions/v1/files/compiled/tests.json", e.reader, nil)
	assert.Contains(t, string(tj.body), `"status": "failed"`)
	msg := git(t, e.repos.Path(id), "tag", "-l", "--format=%(contents)", "v1")
	assert.Contains(t, msg, "Tests: 8/9 passed\nTests-Forced: true\n")

	// An agent without tests: tests is null everywhere.
	plain := e.createAgent("Plain")
	e.loadFixture(plain, "acme-support")
	for _, slug := range []string{"abuse-is-blocked", "email-is-redacted", "human-handoff", "return-opens-label", "shipping-question", "track-order", "unknown-topic-falls-back", "warranty-question"} {
		e.must(200, "DELETE", "/agents/"+plain+"/draft/files/tests/"+slug+".yaml", e.admin, nil)
	}
	rep = e.must(200, "GET", "/agents/"+plain+"/prepublish-report", e.reader, nil).json(t)
	assert.Nil(t, rep["tests"])
	v = e.must(201, "POST", "/agents/"+plain+"/publish", e.admin, nil).json(t)
	assert.Contains(t, v, "tests")
	assert.Nil(t, v["tests"])
	problemCode(t, e.do("GET", "/agents/"+plain+"/versions/v1/files/compiled/tests.json", e.reader, nil), 404, "file_not_found")
}
