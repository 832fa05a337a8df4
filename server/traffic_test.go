package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/webhook"
)

// publishedTwice is an agent of the acme fixture with versions v1 and v2
// (v2 published).
func (e *env) publishedTwice() string {
	e.tb.Helper()
	id := e.createAgent("traffic")
	e.loadFixture(id, "acme-support")
	e.publish(id)
	e.must(200, "PUT", "/agents/"+id+"/draft/files/knowledge/v2.md", e.admin, []byte("# Two\n\nthe second\n"))
	e.publish(id)
	return id
}

func TestChannelsHTTP(t *testing.T) {
	e := newEnv(t)
	id := e.publishedTwice()
	base := "/agents/" + id + "/channels"

	chs := e.must(200, "GET", base, e.reader, nil)
	var list []map[string]any
	require.NoError(t, json.Unmarshal(chs.body, &list))
	require.Len(t, list, 2)
	assert.Equal(t, map[string]any{"channel": "chat", "serves": "v2", "mode": "follow", "split": nil}, list[0])

	pin := e.must(200, "PUT", base+"/phone", e.admin, map[string]any{"mode": "pin", "version": "v1"}).json(t)
	assert.Equal(t, map[string]any{"channel": "phone", "serves": "v1", "mode": "pin", "split": nil}, pin)
	spl := e.must(200, "PUT", base+"/chat", e.admin, map[string]any{"mode": "split", "split": []map[string]any{{"version": "v2", "weight": 10}, {"version": "v1", "weight": 90}}}).json(t)
	assert.Equal(t, "v1", spl["serves"], "the largest weight")
	assert.Equal(t, []any{map[string]any{"version": "v1", "weight": 90.0}, map[string]any{"version": "v2", "weight": 10.0}}, spl["split"])

	deps := arr(t, e.must(200, "GET", "/agents/"+id+"/deployments", e.reader, nil).json(t), "data")
	require.Len(t, deps, 4)
	assert.Equal(t, "split", elem(t, deps, 0)["kind"])
	assert.Equal(t, "chat", elem(t, deps, 0)["channel"])
	assert.Equal(t, "pin", elem(t, deps, 1)["kind"])
	assert.Nil(t, elem(t, deps, 3)["channel"])

	// Rollback: every channel back to follow.
	e.must(200, "POST", "/agents/"+id+"/rollback", e.admin, map[string]any{"version": "v1"})
	require.NoError(t, json.Unmarshal(e.must(200, "GET", base, e.reader, nil).body, &list))
	for _, ch := range list {
		assert.Equal(t, "follow", ch["mode"], "%v", ch)
		assert.Equal(t, "v1", ch["serves"], "%v", ch)
	}
	e.must(200, "PUT", base+"/chat", e.admin, map[string]any{"mode": "follow"})
}

func TestChannelProblemsHTTP(t *testing.T) {
	e := newEnv(t)
	id := e.publishedTwice()
	path := "/agents/" + id + "/channels/chat"
	for _, tc := range []struct {
		name     string
		body     any
		pointers []any
	}{
		{"no mode", map[string]any{}, []any{"/mode"}},
		{"bad mode", map[string]any{"mode": "canary"}, []any{"/mode"}},
		{"pin unknown", map[string]any{"mode": "pin", "version": "v9"}, []any{"/version"}},
		{"pin malformed", map[string]any{"mode": "pin", "version": "latest"}, []any{"/version"}},
		{"split of one", map[string]any{"mode": "split", "split": []any{map[string]any{"version": "v1", "weight": 100}}}, []any{"/split"}},
		{"weights sum 90", map[string]any{"mode": "split", "split": []any{map[string]any{"version": "v1", "weight": 50}, map[string]any{"version": "v2", "weight": 40}}}, []any{"/split"}},
		{"fractional weights", map[string]any{"mode": "split", "split": []any{map[string]any{"version": "v1", "weight": 50.5}, map[string]any{"version": "v2", "weight": 49.5}}}, []any{"/split/0/weight", "/split/1/weight"}},
		{"unknown version", map[string]any{"mode": "split", "split": []any{map[string]any{"version": "v1", "weight": 50}, map[string]any{"version": "v3", "weight": 50}}}, []any{"/split/1/version"}},
		{"same version twice", map[string]any{"mode": "split", "split": []any{map[string]any{"version": "v1", "weight": 50}, map[string]any{"version": "v1", "weight": 50}}}, []any{"/split/1/version"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := problemCode(t, e.do("PUT", path, e.admin, tc.body), 422, "validation_failed")
			var got []any
			for _, fe := range arr(t, m, "errors") {
				got = append(got, fe.(map[string]any)["pointer"])
			}
			assert.Equal(t, tc.pointers, got)
		})
	}
	m := problemCode(t, e.do("PUT", path, e.admin, `{"mode": "pin", "version": "v1", "extra": 1}`), 422, "validation_failed")
	assert.Equal(t, "/extra", elem(t, arr(t, m, "errors"), 0)["pointer"])
	m = problemCode(t, e.do("PUT", path, e.admin, `{"mode": "split", "split": [{"version": "v1", "weight": "50"}]}`), 422, "validation_failed")
	assert.Equal(t, "/split/0/weight", elem(t, arr(t, m, "errors"), 0)["pointer"])
	problemCode(t, e.do("PUT", path, e.admin, `not json`), 400, "invalid_request")
	problemCode(t, e.do("PUT", "/agents/"+id+"/channels/sms", e.admin, map[string]any{"mode": "follow"}), 404, "not_found")
	problemCode(t, e.do("PUT", path, e.other, map[string]any{"mode": "follow"}), 404, "agent_not_found")
	problemCode(t, e.do("GET", "/agents/"+id+"/channels", e.other, nil), 404, "agent_not_found")
	problemCode(t, e.do("PUT", path, e.reader, map[string]any{"mode": "follow"}), 403, "insufficient_scope")
	deps := arr(t, e.must(200, "GET", "/agents/"+id+"/deployments", e.reader, nil).json(t), "data")
	assert.Len(t, deps, 2, "refused changes record nothing")
}

func TestSessionsOnSplitChannelHTTP(t *testing.T) {
	e := newEnv(t)
	id := e.publishedTwice()
	e.must(200, "PUT", "/agents/"+id+"/channels/phone", e.admin, map[string]any{"mode": "split", "split": []any{
		map[string]any{"version": "v1", "weight": 50}, map[string]any{"version": "v2", "weight": 50}}})
	seen := map[string]bool{}
	for i := range 40 {
		caller := fmt.Sprintf("+3361234%04d", i)
		s := e.must(201, "POST", "/chat/sessions", e.chatOnly, map[string]any{"agentId": id, "channel": "phone", "callerId": caller}).json(t)
		v := str(t, s, "version")
		seen[v] = true
		again := e.must(201, "POST", "/chat/sessions", e.chatOnly, map[string]any{"agentId": id, "channel": "phone", "callerId": caller}).json(t)
		assert.Equal(t, v, again["version"], "caller %s", caller)
		if i == 0 {
			r := e.must(200, "POST", "/chat/sessions/"+str(t, s, "id")+"/messages", e.chatOnly, map[string]any{"text": "hello"}).json(t)
			assert.Equal(t, v, obj(t, r, "servedBy")["version"])
		}
	}
	assert.Equal(t, map[string]bool{"v1": true, "v2": true}, seen, "both versions serve callers")
	m := problemCode(t, e.do("POST", "/chat/sessions", e.chatOnly, map[string]any{"agentId": id, "callerId": strings.Repeat("x", 257)}), 422, "validation_failed")
	assert.Equal(t, "/callerId", elem(t, arr(t, m, "errors"), 0)["pointer"])
}

func TestOutcomesHTTP(t *testing.T) {
	e := newEnv(t)
	id := e.publishedTwice()
	e.must(200, "PUT", "/agents/"+id+"/channels/phone", e.admin, map[string]any{"mode": "pin", "version": "v1"})
	for _, ch := range []string{"chat", "phone"} {
		s := e.must(201, "POST", "/chat/sessions", e.chatOnly, map[string]any{"agentId": id, "channel": ch}).json(t)
		for _, text := range []string{"Tell me about quantum physics", "talk to a human"} {
			e.must(200, "POST", "/chat/sessions/"+str(t, s, "id")+"/messages", e.chatOnly, map[string]any{"text": text})
		}
	}
	out := arr(t, e.must(200, "GET", "/agents/"+id+"/outcomes?versions=v1,v2", e.reader, nil).json(t), "data")
	require.Len(t, out, 2)
	for i, v := range []string{"v1", "v2"} {
		assert.Equal(t, map[string]any{"version": v, "sessions": 1.0, "messages": 2.0, "fallbackRate": 0.5,
			"guardrailBlocks": 0.0, "playbooksCompleted": 0.0, "handoffs": 1.0}, elem(t, out, i))
	}
	from := url(time.Now().Add(-2 * time.Hour))
	to := url(time.Now().Add(2 * time.Hour))
	ranged := arr(t, e.must(200, "GET", "/agents/"+id+"/outcomes?versions=v2&from="+from+"&to="+to, e.reader, nil).json(t), "data")
	assert.Equal(t, 1.0, elem(t, ranged, 0)["sessions"])
	served := arr(t, e.must(200, "GET", "/agents/"+id+"/outcomes", e.reader, nil).json(t), "data")
	assert.Len(t, served, 2, "default: the versions channels serve")

	problemCode(t, e.do("GET", "/agents/"+id+"/outcomes?versions=v1,v7", e.reader, nil), 404, "version_not_found")
	problemCode(t, e.do("GET", "/agents/"+id+"/outcomes?versions=v1,,v2", e.reader, nil), 400, "invalid_request")
	problemCode(t, e.do("GET", "/agents/"+id+"/outcomes?from=yesterday", e.reader, nil), 400, "invalid_request")
	problemCode(t, e.do("GET", "/agents/"+id+"/outcomes?versions=v1", e.other, nil), 404, "agent_not_found")
	problemCode(t, e.do("GET", "/agents/"+id+"/outcomes", e.chatOnly, nil), 403, "insufficient_scope")
}

func url(t time.Time) string { return strings.ReplaceAll(t.UTC().Format(time.RFC3339), "+", "%2B") }

// TestChannelUpdatedWebhook runs the real dispatcher: a split reaches a
// consumer subscribed to channel.updated, signed per Standard Webhooks,
// with a body that matches the documented Event schema.
func TestChannelUpdatedWebhook(t *testing.T) {
	e := newEnv(t)
	disp := webhook.New(webhook.Options{Store: e.store, Client: webhook.NewClient(true, 5*time.Second), Logger: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = disp.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	e.withDispatcher(disp)

	id := e.publishedTwice()
	rc, srv := newReceiver(t, 204)
	wh := e.must(201, "POST", "/webhooks", e.admin, map[string]any{"url": srv.URL + "/hook", "events": []string{"channel.updated"}, "agentId": id}).json(t)
	e.must(200, "PUT", "/agents/"+id+"/channels/chat", e.admin, map[string]any{"mode": "split", "split": []any{
		map[string]any{"version": "v1", "weight": 20}, map[string]any{"version": "v2", "weight": 80}}})
	rc.wait(t, 1)

	rc.mu.Lock()
	body, head := rc.bodies[0], rc.heads[0]
	rc.mu.Unlock()
	require.NoError(t, webhook.Verify(str(t, wh, "secret"), head, body, time.Now(), 5*time.Minute))
	var ev map[string]any
	require.NoError(t, json.Unmarshal(body, &ev))
	assert.Equal(t, "channel.updated", ev["type"])
	data := obj(t, ev, "data")
	assert.Equal(t, "chat", data["channel"])
	assert.Equal(t, "split", data["mode"])
	assert.Equal(t, "v2", data["version"])
	assert.Equal(t, "v2", data["previousVersion"])
	assert.Equal(t, "http://flowyte.test/git/"+id+".git", data["cloneUrl"])

	raw, err := os.ReadFile("openapi.json")
	require.NoError(t, err)
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	require.NoError(t, err)
	assert.NoError(t, doc.Components.Schemas["Event"].Value.VisitJSON(ev), "the body matches Event")
	assert.NoError(t, doc.Components.Schemas["ChannelEventData"].Value.VisitJSON(data), "the data matches ChannelEventData")
}
