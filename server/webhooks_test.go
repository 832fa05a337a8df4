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
			tb.Fatalf("webhook not delivered")
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
	secret := wh["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret %q", secret)
	}
	if got := e.must(200, "GET", "/webhooks/"+wh["id"].(string), e.admin, nil).json(t); got["secret"] != nil {
		t.Fatal("the secret is shown again")
	}
	problemCode(t, e.do("GET", "/webhooks/"+wh["id"].(string), e.other, nil), 404, "webhook_not_found")

	e.publish(id)
	e.must(200, "PUT", "/agents/"+id+"/draft/files/knowledge/a.md", e.admin, []byte("a\n"))
	e.publish(id)
	e.must(200, "POST", "/agents/"+id+"/rollback", e.admin, map[string]any{"version": "v1"})
	rc.wait(t, 3)

	rc.mu.Lock()
	types := []string{}
	for i, body := range rc.bodies {
		if err := webhook.Verify(secret, rc.heads[i], body, time.Now(), 5*time.Minute); err != nil {
			t.Fatalf("delivery %d does not verify: %v", i, err)
		}
		var ev struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Data["agentId"] != id || ev.Data["tag"] == nil || ev.Data["compiledDigest"] == nil || ev.Data["cloneUrl"] == nil {
			t.Fatalf("event data %v", ev.Data)
		}
		types = append(types, ev.Type+":"+ev.Data["version"].(string))
	}
	rc.mu.Unlock()
	sort.Strings(types) // delivery order across events is not guaranteed
	want := "version.published:v1 version.published:v2 version.rolled_back:v1"
	if strings.Join(types, " ") != want {
		t.Fatalf("events %v, want %s", types, want)
	}
	// The delivery log has each attempt.
	var log []any
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		// Attempts are logged just after the consumer answers.
		if log = e.must(200, "GET", "/webhooks/"+wh["id"].(string)+"/deliveries", e.admin, nil).json(t)["data"].([]any); len(log) == 3 {
			break
		}
	}
	if len(log) != 3 || log[0].(map[string]any)["status"] != "succeeded" || log[0].(map[string]any)["responseCode"] != 204.0 {
		t.Fatalf("delivery log %v", log)
	}
	evID := log[0].(map[string]any)["eventId"].(string)
	e.must(202, "POST", "/webhooks/"+wh["id"].(string)+"/deliveries/"+evID+"/redeliver", e.admin, nil)
	rc.wait(t, 1)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if got := rc.heads[len(rc.heads)-1].Get("webhook-id"); got != evID {
		t.Fatalf("redelivery webhook-id %q, want %q", got, evID)
	}
}

func TestWebhookRefusesPrivateTargets(t *testing.T) {
	e := newEnv(t)
	// A daemon without --webhook-allow-private.
	strict := newStrictEnv(t, e)
	for _, u := range []string{"http://127.0.0.1/x", "http://localhost:8080/x", "http://10.1.2.3/x", "http://[::1]/x", "http://169.254.169.254/latest", "http://0.0.0.0/x"} {
		m := problemCode(t, strict.do("POST", "/webhooks", strict.admin, map[string]any{"url": u, "events": []string{"version.published"}}), 422, "validation_failed")
		if !strings.Contains(strings.ToLower(m["message"].(string)), "private") && !strings.Contains(m["message"].(string), "address") {
			t.Fatalf("%s: message %v", u, m["message"])
		}
	}
}
