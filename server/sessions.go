package server

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/flowyte/flowyte/server/responder"
	"github.com/flowyte/flowyte/server/store"
)

// maxMessageBytes caps one chat message.
const maxMessageBytes = 4096

// sessionJSON is the Session resource (CONTRACT §8).
type sessionJSON struct {
	ID            string        `json:"id"`
	AgentID       string        `json:"agentId"`
	Channel       string        `json:"channel"`
	DraftMode     bool          `json:"draftMode"`
	Version       any           `json:"version"`
	DraftRevision any           `json:"draftRevision"`
	Billable      bool          `json:"billable"`
	CreatedAt     time.Time     `json:"createdAt"`
	Greeting      string        `json:"greeting,omitempty"`
	Messages      []messageJSON `json:"messages,omitempty"`
}

type messageJSON struct {
	Seq   int             `json:"seq"`
	Role  string          `json:"role"`
	Text  string          `json:"text"`
	Trace json.RawMessage `json:"trace,omitempty"`
	At    time.Time       `json:"at"`
}

func sessionView(ss store.Session) sessionJSON {
	return sessionJSON{
		ID: ss.ID, AgentID: ss.AgentID, Channel: ss.Channel, DraftMode: ss.DraftMode,
		Version: nullableVersion(ss.Version), DraftRevision: nullableString(ss.DraftRevision),
		Billable: ss.Billable, CreatedAt: ss.CreatedAt.UTC(),
	}
}

type createSessionRequest struct {
	AgentID   string `json:"agentId" validate:"required,max=64"`
	DraftMode bool   `json:"draftMode"`
	Channel   string `json:"channel" validate:"omitempty,oneof=chat phone"`
}

func (s *Server) createSession(c *gin.Context) {
	var req createSessionRequest
	if _, err := s.bindJSON(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	if req.Channel == "" {
		req.Channel = "chat"
	}
	if req.DraftMode && req.Channel == "phone" {
		fail(c, problem(422, "validation_failed", "the phone channel serves the published version; draftMode is for chat").
			with("errors", []fieldError{{Pointer: "/draftMode", Code: "draft_on_phone", Message: "draftMode: true cannot be used with channel: phone"}}))
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	a, err := s.agentInWorkspace(ctx, p.Key.WorkspaceID, req.AgentID)
	if err != nil {
		fail(c, err)
		return
	}
	ss := store.Session{
		ID: store.NewID("ses_"), WorkspaceID: p.Key.WorkspaceID, AgentID: a.ID, Channel: req.Channel,
		DraftMode: req.DraftMode, CreatedAt: s.now(), State: []byte("{}"),
	}
	var eng *responder.Engine
	if req.DraftMode {
		rev, tree, files, err := s.repos.DraftFiles(ctx, a.ID)
		if err != nil {
			fail(c, err)
			return
		}
		s.sandbox.rememberRevision(a.ID, rev, tree)
		cd := s.sandbox.draft(tree, files)
		if !cd.result.OK() || cd.engine == nil {
			s.metrics.compileFailures.Inc()
			fail(c, problem(422, "compile_failed", "the draft does not compile").with("errors", diagList(cd.result.Errors)))
			return
		}
		eng = cd.engine
		ss.DraftRevision = rev
	} else {
		if a.Published == 0 {
			fail(c, problem(409, "no_published_version", "agent %s has never been published: publish first, or use draftMode: true", a.ID))
			return
		}
		eng, err = s.sandbox.version(ctx, s.repos, a.ID, a.Published)
		if err != nil {
			fail(c, err)
			return
		}
		ss.Version = a.Published
		ss.Billable = true
	}
	if err := s.store.Write(ctx, func(tx store.Tx) error { return tx.CreateSession(ctx, ss) }); err != nil {
		fail(c, err)
		return
	}
	mode := "published"
	if ss.DraftMode {
		mode = "draft"
	}
	s.metrics.sessions.WithLabelValues(mode).Inc()
	out := sessionView(ss)
	out.Greeting = eng.Greeting()
	c.Header("Location", "/chat/sessions/"+ss.ID)
	writeJSON(c, http.StatusCreated, out)
}

// loadSession finds :sid in the caller's workspace.
func (s *Server) loadSession(c *gin.Context) (store.Session, error) {
	sid := c.Param("sid")
	if !strings.HasPrefix(sid, "ses_") || len(sid) > 64 {
		return store.Session{}, problem(404, "session_not_found", "no session %q", sid)
	}
	ss, err := s.store.Session(c.Request.Context(), principal(c).Key.WorkspaceID, sid)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, problem(404, "session_not_found", "no session %q", sid)
	}
	return ss, err
}

func (s *Server) getSession(c *gin.Context) {
	ss, err := s.loadSession(c)
	if err != nil {
		fail(c, err)
		return
	}
	msgs, err := s.store.Messages(c.Request.Context(), ss.ID)
	if err != nil {
		fail(c, err)
		return
	}
	out := sessionView(ss)
	out.Messages = make([]messageJSON, 0, len(msgs))
	for _, m := range msgs {
		mj := messageJSON{Seq: m.Seq, Role: m.Role, Text: m.Text, At: m.At.UTC()}
		if len(m.Trace) > 0 {
			mj.Trace = json.RawMessage(m.Trace)
		}
		out.Messages = append(out.Messages, mj)
	}
	if out.Messages == nil {
		out.Messages = []messageJSON{}
	}
	writeJSON(c, 200, out)
}

// engineFor returns the responder a session is pinned to.
func (s *Server) engineFor(ctx context.Context, ss store.Session) (*responder.Engine, error) {
	if !ss.DraftMode {
		return s.sandbox.version(ctx, s.repos, ss.AgentID, ss.Version)
	}
	cd, err := s.sandbox.draftAt(ctx, s.repos, ss.AgentID, ss.DraftRevision)
	if err != nil {
		return nil, err
	}
	if cd.engine == nil {
		return nil, problem(422, "compile_failed", "the draft revision of this session no longer compiles").with("errors", diagList(cd.result.Errors))
	}
	return cd.engine, nil
}

type messageRequest struct {
	Text string `json:"text" validate:"required"`
}

// sessionLocks serialises turns of one session (state read, respond,
// append) without a global lock.
type sessionLocks [64]sync.Mutex

func (l *sessionLocks) lock(id string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	m := &l[h.Sum32()%uint32(len(l))]
	m.Lock()
	return m.Unlock
}

func (s *Server) postMessage(c *gin.Context) {
	ss, err := s.loadSession(c)
	if err != nil {
		fail(c, err)
		return
	}
	var req messageRequest
	if _, err := s.bindJSON(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	if strings.TrimSpace(req.Text) == "" {
		fail(c, problem(422, "validation_failed", "text is empty").with("errors", []fieldError{{Pointer: "/text", Code: "required", Message: "text must not be empty"}}))
		return
	}
	if len(req.Text) > maxMessageBytes || !utf8.ValidString(req.Text) {
		fail(c, problem(422, "validation_failed", "text must be valid UTF-8 of at most %d bytes", maxMessageBytes).
			with("errors", []fieldError{{Pointer: "/text", Code: "max", Message: "text must be at most 4096 bytes of UTF-8"}}))
		return
	}
	ctx := c.Request.Context()
	eng, err := s.engineFor(ctx, ss)
	if err != nil {
		fail(c, err)
		return
	}
	unlock := s.sessionLocks.lock(ss.ID)
	defer unlock()
	// Re-read the state under the lock: another turn may have moved it.
	cur, err := s.store.Session(ctx, ss.WorkspaceID, ss.ID)
	if err != nil {
		fail(c, err)
		return
	}
	var st responder.State
	if len(cur.State) > 0 {
		_ = json.Unmarshal(cur.State, &st)
	}
	turn := eng.Respond(st, req.Text)
	trace, err := json.Marshal(turn.Trace)
	if err != nil {
		fail(c, err)
		return
	}
	state, err := json.Marshal(turn.State)
	if err != nil {
		fail(c, err)
		return
	}
	now := s.now()
	if err := s.store.AppendTurn(ctx, ss.ID,
		store.Message{Role: "user", Text: turn.Input, At: now},
		store.Message{Role: "agent", Text: turn.Reply, Trace: trace, At: now}, state); err != nil {
		fail(c, err)
		return
	}
	s.metrics.turns.Inc()
	writeJSON(c, 200, gin.H{
		"reply":    gin.H{"text": turn.Reply},
		"servedBy": gin.H{"version": nullableVersion(ss.Version), "draftRevision": nullableString(ss.DraftRevision)},
		"trace":    turn.Trace,
		"input":    turn.Input,
	})
}

func (s *Server) channels(c *gin.Context) {
	a, err := s.loadAgent(c)
	if err != nil {
		fail(c, err)
		return
	}
	serves := nullableVersion(a.Published)
	writeJSON(c, 200, []gin.H{
		{"channel": "chat", "serves": serves},
		{"channel": "phone", "serves": serves},
	})
}

func (s *Server) usage(c *gin.Context) {
	ctx := c.Request.Context()
	p := principal(c)
	agentID := c.Query("agentId")
	if agentID != "" {
		if _, err := s.agentInWorkspace(ctx, p.Key.WorkspaceID, agentID); err != nil {
			fail(c, err)
			return
		}
	}
	var from, to time.Time
	for _, q := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		raw := c.Query(q.name)
		if raw == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, raw)
		if err != nil {
			fail(c, problem(400, "invalid_request", "%s must be an RFC 3339 time, got %q", q.name, raw))
			return
		}
		*q.dst = t.UTC()
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		fail(c, problem(400, "invalid_request", "to is before from"))
		return
	}
	u, err := s.store.Usage(ctx, p.Key.WorkspaceID, agentID, from, to)
	if err != nil {
		fail(c, err)
		return
	}
	by := map[string]int{}
	for n, k := range u.ByVersion {
		by[versionID(n)] = k
	}
	writeJSON(c, 200, gin.H{"billableSessions": u.BillableSessions, "draftSessions": u.DraftSessions, "byVersion": by})
}
