package main

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSessionsSurviveRestart: sessions and transcripts are in the database;
// after a restart a pinned session still answers from its version, and a
// draft session from its draft revision.
func TestSessionsSurviveRestart(t *testing.T) {
	data := t.TempDir()
	d := startDaemon(t, data)
	key := d.bootstrapKey()
	id := strField(t, mustCall(t, "POST", d.url+"/agents", key, map[string]any{"name": "pinned"}, 201), "id")
	put := func(text string) {
		mustCall(t, "PUT", d.url+"/agents/"+id+"/draft/knowledge/hours", key, map[string]any{"title": "Hours", "content": text}, 200)
	}
	put("We are open from 9am to 5pm.\n")
	mustCall(t, "POST", d.url+"/agents/"+id+"/publish", key, nil, 201)
	live := strField(t, mustCall(t, "POST", d.url+"/chat/sessions", key, map[string]any{"agentId": id}, 201), "id")
	put("We are open from 7am to 11pm.\n")
	tester := strField(t, mustCall(t, "POST", d.url+"/chat/sessions", key, map[string]any{"agentId": id, "draftMode": true}, 201), "id")
	put("We are closed for renovation.\n")
	mustCall(t, "POST", d.url+"/agents/"+id+"/publish", key, nil, 201)
	ask := func(sid string) string {
		m := mustCall(t, "POST", d.url+"/chat/sessions/"+sid+"/messages", key, map[string]any{"text": "when are you open?"}, 200)
		reply, ok := m["reply"].(map[string]any)
		require.True(t, ok, "message answer %v has no reply", m)
		return strField(t, reply, "text")
	}
	ask(live)
	require.NoError(t, d.stop(syscall.SIGTERM), "SIGTERM")

	d = startDaemon(t, data)
	assert.Contains(t, ask(live), "9am to 5pm", "pinned session after restart, want v1's answer")
	assert.Contains(t, ask(tester), "7am to 11pm", "draft session after restart, want its draft revision's answer")
	s := mustCall(t, "GET", d.url+"/chat/sessions/"+live, key, nil, 200)
	msgs, ok := s["messages"].([]any)
	require.True(t, ok, "session %v has no messages", s)
	assert.Len(t, msgs, 4, "transcript after restart")
	require.NoError(t, d.stop(syscall.SIGTERM), "SIGTERM")
}
