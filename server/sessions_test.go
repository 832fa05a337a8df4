package server_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func say(tb testing.TB, e *env, sid, text string) map[string]any {
	tb.Helper()
	return e.must(200, "POST", "/chat/sessions/"+sid+"/messages", e.admin, map[string]any{"text": text}).json(tb)
}

func replyText(tb testing.TB, m map[string]any) string {
	tb.Helper()
	return str(tb, obj(tb, m, "reply"), "text")
}

// TestSeedGotcha is the seed page's central promise: editing changes the
// draft; only publishing moves it to live.
func TestSeedGotcha(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("gotcha")

	// Never published: a live session is refused with exactly the seed's body.
	m := problemCode(t, e.do("POST", "/chat/sessions", e.admin, map[string]any{"agentId": id, "draftMode": false}), 409, "no_published_version")
	assert.Equal(t, "Conflict", m["title"], "title")
	// ...but the tester runs the draft.
	e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id, "draftMode": true})

	e.must(200, "PUT", "/agents/"+id+"/draft/knowledge/hours", e.admin, map[string]any{"title": "Opening hours", "content": "We are open from 9am to 5pm on weekdays.\n"})
	e.publish(id)
	live := e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id}).json(t)
	assert.Equal(t, "v1", live["version"], "live session %v", live)
	assert.Equal(t, true, live["billable"], "live session %v", live)
	assert.Equal(t, false, live["draftMode"], "live session %v", live)
	assert.Nil(t, live["draftRevision"], "live session %v", live)
	liveID := str(t, live, "id")
	r := say(t, e, liveID, "what are your opening hours?")
	assert.Contains(t, replyText(t, r), "9am to 5pm", "live reply %v", r)
	assert.Equal(t, "v1", obj(t, r, "servedBy")["version"], "live reply %v", r)
	assert.Equal(t, "hours", obj(t, r, "trace")["knowledge"], "trace")

	// Edit the draft: the tester answers with the edit, the phone does not.
	e.must(200, "PUT", "/agents/"+id+"/draft/knowledge/hours", e.admin, map[string]any{"title": "Opening hours", "content": "We are open from 8am to 8pm every day.\n"})
	tester := e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id, "draftMode": true}).json(t)
	assert.Equal(t, false, tester["billable"], "tester session %v", tester)
	assert.Nil(t, tester["version"], "tester session %v", tester)
	assert.Regexp(t, hex40, fmt.Sprint(tester["draftRevision"]), "tester session %v", tester)
	assert.Contains(t, replyText(t, say(t, e, str(t, tester, "id"), "what are your opening hours?")), "8am to 8pm", "tester reply, want the edit")
	phone := e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id, "channel": "phone"}).json(t)
	assert.Contains(t, replyText(t, say(t, e, str(t, phone, "id"), "what are your opening hours?")), "9am to 5pm", "phone reply, want the published answer")

	// Publish: new sessions get the edit; the pinned session keeps v1.
	e.publish(id)
	fresh := e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id}).json(t)
	assert.Equal(t, "v2", fresh["version"], "fresh session")
	assert.Contains(t, replyText(t, say(t, e, str(t, fresh, "id"), "opening hours?")), "8am to 8pm", "fresh session reply")
	assert.Contains(t, replyText(t, say(t, e, liveID, "opening hours?")), "9am to 5pm", "pinned session moved")
	// Roll back: new sessions follow the pointer at once.
	e.must(200, "POST", "/agents/"+id+"/rollback", e.admin, map[string]any{"version": "v1"})
	back := e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id}).json(t)
	assert.Equal(t, "v1", back["version"], "after rollback a new session serves")

	// A broken draft cannot be tested.
	e.must(200, "PUT", "/agents/"+id+"/draft/files/skills/broken.yaml", e.admin, []byte("description: [unclosed\n"))
	problemCode(t, e.do("POST", "/chat/sessions", e.admin, map[string]any{"agentId": id, "draftMode": true}), 422, "compile_failed")

	u := e.must(200, "GET", "/usage?agentId="+id, e.reader, nil).json(t)
	assert.Equal(t, 4.0, u["billableSessions"], "usage %v", u)
	assert.Equal(t, 2.0, u["draftSessions"], "usage %v", u)
	by := obj(t, u, "byVersion")
	assert.Equal(t, 3.0, by["v1"], "byVersion %v", by)
	assert.Equal(t, 1.0, by["v2"], "byVersion %v", by)

	// The transcript is stored, in order.
	s := e.must(200, "GET", "/chat/sessions/"+liveID, e.admin, nil).json(t)
	msgs := arr(t, s, "messages")
	require.Len(t, msgs, 4, "messages %v", msgs)
	assert.Equal(t, "user", elem(t, msgs, 0)["role"], "messages %v", msgs)
	assert.Equal(t, "agent", elem(t, msgs, 1)["role"], "messages %v", msgs)
}

func TestPlaybookSkillCallIsRecorded(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("acme")
	e.loadFixture(id, "acme-support")
	e.publish(id)
	sid := str(t, e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id}).json(t), "id")
	// The fixture's track-order playbook asks for the order number, then
	// calls order-status with it.
	first := say(t, e, sid, "I want to track my order")
	require.NotNil(t, obj(t, first, "trace")["playbook"], "no playbook started: %v", first)
	second := say(t, e, sid, "A-1001")
	calls := arr(t, obj(t, second, "trace"), "skillCalls")
	require.NotEmpty(t, calls, "no skill call recorded: %v", second)
	call := elem(t, calls, 0)
	assert.Contains(t, fmt.Sprint(call["url"]), "A-1001", "skill call %v does not carry the saved order id", call)
}

// TestTurnsDoNoGitWork: once a session exists, its turns are answered from
// memory: with the repository moved away, both kinds still answer.
func TestTurnsDoNoGitWork(t *testing.T) {
	e := newEnv(t)
	id := e.createAgent("nogit")
	e.loadFixture(id, "acme-support")
	e.publish(id)
	live := str(t, e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id}).json(t), "id")
	draft := str(t, e.must(201, "POST", "/chat/sessions", e.admin, map[string]any{"agentId": id, "draftMode": true}).json(t), "id")
	dir := e.repos.Path(id)
	require.NoError(t, os.Rename(dir, dir+".away"))
	defer os.Rename(dir+".away", dir)
	for _, sid := range []string{live, draft} {
		assert.Contains(t, replyText(t, say(t, e, sid, "How long do I have to return something?")), "30 days", "session %s without its repository", sid)
	}
}
