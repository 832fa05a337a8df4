package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/webhook"
)

// hookLog is an in-process webhook consumer.
type hookLog struct {
	mu     sync.Mutex
	events map[string]map[string]any // webhook-id → body
	fail   bool
}

func newHookLog(t *testing.T, secret *string) (*hookLog, *httptest.Server) {
	t.Helper()
	h := &hookLog{events: map[string]map[string]any{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.fail {
			w.WriteHeader(503)
			return
		}
		assert.NoError(t, webhook.Verify(*secret, r.Header, body, time.Now(), 5*time.Minute), "signature")
		var m map[string]any
		assert.NoError(t, json.Unmarshal(body, &m), "event body %s", body)
		h.events[r.Header.Get("webhook-id")] = m
		w.WriteHeader(204)
	}))
	t.Cleanup(srv.Close)
	return h, srv
}

// versions returns the versions seen in version.published events.
func (h *hookLog) versions() map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]bool{}
	for _, ev := range h.events {
		if ev["type"] == "version.published" {
			out[ev["data"].(map[string]any)["version"].(string)] = true
		}
	}
	return out
}

func (h *hookLog) waitFor(t *testing.T, versions ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		got := h.versions()
		all := true
		for _, v := range versions {
			all = all && got[v]
		}
		if all {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.FailNow(t, "events never arrived", "want %v within 30s, got %v", versions, h.versions())
}

// TestWebhookSurvivesSIGKILL: an event whose delivery is still being
// retried when the daemon is SIGKILLed arrives after the restart; and a tag
// written just before a crash (git has it, the database does not) still
// gets its event, from startup recovery.
func TestWebhookSurvivesSIGKILL(t *testing.T) {
	data := t.TempDir()
	d := startDaemon(t, data, "--webhook-retry-schedule", "1s,1s,1s,1s,1s")
	key := d.bootstrapKey()
	var secret string
	hooks, recv := newHookLog(t, &secret)
	id := strField(t, mustCall(t, "POST", d.url+"/agents", key, map[string]any{"name": "hooked"}, 201), "id")
	wh := mustCall(t, "POST", d.url+"/webhooks", key, map[string]any{"url": recv.URL, "events": []string{"version.published"}}, 201)
	secret = strField(t, wh, "secret")

	// The consumer is down; publish, then kill the daemon mid-retry.
	hooks.mu.Lock()
	hooks.fail = true
	hooks.mu.Unlock()
	mustCall(t, "POST", d.url+"/agents/"+id+"/publish", key, nil, 201)
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	hooks.mu.Lock()
	hooks.fail = false
	hooks.mu.Unlock()

	// A publish that reached git but not the database: the crash came
	// between the tag and the transaction.
	repos, err := repo.Open(repo.Options{Root: filepath.Join(data, "agents"), Compile: compileArtifact})
	require.NoError(t, err, "open repositories")
	_, err = repos.CommitDraft(context.Background(), id, repo.CommitRequest{
		Changes: []repo.Change{{Path: "knowledge/late.md", Content: []byte("late\n")}},
		Message: "late edit", Author: repo.Signature{Name: "t", Email: "t@t", When: time.Now()},
	}, nil)
	require.NoError(t, err, "late draft commit")
	_, err = repos.Publish(context.Background(), id, repo.PublishRequest{Notes: "crashed", Publisher: repo.Signature{Name: "t", Email: "t@t", When: time.Now()}}, nil)
	require.NoError(t, err, "publish behind the daemon's back")

	d = startDaemon(t, data, "--webhook-retry-schedule", "1s,1s,1s,1s,1s")
	hooks.waitFor(t, "v1", "v2")
	list := mustCall(t, "GET", d.url+"/agents/"+id+"/versions", key, nil, 200)
	assert.Equal(t, "v2", list["published"], "after recovery: %v", list)
	listed, ok := list["data"].([]any)
	require.True(t, ok, "after recovery: %v", list)
	assert.Len(t, listed, 2, "versions after recovery")
	require.NoError(t, d.stop(syscall.SIGTERM), "SIGTERM")
}
