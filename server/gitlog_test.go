package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server"
	"github.com/flowyte/flowyte/server/backend"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestGitAccessLogHasKeyID: access log lines of git requests carry the
// key id, refusals of a known key included, as API lines do.
func TestGitAccessLogHasKeyID(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("logged")
	secret, key, err := backend.CreateKey(context.Background(), e.store, "a", "git-reader", []string{server.ScopeAgentsRead}, time.Now())
	require.NoError(t, err)
	chatSecret, chatKey, err := backend.CreateKey(context.Background(), e.store, "a", "git-chat", []string{backend.ScopeChatWrite}, time.Now())
	require.NoError(t, err)
	var logs syncBuffer
	srv := httptest.NewServer(server.New(server.Deps{Backend: e.backend, Log: zerolog.New(&logs)}))
	t.Cleanup(srv.Close)

	for _, tt := range []struct {
		secret, keyID string
		status        int
	}{{secret, key.ID, 200}, {chatSecret, chatKey.ID, 403}} {
		req, _ := http.NewRequest("GET", srv.URL+"/git/"+id+".git/info/refs?service=git-upload-pack", nil)
		req.SetBasicAuth("x", tt.secret)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, tt.status, res.StatusCode)
		// The line is written after the answer is sent: poll for it.
		found := false
		for deadline := time.Now().Add(5 * time.Second); !found && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(line), &m) == nil && m["message"] == "request" && m["route"] == "/git/*path" && m["keyId"] == tt.keyID {
					found = true
				}
			}
		}
		assert.True(t, found, "no access log line with keyId %s for the git request; log:\n%s", tt.keyID, logs.String())
	}
}
