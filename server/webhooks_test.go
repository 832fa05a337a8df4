package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/webhook"
)

// receiver records webhook deliveries.
type receiver struct {
	mu     sync.Mutex
	bodies [][]byte
	heads  []http.Header
	got    chan struct{}
	status int
}

func newReceiver(tb testing.TB, status int) (*receiver, *httptest.Server) {
	tb.Helper()
	rc := &receiver{got: make(chan struct{}, 100), status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.bodies = append(rc.bodies, body)
		rc.heads = append(rc.heads, r.Header.Clone())
		rc.mu.Unlock()
		w.WriteHeader(rc.status)
		rc.got <- struct{}{}
	}))
	tb.Cleanup(srv.Close)
	return rc, srv
}

func (rc *receiver) wait(tb testing.TB, n int) {
	tb.Helper()
	for range n {
		select {
		case <-rc.got:
		case <-time.After(10 * time.Second):
			require.FailNow(tb, "webhook not delivered within 10s")
		}
	}
}

// TestWebhookOnPublishAndRollback runs the real dispatcher: a publish and a
// rollback reach the consumer signed per Standard Webhooks.
func TestWebhookOnPublishAndRollback(t *testing.T) {
	e := newEnv(t)
	disp := webhook.New(webhook.Options{Store: e.store, Client: webhook.NewClient(true, 5*time.Second), Logger: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = disp.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	e.withDispatcher(disp)

	rc, srv := newReceiver(t, 204)
	id := e.createAgent("hooked")
	wh := e.must(201, "POST", "/webhooks", e.admin, map[string]any{"url": srv.URL + "/hook", "events": []string{"version.published", "version.rolled_back"}, "agentId": id}).json(t)
	secret := str(t, wh, "secret")
	require.True(t, strings.HasPrefix(secret, "whsec_"), "secret %q, want whsec_…", secret)
	whID := str(t, wh, "id")
	assert.Nil(t, e.must(200, "GET", "/webhooks/"+whID, e.admin, nil).json(t)["secret"], "the secret is shown again")
	problemCode(t, e.do("GET", "/webhooks/"+whID, e.other, nil), 404, "webhook_not_found")

	e.publish(id)
	e.must(200, "PUT", "/agents/"+id+"/draft/files/knowledge/a.md", e.admin, []byte("a\n"))
	e.publish(id)
	e.must(200, "POST", "/agents/"+id+"/rollback", e.admin, map[string]any{"version": "v1"})
	rc.wait(t, 3)

	rc.mu.Lock()
	bodies, heads := rc.bodies, rc.heads
	rc.mu.Unlock()
	types := []string{}
	for i, body := range bodies {
		assert.NoError(t, webhook.Verify(secret, heads[i], body, time.Now(), 5*time.Minute), "delivery %d does not verify", i)
		var ev struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		require.NoError(t, json.Unmarshal(body, &ev), "delivery %d: %s", i, body)
		assert.Equal(t, id, ev.Data["agentId"], "event data %v", ev.Data)
		assert.NotNil(t, ev.Data["tag"], "event data %v", ev.Data)
		assert.NotNil(t, ev.Data["compiledDigest"], "event data %v", ev.Data)
		assert.NotNil(t, ev.Data["cloneUrl"], "event data %v", ev.Data)
		types = append(types, ev.Type+":"+str(t, ev.Data, "version"))
	}
	sort.Strings(types) // delivery order across events is not guaranteed
	assert.Equal(t, []string{"version.published:v1", "version.published:v2", "version.rolled_back:v1"}, types, "events")
	// The delivery log has each attempt.
	var log []any
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		// Attempts are logged just after the consumer answers.
		if log = arr(t, e.must(200, "GET", "/webhooks/"+whID+"/deliveries", e.admin, nil).json(t), "data"); len(log) == 3 {
			break
		}
	}
	require.Len(t, log, 3, "delivery log %v", log)
	latest := elem(t, log, 0)
	assert.Equal(t, "succeeded", latest["status"], "delivery log %v", log)
	assert.Equal(t, 204.0, latest["responseCode"], "delivery log %v", log)
	evID := str(t, latest, "eventId")
	e.must(202, "POST", "/webhooks/"+whID+"/deliveries/"+evID+"/redeliver", e.admin, nil)
	rc.wait(t, 1)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	assert.Equal(t, evID, rc.heads[len(rc.heads)-1].Get("webhook-id"), "redelivery webhook-id")
}

func TestWebhookRefusesPrivateTargets(t *testing.T) {
	e := newEnv(t)
	// A daemon without --webhook-allow-private.
	strict := newStrictEnv(t, e)
	for _, u := range []string{"http://127.0.0.1/x", "http://localhost:8080/x", "http://10.1.2.3/x", "http://[::1]/x", "http://169.254.169.254/latest", "http://0.0.0.0/x"} {
		m := problemCode(t, strict.do("POST", "/webhooks", strict.admin, map[string]any{"url": u, "events": []string{"version.published"}}), 422, "validation_failed")
		msg := str(t, m, "message")
		assert.True(t, strings.Contains(strings.ToLower(msg), "private") || strings.Contains(msg, "address"), "%s: message %q, want it to name a private address", u, msg)
	}
}
