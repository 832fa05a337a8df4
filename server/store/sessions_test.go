package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// sessionT0 is the base time of the session tests.
var sessionT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// openSessionStore opens the store at path and closes it at the end of the
// test unless the test closes it first.
func openSessionStore(tb testing.TB, path string) *Store {
	tb.Helper()
	s, err := Open(path)
	if err != nil {
		tb.Fatalf("Open(%q): %v", path, err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// sessionFixture creates workspaces "default" and "other" and agents
// agt_a, agt_b in default, returning the workspace ids.
func sessionFixture(tb testing.TB, s *Store) (ws, other string) {
	tb.Helper()
	ctx := context.Background()
	err := s.Write(ctx, func(tx Tx) error {
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
			if err := tx.CreateAgent(ctx, Agent{ID: id, WorkspaceID: ws, Name: id, CreatedAt: sessionT0, DraftUpdatedAt: sessionT0}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("fixture: %v", err)
	}
	return ws, other
}

// mustCreateSession inserts ses and fails the test on error.
func mustCreateSession(tb testing.TB, s *Store, ses Session) {
	tb.Helper()
	ctx := context.Background()
	if err := s.Write(ctx, func(tx Tx) error { return tx.CreateSession(ctx, ses) }); err != nil {
		tb.Fatalf("CreateSession(%s): %v", ses.ID, err)
	}
}

func TestSessionCreateGet(t *testing.T) {
	s := openSessionStore(t, filepath.Join(t.TempDir(), "flowyte.db"))
	ws, other := sessionFixture(t, s)
	ctx := context.Background()
	id := NewSessionID()
	if !strings.HasPrefix(id, "ses_") || len(id) != len("ses_")+16 {
		t.Fatalf("NewSessionID()=%q, want ses_ + 16 characters", id)
	}
	want := Session{
		ID: id, WorkspaceID: ws, AgentID: "agt_a", Channel: "chat",
		Version: 3, Billable: true, CreatedAt: sessionT0, State: []byte(`{}`),
	}
	mustCreateSession(t, s, want)
	got, err := s.Session(ctx, ws, id)
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Session=%+v, want %+v", got, want)
	}

	draft := Session{ID: NewSessionID(), WorkspaceID: ws, AgentID: "agt_a", Channel: "chat", DraftMode: true, DraftRevision: "abc123", CreatedAt: sessionT0}
	mustCreateSession(t, s, draft)
	if got, err := s.Session(ctx, ws, draft.ID); err != nil || !reflect.DeepEqual(got, draft) {
		t.Fatalf("Session(draft)=%+v, %v, want %+v", got, err, draft)
	}

	if _, err := s.Session(ctx, other, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Session from another workspace: err=%v, want ErrNotFound", err)
	}
	if _, err := s.Session(ctx, ws, "ses_missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Session(unknown): err=%v, want ErrNotFound", err)
	}
	err = s.Write(ctx, func(tx Tx) error { return tx.CreateSession(ctx, want) })
	if !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate session: err=%v, want ErrConflict", err)
	}
}

func TestCreateSessionRejectsInconsistentPinning(t *testing.T) {
	s := openSessionStore(t, filepath.Join(t.TempDir(), "flowyte.db"))
	ws, _ := sessionFixture(t, s)
	ctx := context.Background()
	base := Session{ID: "ses_x", WorkspaceID: ws, AgentID: "agt_a", Channel: "chat", CreatedAt: sessionT0}
	bad := map[string]func(*Session){
		"draft with version":        func(s *Session) { s.DraftMode, s.Version = true, 2 },
		"published without version": func(s *Session) { s.Version = 0 },
		"published with draft rev":  func(s *Session) { s.Version, s.DraftRevision = 1, "abc" },
		"no created at":             func(s *Session) { s.Version, s.CreatedAt = 1, time.Time{} },
		"no agent":                  func(s *Session) { s.Version, s.AgentID = 1, "" },
		"unknown agent":             func(s *Session) { s.Version, s.AgentID = 1, "agt_nope" },
	}
	for name, mutate := range bad {
		ses := base
		mutate(&ses)
		if err := s.Write(ctx, func(tx Tx) error { return tx.CreateSession(ctx, ses) }); err == nil {
			t.Errorf("%s: CreateSession err=nil, want an error", name)
		}
	}
}

func TestAppendTurnOrderingAndRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flowyte.db")
	s := openSessionStore(t, path)
	ws, _ := sessionFixture(t, s)
	ctx := context.Background()
	id := NewSessionID()
	mustCreateSession(t, s, Session{ID: id, WorkspaceID: ws, AgentID: "agt_a", Channel: "chat", Version: 1, Billable: true, CreatedAt: sessionT0})

	var want []Message
	for i := 0; i < 3; i++ {
		at := sessionT0.Add(time.Duration(i) * time.Minute)
		user := Message{Text: fmt.Sprintf("question %d", i), At: at}
		agent := Message{Text: fmt.Sprintf("answer %d", i), Trace: []byte(fmt.Sprintf(`{"n":%d}`, i)), At: at.Add(time.Millisecond)}
		state := []byte(fmt.Sprintf(`{"step":%d}`, i))
		if err := s.AppendTurn(ctx, id, user, agent, state); err != nil {
			t.Fatalf("AppendTurn %d: %v", i, err)
		}
		want = append(want,
			Message{Seq: 2*i + 1, Role: RoleUser, Text: user.Text, At: user.At},
			Message{Seq: 2*i + 2, Role: RoleAgent, Text: agent.Text, Trace: agent.Trace, At: agent.At})
	}
	check := func(s *Store, when string) {
		t.Helper()
		got, err := s.Messages(ctx, id)
		if err != nil {
			t.Fatalf("%s: Messages: %v", when, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: Messages=%+v, want %+v", when, got, want)
		}
		ses, err := s.Session(ctx, ws, id)
		if err != nil {
			t.Fatalf("%s: Session: %v", when, err)
		}
		if string(ses.State) != `{"step":2}` || ses.LastSeq != 6 {
			t.Fatalf("%s: state=%s lastSeq=%d, want {\"step\":2} and 6", when, ses.State, ses.LastSeq)
		}
	}
	check(s, "before restart")

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2 := openSessionStore(t, path)
	check(s2, "after restart")

	// A nil state clears it.
	if err := s2.AppendTurn(ctx, id, Message{Text: "bye", At: sessionT0}, Message{Text: "ciao", At: sessionT0}, nil); err != nil {
		t.Fatalf("AppendTurn: %v", err)
	}
	if ses, err := s2.Session(ctx, ws, id); err != nil || ses.State != nil || ses.LastSeq != 8 {
		t.Fatalf("after nil state: state=%q lastSeq=%d err=%v, want nil, 8, nil", ses.State, ses.LastSeq, err)
	}
}

func TestAppendTurnErrors(t *testing.T) {
	s := openSessionStore(t, filepath.Join(t.TempDir(), "flowyte.db"))
	ws, _ := sessionFixture(t, s)
	ctx := context.Background()
	if err := s.AppendTurn(ctx, "ses_missing", Message{Text: "a"}, Message{Text: "b"}, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("AppendTurn(unknown): err=%v, want ErrNotFound", err)
	}
	if _, err := s.Messages(ctx, "ses_missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Messages(unknown): err=%v, want ErrNotFound", err)
	}
	id := NewSessionID()
	mustCreateSession(t, s, Session{ID: id, WorkspaceID: ws, AgentID: "agt_a", Channel: "chat", DraftMode: true, CreatedAt: sessionT0})
	if msgs, err := s.Messages(ctx, id); err != nil || len(msgs) != 0 {
		t.Errorf("Messages(new)=%v, %v, want empty", msgs, err)
	}
	if err := s.AppendTurn(ctx, id, Message{Role: RoleAgent, Text: "a"}, Message{Text: "b"}, nil); err == nil {
		t.Errorf("AppendTurn with swapped roles: err=nil, want an error")
	}

	// Optimistic check: a stale lastSeq writes nothing.
	if err := s.AppendTurnAfter(ctx, id, 0, Message{Text: "a"}, Message{Text: "b"}, []byte(`1`)); err != nil {
		t.Fatalf("AppendTurnAfter(0): %v", err)
	}
	if err := s.AppendTurnAfter(ctx, id, 0, Message{Text: "c"}, Message{Text: "d"}, []byte(`2`)); !errors.Is(err, ErrConflict) {
		t.Fatalf("AppendTurnAfter(stale): err=%v, want ErrConflict", err)
	}
	ses, err := s.Session(ctx, ws, id)
	if err != nil {
		t.Fatal(err)
	}
	if string(ses.State) != "1" || ses.LastSeq != 2 {
		t.Fatalf("after stale append: state=%s lastSeq=%d, want 1 and 2", ses.State, ses.LastSeq)
	}
	if msgs, _ := s.Messages(ctx, id); len(msgs) != 2 {
		t.Fatalf("messages=%d, want 2", len(msgs))
	}
}

func TestAppendTurnConcurrent(t *testing.T) {
	s := openSessionStore(t, filepath.Join(t.TempDir(), "flowyte.db"))
	ws, _ := sessionFixture(t, s)
	ctx := context.Background()
	id := NewSessionID()
	mustCreateSession(t, s, Session{ID: id, WorkspaceID: ws, AgentID: "agt_a", Channel: "chat", Version: 1, CreatedAt: sessionT0})
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			text := fmt.Sprintf("%02d", i)
			errs <- s.AppendTurn(ctx, id, Message{Text: "q" + text, At: sessionT0}, Message{Text: "a" + text, At: sessionT0}, []byte(text))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("AppendTurn: %v", err)
		}
	}
	msgs, err := s.Messages(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2*n {
		t.Fatalf("messages=%d, want %d", len(msgs), 2*n)
	}
	for i := 0; i < len(msgs); i += 2 {
		u, a := msgs[i], msgs[i+1]
		if u.Seq != i+1 || a.Seq != i+2 || u.Role != RoleUser || a.Role != RoleAgent || u.Text[1:] != a.Text[1:] {
			t.Fatalf("pair at %d = %+v / %+v, want seq %d,%d user/agent of one turn", i, u, a, i+1, i+2)
		}
	}
	ses, err := s.Session(ctx, ws, id)
	if err != nil {
		t.Fatal(err)
	}
	if last := msgs[len(msgs)-1].Text[1:]; string(ses.State) != last {
		t.Fatalf("state=%s, want the last turn's %s", ses.State, last)
	}
}

func TestUsage(t *testing.T) {
	s := openSessionStore(t, filepath.Join(t.TempDir(), "flowyte.db"))
	ws, other := sessionFixture(t, s)
	ctx := context.Background()
	day := 24 * time.Hour
	sessions := []Session{
		{AgentID: "agt_a", Version: 1, Billable: true, CreatedAt: sessionT0},
		{AgentID: "agt_a", Version: 2, Billable: true, CreatedAt: sessionT0.Add(day)},
		{AgentID: "agt_a", Version: 2, Billable: true, CreatedAt: sessionT0.Add(2 * day)},
		{AgentID: "agt_a", DraftMode: true, DraftRevision: "r1", CreatedAt: sessionT0.Add(day)},
		{AgentID: "agt_b", Version: 1, Billable: true, CreatedAt: sessionT0.Add(day)},
		{AgentID: "agt_b", DraftMode: true, DraftRevision: "r2", CreatedAt: sessionT0.Add(3 * day)},
	}
	for _, ses := range sessions {
		ses.ID, ses.WorkspaceID, ses.Channel = NewSessionID(), ws, "chat"
		mustCreateSession(t, s, ses)
	}
	cases := []struct {
		name     string
		ws       string
		agent    string
		from, to time.Time
		want     Usage
	}{
		{"all", ws, "", time.Time{}, time.Time{}, Usage{4, 2, map[int]int{1: 2, 2: 2}}},
		{"agent a", ws, "agt_a", time.Time{}, time.Time{}, Usage{3, 1, map[int]int{1: 1, 2: 2}}},
		{"from inclusive", ws, "agt_a", sessionT0.Add(day), time.Time{}, Usage{2, 1, map[int]int{2: 2}}},
		{"to exclusive", ws, "", time.Time{}, sessionT0.Add(day), Usage{1, 0, map[int]int{1: 1}}},
		{"window", ws, "", sessionT0.Add(day), sessionT0.Add(2 * day), Usage{2, 1, map[int]int{1: 1, 2: 1}}},
		{"other workspace", other, "", time.Time{}, time.Time{}, Usage{0, 0, map[int]int{}}},
		{"unknown agent", ws, "agt_nope", time.Time{}, time.Time{}, Usage{0, 0, map[int]int{}}},
	}
	for _, c := range cases {
		got, err := s.Usage(ctx, c.ws, c.agent, c.from, c.to)
		if err != nil {
			t.Fatalf("%s: Usage: %v", c.name, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Usage=%+v, want %+v", c.name, got, c.want)
		}
	}
	counts, err := s.CountSessionsByAgent(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"agt_a": 4, "agt_b": 2}; !reflect.DeepEqual(counts, want) {
		t.Errorf("CountSessionsByAgent=%v, want %v", counts, want)
	}
}
