package server_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func say(tb testing.TB, e *env, sid, text string) map[string]any {
	tb.Helper()
	return e.must(200, "POST", "/chat/sessions/"+sid+"/messages", e.admin, map[string]any{"text": text}).json(tb)
}

func replyText(m map[string]any) string {
	return m["reply"].(map[string]any)["text"].(string)
}

// TestSeedGotcha is the seed page's central promise: editing changes the
// draft; only publishing moves it to live.
func TestSeedGotcha(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("gotcha")

	// Never published: a live session is refused with exactly the seed's body.
	m := problemCode(t, e.do("POST", "/chat/sessions", e.admin, map[string]any{"agentId": id, "draftMode": false}), 409, "no_published_version")
	if m["title"] != "Conflict" {
		t.Fatalf("title=%v", m["title"])
	}
	// ...but the tester runs the draft.
	e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id, "draftMode": true})

	e.must(200, "PUT", "/agents/"+id+"/draft/knowledge/hours", e.admin, map[string]any{"title": "Opening hours", "content": "We are open from 9am to 5pm on weekdays.\n"})
	e.publish(id)
	live := e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id}).json(t)
	if live["version"] != "v1" || live["billable"] != true || live["draftMode"] != false || live["draftRevision"] != nil {
		t.Fatalf("live session %v", live)
	}
	r := say(t, e, live["id"].(string), "what are your opening hours?")
	if !strings.Contains(replyText(r), "9am to 5pm") || r["servedBy"].(map[string]any)["version"] != "v1" {
		t.Fatalf("live reply %v", r)
	}
	if r["trace"].(map[string]any)["knowledge"] != "hours" {
		t.Fatalf("trace %v", r["trace"])
	}

	// Edit the draft: the tester answers with the edit, the phone does not.
	e.must(200, "PUT", "/agents/"+id+"/draft/knowledge/hours", e.admin, map[string]any{"title": "Opening hours", "content": "We are open from 8am to 8pm every day.\n"})
	tester := e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id, "draftMode": true}).json(t)
	if tester["billable"] != false || tester["version"] != nil || !hex40.MatchString(fmt.Sprint(tester["draftRevision"])) {
		t.Fatalf("tester session %v", tester)
	}
	if got := replyText(say(t, e, tester["id"].(string), "what are your opening hours?")); !strings.Contains(got, "8am to 8pm") {
		t.Fatalf("tester reply %q, want the edit", got)
	}
	phone := e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id, "channel": "phone"}).json(t)
	if got := replyText(say(t, e, phone["id"].(string), "what are your opening hours?")); !strings.Contains(got, "9am to 5pm") {
		t.Fatalf("phone reply %q, want the published answer", got)
	}

	// Publish: new sessions get the edit; the pinned session keeps v1.
	e.publish(id)
	fresh := e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id}).json(t)
	if got := replyText(say(t, e, fresh["id"].(string), "opening hours?")); !strings.Contains(got, "8am to 8pm") || fresh["version"] != "v2" {
		t.Fatalf("fresh session %v reply %q", fresh["version"], got)
	}
	if got := replyText(say(t, e, live["id"].(string), "opening hours?")); !strings.Contains(got, "9am to 5pm") {
		t.Fatalf("pinned session moved: %q", got)
	}
	// Roll back: new sessions follow the pointer at once.
	e.must(200, "POST", "/agents/"+id+"/rollback", e.admin, map[string]any{"version": "v1"})
	back := e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id}).json(t)
	if back["version"] != "v1" {
		t.Fatalf("after rollback a new session serves %v", back["version"])
	}

	// A broken draft cannot be tested.
	e.must(200, "PUT", "/agents/"+id+"/draft/files/skills/broken.yaml", e.admin, []byte("description: [unclosed\n"))
	problemCode(t, e.do("POST", "/chat/sessions", e.admin, map[string]any{"agentId": id, "draftMode": true}), 422, "compile_failed")

	u := e.must(200, "GET", "/usage?agentId="+id, e.reader, nil).json(t)
	if u["billableSessions"] != 4.0 || u["draftSessions"] != 2.0 {
		t.Fatalf("usage %v", u)
	}
	by := u["byVersion"].(map[string]any)
	if by["v1"] != 3.0 || by["v2"] != 1.0 {
		t.Fatalf("byVersion %v", by)
	}

	// The transcript is stored, in order.
	s := e.must(200, "GET", "/chat/sessions/"+live["id"].(string), e.admin, nil).json(t)
	msgs := s["messages"].([]any)
	if len(msgs) != 4 || msgs[0].(map[string]any)["role"] != "user" || msgs[1].(map[string]any)["role"] != "agent" {
		t.Fatalf("messages %v", msgs)
	}
}

func TestPlaybookSkillCallIsRecorded(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("acme")
	e.loadFixture(id, "acme-support")
	e.publish(id)
	sid := e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id}).json(t)["id"].(string)
	// The fixture's track-order playbook asks for the order number, then
	// calls order-status with it.
	first := say(t, e, sid, "I want to track my order")
	if first["trace"].(map[string]any)["playbook"] == nil {
		t.Fatalf("no playbook started: %v", first)
	}
	second := say(t, e, sid, "A-1001")
	calls, _ := second["trace"].(map[string]any)["skillCalls"].([]any)
	if len(calls) == 0 {
		t.Fatalf("no skill call recorded: %v", second)
	}
	call := calls[0].(map[string]any)
	if !strings.Contains(fmt.Sprint(call["url"]), "A-1001") {
		t.Fatalf("skill call %v does not carry the saved order id", call)
	}
}

// TestTurnsDoNoGitWork: once a session exists, its turns are answered from
// memory: with the repository moved away, both kinds still answer.
func TestTurnsDoNoGitWork(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("nogit")
	e.loadFixture(id, "acme-support")
	e.publish(id)
	live := e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id}).json(t)["id"].(string)
	draft := e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id, "draftMode": true}).json(t)["id"].(string)
	dir := e.repos.Path(id)
	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	defer os.Rename(dir+".away", dir)
	for _, sid := range []string{live, draft} {
		if got := replyText(say(t, e, sid, "How long do I have to return something?")); !strings.Contains(got, "30 days") {
			t.Fatalf("session %s answered %q without its repository", sid, got)
		}
	}
}
