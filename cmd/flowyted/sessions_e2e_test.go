package main

import (
	"strings"
	"syscall"
	"testing"
)

// TestSessionsSurviveRestart: sessions and transcripts are in the database;
// after a restart a pinned session still answers from its version, and a
// draft session from its draft revision.
func TestSessionsSurviveRestart(t *testing.T) {
	data := t.TempDir()
	d := startDaemon(t, data)
	key := d.bootstrapKey()
	id := mustCall(t, "POST", d.url+"/agents", key, map[string]any{"name": "pinned"}, 201)["id"].(string)
	put := func(text string) {
		mustCall(t, "PUT", d.url+"/agents/"+id+"/draft/knowledge/hours", key, map[string]any{"title": "Hours", "content": text}, 200)
	}
	put("We are open from 9am to 5pm.\n")
	mustCall(t, "POST", d.url+"/agents/"+id+"/publish", key, nil, 201)
	live := mustCall(t, "POST", d.url+"/chat/sessions", key, map[string]any{"agentId": id}, 201)["id"].(string)
	put("We are open from 7am to 11pm.\n")
	tester := mustCall(t, "POST", d.url+"/chat/sessions", key, map[string]any{"agentId": id, "draftMode": true}, 201)["id"].(string)
	put("We are closed for renovation.\n")
	mustCall(t, "POST", d.url+"/agents/"+id+"/publish", key, nil, 201)
	ask := func(sid string) string {
		m := mustCall(t, "POST", d.url+"/chat/sessions/"+sid+"/messages", key, map[string]any{"text": "when are you open?"}, 200)
		return m["reply"].(map[string]any)["text"].(string)
	}
	ask(live)
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	d = startDaemon(t, data)
	if got := ask(live); !strings.Contains(got, "9am to 5pm") {
		t.Fatalf("pinned session after restart: %q, want v1's answer", got)
	}
	if got := ask(tester); !strings.Contains(got, "7am to 11pm") {
		t.Fatalf("draft session after restart: %q, want its draft revision's answer", got)
	}
	s := mustCall(t, "GET", d.url+"/chat/sessions/"+live, key, nil, 200)
	if n := len(s["messages"].([]any)); n != 4 {
		t.Fatalf("transcript has %d messages after restart, want 4", n)
	}
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}
