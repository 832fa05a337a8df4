package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowyte/flowyte/server/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sessionT0 is the base time of the session tests.
var sessionT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// sessionFixture creates workspaces "default" and "other" and agents
// agt_a, agt_b in default, returning the workspace ids.
func sessionFixture(tb testing.TB, s Engine) (ws, other string) {
	tb.Helper()
	ctx := context.Background()
	err := s.Write(ctx, func(tx store.Tx) error {
		w, err := tx.EnsureWorkspace(ctx, "default", sessionT0)
		if err != nil {
			return err
		}
		o, err := tx.EnsureWorkspace(ctx, "other", sessionT0)
		if err != nil {
			return err
		}
		ws, other = w.ID, o.ID
		for _, id := range []string{"agt_a", "agt_b"} {
			if err := tx.CreateAgent(ctx, store.Agent{ID: id, WorkspaceID: ws, Name: id, CreatedAt: sessionT0, DraftUpdatedAt: sessionT0}); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(tb, err, "fixture")
	return ws, other
}

// mustCreateSession inserts ses and fails the test on error.
func mustCreateSession(tb testing.TB, s Engine, ses store.Session) {
	tb.Helper()
	ctx := context.Background()
	require.NoError(tb, s.Write(ctx, func(tx store.Tx) error { return tx.CreateSession(ctx, ses) }), "CreateSession(%s)", ses.ID)
}

func testSessionCreateGet(t *testing.T, open Opener) {
	s := open(t)
	ws, other := sessionFixture(t, s)
	ctx := context.Background()
	id := store.NewSessionID()
	require.True(t, strings.HasPrefix(id, "ses_"), "NewSessionID()=%q, want ses_ + 16 characters", id)
	require.Len(t, id, len("ses_")+16, "NewSessionID()=%q, want ses_ + 16 characters", id)
	want := store.Session{
		ID: id, WorkspaceID: ws, AgentID: "agt_a", Channel: "chat",
		Version: 3, Billable: true, CreatedAt: sessionT0, State: []byte(`{}`),
	}
	mustCreateSession(t, s, want)
	got, err := s.Session(ctx, ws, id)
	require.NoError(t, err, "Session")
	require.Equal(t, want, got, "Session=%+v, want %+v", got, want)

	draft := store.Session{ID: store.NewSessionID(), WorkspaceID: ws, AgentID: "agt_a", Channel: "chat", DraftMode: true, DraftRevision: "abc123", CreatedAt: sessionT0}
	mustCreateSession(t, s, draft)
	got, err = s.Session(ctx, ws, draft.ID)
	require.NoError(t, err, "Session(draft)=%+v, %v, want %+v", got, err, draft)
	require.Equal(t, draft, got, "Session(draft)=%+v, %v, want %+v", got, err, draft)

	_, err = s.Session(ctx, other, id)
	assert.ErrorIs(t, err, store.ErrNotFound, "Session from another workspace: err=%v, want ErrNotFound", err)
	_, err = s.Session(ctx, ws, "ses_missing")
	assert.ErrorIs(t, err, store.ErrNotFound, "Session(unknown): err=%v, want ErrNotFound", err)
	err = s.Write(ctx, func(tx store.Tx) error { return tx.CreateSession(ctx, want) })
	assert.ErrorIs(t, err, store.ErrConflict, "duplicate session: err=%v, want ErrConflict", err)
}

func testCreateSessionRejectsInconsistentPinning(t *testing.T, open Opener) {
	s := open(t)
	ws, _ := sessionFixture(t, s)
	ctx := context.Background()
	base := store.Session{ID: "ses_x", WorkspaceID: ws, AgentID: "agt_a", Channel: "chat", CreatedAt: sessionT0}
	bad := map[string]func(*store.Session){
		"draft with version":        func(s *store.Session) { s.DraftMode, s.Version = true, 2 },
		"published without version": func(s *store.Session) { s.Version = 0 },
		"published with draft rev":  func(s *store.Session) { s.Version, s.DraftRevision = 1, "abc" },
		"no created at":             func(s *store.Session) { s.Version, s.CreatedAt = 1, time.Time{} },
		"no agent":                  func(s *store.Session) { s.Version, s.AgentID = 1, "" },
		"unknown agent":             func(s *store.Session) { s.Version, s.AgentID = 1, "agt_nope" },
	}
	for name, mutate := range bad {
		ses := base
		mutate(&ses)
		err := s.Write(ctx, func(tx store.Tx) error { return tx.CreateSession(ctx, ses) })
		assert.Error(t, err, "%s: CreateSession err=nil, want an error", name)
	}
}

func testAppendTurnOrderingAndRestart(t *testing.T, open Opener) {
	s := open(t)
	ws, _ := sessionFixture(t, s)
	ctx := context.Background()
	id := store.NewSessionID()
	mustCreateSession(t, s, store.Session{ID: id, WorkspaceID: ws, AgentID: "agt_a", Channel: "chat", Version: 1, Billable: true, CreatedAt: sessionT0})

	var want []store.Message
	for i := 0; i < 3; i++ {
		at := sessionT0.Add(time.Duration(i) * time.Minute)
		user := store.Message{Text: fmt.Sprintf("question %d", i), At: at}
		agent := store.Message{Text: fmt.Sprintf("answer %d", i), Trace: []byte(fmt.Sprintf(`{"n":%d}`, i)), At: at.Add(time.Millisecond)}
		state := []byte(fmt.Sprintf(`{"step":%d}`, i))
		require.NoError(t, s.AppendTurn(ctx, id, user, agent, state), "AppendTurn %d", i)
		want = append(want,
			store.Message{Seq: 2*i + 1, Role: store.RoleUser, Text: user.Text, At: user.At},
			store.Message{Seq: 2*i + 2, Role: store.RoleAgent, Text: agent.Text, Trace: agent.Trace, At: agent.At})
	}
	check := func(s Engine, when string) {
		t.Helper()
		got, err := s.Messages(ctx, id)
		require.NoError(t, err, "%s: Messages", when)
		require.Equal(t, want, got, "%s: Messages=%+v, want %+v", when, got, want)
		ses, err := s.Session(ctx, ws, id)
		require.NoError(t, err, "%s: Session", when)
		require.Equal(t, `{"step":2}`, string(ses.State), "%s: state=%s lastSeq=%d, want {\"step\":2} and 6", when, ses.State, ses.LastSeq)
		require.EqualValues(t, 6, ses.LastSeq, "%s: state=%s lastSeq=%d, want {\"step\":2} and 6", when, ses.State, ses.LastSeq)
	}
	check(s, "before restart")

	s2 := reopen(t, s)
	check(s2, "after restart")

	// A nil state clears it.
	require.NoError(t, s2.AppendTurn(ctx, id, store.Message{Text: "bye", At: sessionT0}, store.Message{Text: "ciao", At: sessionT0}, nil), "AppendTurn")
	ses, err := s2.Session(ctx, ws, id)
	require.NoError(t, err, "after nil state: state=%q lastSeq=%d err", ses.State, ses.LastSeq)
	require.Nil(t, ses.State, "after nil state: state=%q lastSeq=%d err=%v, want nil, 8, nil", ses.State, ses.LastSeq, err)
	require.EqualValues(t, 8, ses.LastSeq, "after nil state: state=%q lastSeq=%d err=%v, want nil, 8, nil", ses.State, ses.LastSeq, err)
}

func testAppendTurnErrors(t *testing.T, open Opener) {
	s := open(t)
	ws, _ := sessionFixture(t, s)
	ctx := context.Background()
	err := s.AppendTurn(ctx, "ses_missing", store.Message{Text: "a"}, store.Message{Text: "b"}, nil)
	assert.ErrorIs(t, err, store.ErrNotFound, "AppendTurn(unknown): err=%v, want ErrNotFound", err)
	_, err = s.Messages(ctx, "ses_missing")
	assert.ErrorIs(t, err, store.ErrNotFound, "Messages(unknown): err=%v, want ErrNotFound", err)
	id := store.NewSessionID()
	mustCreateSession(t, s, store.Session{ID: id, WorkspaceID: ws, AgentID: "agt_a", Channel: "chat", DraftMode: true, CreatedAt: sessionT0})
	msgs, err := s.Messages(ctx, id)
	assert.NoError(t, err, "Messages(new)", msgs)
	assert.Len(t, msgs, 0, "Messages(new)=%v, %v, want empty", msgs, err)
	err = s.AppendTurn(ctx, id, store.Message{Role: store.RoleAgent, Text: "a"}, store.Message{Text: "b"}, nil)
	assert.Error(t, err, "AppendTurn with swapped roles: err=nil, want an error")

	// Optimistic check: a stale lastSeq writes nothing.
	require.NoError(t, s.AppendTurnAfter(ctx, id, 0, store.Message{Text: "a"}, store.Message{Text: "b"}, []byte(`1`)), "AppendTurnAfter(0)")
	err = s.AppendTurnAfter(ctx, id, 0, store.Message{Text: "c"}, store.Message{Text: "d"}, []byte(`2`))
	require.ErrorIs(t, err, store.ErrConflict, "AppendTurnAfter(stale): err=%v, want ErrConflict", err)
	ses, err := s.Session(ctx, ws, id)
	require.NoError(t, err)
	require.Equal(t, "1", string(ses.State), "after stale append: state=%s lastSeq=%d, want 1 and 2", ses.State, ses.LastSeq)
	require.EqualValues(t, 2, ses.LastSeq, "after stale append: state=%s lastSeq=%d, want 1 and 2", ses.State, ses.LastSeq)
	msgs, _ = s.Messages(ctx, id)
	require.Len(t, msgs, 2, "messages=%d, want 2", len(msgs))
}

func testAppendTurnConcurrent(t *testing.T, open Opener) {
	s := open(t)
	ws, _ := sessionFixture(t, s)
	ctx := context.Background()
	id := store.NewSessionID()
	mustCreateSession(t, s, store.Session{ID: id, WorkspaceID: ws, AgentID: "agt_a", Channel: "chat", Version: 1, CreatedAt: sessionT0})
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			text := fmt.Sprintf("%02d", i)
			errs <- s.AppendTurn(ctx, id, store.Message{Text: "q" + text, At: sessionT0}, store.Message{Text: "a" + text, At: sessionT0}, []byte(text))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "AppendTurn")
	}
	msgs, err := s.Messages(ctx, id)
	require.NoError(t, err)
	require.Len(t, msgs, 2*n, "messages=%d, want %d", len(msgs), 2*n)
	for i := 0; i < len(msgs); i += 2 {
		u, a := msgs[i], msgs[i+1]
		require.Equal(t, i+1, u.Seq, "pair at %d = %+v / %+v, want seq %d,%d user/agent of one turn", i, u, a, i+1, i+2)
		require.Equal(t, i+2, a.Seq, "pair at %d = %+v / %+v, want seq %d,%d user/agent of one turn", i, u, a, i+1, i+2)
		require.Equal(t, store.RoleUser, u.Role, "pair at %d = %+v / %+v, want seq %d,%d user/agent of one turn", i, u, a, i+1, i+2)
		require.Equal(t, store.RoleAgent, a.Role, "pair at %d = %+v / %+v, want seq %d,%d user/agent of one turn", i, u, a, i+1, i+2)
		require.Equal(t, a.Text[1:], u.Text[1:], "pair at %d = %+v / %+v, want seq %d,%d user/agent of one turn", i, u, a, i+1, i+2)
	}
	ses, err := s.Session(ctx, ws, id)
	require.NoError(t, err)
	last := msgs[len(msgs)-1].Text[1:]
	require.Equal(t, last, string(ses.State), "state=%s, want the last turn's %s", ses.State, last)
}

func testUsage(t *testing.T, open Opener) {
	s := open(t)
	ws, other := sessionFixture(t, s)
	ctx := context.Background()
	day := 24 * time.Hour
	sessions := []store.Session{
		{AgentID: "agt_a", Version: 1, Billable: true, CreatedAt: sessionT0},
		{AgentID: "agt_a", Version: 2, Billable: true, CreatedAt: sessionT0.Add(day)},
		{AgentID: "agt_a", Version: 2, Billable: true, CreatedAt: sessionT0.Add(2 * day)},
		{AgentID: "agt_a", DraftMode: true, DraftRevision: "r1", CreatedAt: sessionT0.Add(day)},
		{AgentID: "agt_b", Version: 1, Billable: true, CreatedAt: sessionT0.Add(day)},
		{AgentID: "agt_b", DraftMode: true, DraftRevision: "r2", CreatedAt: sessionT0.Add(3 * day)},
	}
	for _, ses := range sessions {
		ses.ID, ses.WorkspaceID, ses.Channel = store.NewSessionID(), ws, "chat"
		mustCreateSession(t, s, ses)
	}
	cases := []struct {
		name     string
		ws       string
		agent    string
		from, to time.Time
		want     store.Usage
	}{
		{"all", ws, "", time.Time{}, time.Time{}, store.Usage{BillableSessions: 4, DraftSessions: 2, ByVersion: map[int]int{1: 2, 2: 2}}},
		{"agent a", ws, "agt_a", time.Time{}, time.Time{}, store.Usage{BillableSessions: 3, DraftSessions: 1, ByVersion: map[int]int{1: 1, 2: 2}}},
		{"from inclusive", ws, "agt_a", sessionT0.Add(day), time.Time{}, store.Usage{BillableSessions: 2, DraftSessions: 1, ByVersion: map[int]int{2: 2}}},
		{"to exclusive", ws, "", time.Time{}, sessionT0.Add(day), store.Usage{BillableSessions: 1, DraftSessions: 0, ByVersion: map[int]int{1: 1}}},
		{"window", ws, "", sessionT0.Add(day), sessionT0.Add(2 * day), store.Usage{BillableSessions: 2, DraftSessions: 1, ByVersion: map[int]int{1: 1, 2: 1}}},
		{"other workspace", other, "", time.Time{}, time.Time{}, store.Usage{BillableSessions: 0, DraftSessions: 0, ByVersion: map[int]int{}}},
		{"unknown agent", ws, "agt_nope", time.Time{}, time.Time{}, store.Usage{BillableSessions: 0, DraftSessions: 0, ByVersion: map[int]int{}}},
	}
	for _, c := range cases {
		got, err := s.Usage(ctx, c.ws, c.agent, c.from, c.to)
		require.NoError(t, err, "%s: Usage", c.name)
		assert.Equal(t, c.want, got, "%s: Usage=%+v, want %+v", c.name, got, c.want)
	}
	counts, err := s.CountSessionsByAgent(ctx, ws)
	require.NoError(t, err)
	want := map[string]int{"agt_a": 4, "agt_b": 2}
	assert.Equal(t, want, counts, "CountSessionsByAgent=%v, want %v", counts, want)
}
