package backend

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowyte/flowyte/server/responder"
	"github.com/flowyte/flowyte/server/store"
)

// MaxMessageBytes caps one chat message.
const MaxMessageBytes = 4096

// Session is the Session resource (CONTRACT §8).
type Session struct {
	ID            string    `json:"id"`
	AgentID       string    `json:"agentId"`
	Channel       string    `json:"channel"`
	DraftMode     bool      `json:"draftMode"`
	Version       any       `json:"version"`
	DraftRevision any       `json:"draftRevision"`
	Billable      bool      `json:"billable"`
	CreatedAt     time.Time `json:"createdAt"`
	Greeting      string    `json:"greeting,omitempty"`
	Messages      []Message `json:"messages,omitempty"`
}

// Message is one turn's half in a session transcript.
type Message struct {
	Seq   int             `json:"seq"`
	Role  string          `json:"role"`
	Text  string          `json:"text"`
	Trace json.RawMessage `json:"trace,omitempty"`
	At    time.Time       `json:"at"`
}

func sessionView(ss store.Session) Session {
	return Session{
		ID: ss.ID, AgentID: ss.AgentID, Channel: ss.Channel, DraftMode: ss.DraftMode,
		Version: nullableVersion(ss.Version), DraftRevision: NullableString(ss.DraftRevision),
		Billable: ss.Billable, CreatedAt: ss.CreatedAt.UTC(),
	}
}

// SessionInput is one session creation.
type SessionInput struct {
	AgentID   string
	DraftMode bool
	// Channel is "chat" (the default) or "phone".
	Channel string
	// CallerID (a phone number, a user id; optional, at most 256 bytes)
	// keeps a caller on one version of a split channel.
	CallerID string
}

// CreateSession starts a chat session pinned to the version its channel
// picks (the published one, a pinned one, or one of a split's by weight),
// or to the draft's current revision in draft mode. A published session
// is counted in its version's outcomes.
func (b *Backend) CreateSession(ctx context.Context, p Principal, in SessionInput) (Session, error) {
	if in.Channel == "" {
		in.Channel = "chat"
	}
	if !slices.Contains(ChannelNames, in.Channel) {
		return Session{}, Invalid("/channel", "oneof", "channel must be one of: chat, phone")
	}
	if len(in.CallerID) > MaxCallerIDBytes || !utf8.ValidString(in.CallerID) {
		return Session{}, Invalid("/callerId", "max", "callerId must be at most 256 bytes of UTF-8")
	}
	if in.DraftMode && in.Channel == "phone" {
		return Session{}, Errorf("validation_failed", "the phone channel serves the published version; draftMode is for chat").
			With("errors", []FieldError{{Pointer: "/draftMode", Code: "draft_on_phone", Message: "draftMode: true cannot be used with channel: phone"}})
	}
	a, err := b.agent(ctx, p, in.AgentID)
	if err != nil {
		return Session{}, err
	}
	ss := store.Session{
		ID: store.NewID("ses_"), WorkspaceID: p.Key.WorkspaceID, AgentID: a.ID, Channel: in.Channel,
		DraftMode: in.DraftMode, CreatedAt: b.now(), State: []byte("{}"),
	}
	var eng *responder.Engine
	if in.DraftMode {
		rev, _, cd, err := b.currentDraft(ctx, a.ID)
		if err != nil {
			return Session{}, err
		}
		if !cd.result.OK() || cd.engine == nil {
			b.metrics.compileFailures.Inc()
			return Session{}, Errorf("compile_failed", "the draft does not compile").With("errors", diagList(cd.result.Errors))
		}
		eng = cd.engine.engine
		ss.DraftRevision = rev
	} else {
		if a.Published == 0 {
			return Session{}, Errorf("no_published_version", "agent %s has never been published: publish first, or use draftMode: true", a.ID)
		}
		n, err := b.pickVersion(ctx, a, in.Channel, in.CallerID)
		if err != nil {
			return Session{}, err
		}
		eng, err = b.versionEngine(ctx, a.ID, n)
		if err != nil {
			return Session{}, err
		}
		ss.Version = n
		ss.Billable = true
	}
	// A published session counts in its version's outcomes, in the same
	// transaction that stores it (which concurrent creations share).
	var count *store.OutcomeDelta
	if !ss.DraftMode {
		count = &store.OutcomeDelta{AgentID: ss.AgentID, Version: ss.Version, At: ss.CreatedAt, Sessions: 1}
	}
	if err := b.store.CreateSessionCounted(ctx, ss, count); err != nil {
		return Session{}, err
	}
	mode := "published"
	if ss.DraftMode {
		mode = "draft"
	}
	b.metrics.sessions.WithLabelValues(mode).Inc()
	out := sessionView(ss)
	out.Greeting = eng.Greeting()
	return out, nil
}

// session finds sid in the caller's workspace.
func (b *Backend) session(ctx context.Context, p Principal, sid string) (store.Session, error) {
	if !strings.HasPrefix(sid, "ses_") || len(sid) > 64 {
		return store.Session{}, Errorf("session_not_found", "no session %q", sid)
	}
	ss, err := b.store.Session(ctx, p.Key.WorkspaceID, sid)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, Errorf("session_not_found", "no session %q", sid)
	}
	return ss, err
}

// Session returns a session with its transcript.
func (b *Backend) Session(ctx context.Context, p Principal, sid string) (Session, error) {
	ss, err := b.session(ctx, p, sid)
	if err != nil {
		return Session{}, err
	}
	msgs, err := b.store.Messages(ctx, ss.ID)
	if err != nil {
		return Session{}, err
	}
	out := sessionView(ss)
	out.Messages = make([]Message, 0, len(msgs))
	for _, m := range msgs {
		mj := Message{Seq: m.Seq, Role: m.Role, Text: m.Text, At: m.At.UTC()}
		if len(m.Trace) > 0 {
			mj.Trace = json.RawMessage(m.Trace)
		}
		out.Messages = append(out.Messages, mj)
	}
	return out, nil
}

// engineFor returns the responder a session is pinned to.
func (b *Backend) engineFor(ctx context.Context, ss store.Session) (*responder.Engine, error) {
	if !ss.DraftMode {
		return b.versionEngine(ctx, ss.AgentID, ss.Version)
	}
	cd, err := b.cache.draftAt(ctx, b.repos, ss.AgentID, ss.DraftRevision)
	if err != nil {
		return nil, err
	}
	if cd.engine == nil {
		return nil, Errorf("compile_failed", "the draft revision of this session no longer compiles").With("errors", diagList(cd.result.Errors))
	}
	return cd.engine.engine, nil
}

// maxTurnRetries bounds how often a turn is answered again when other
// turns of the same session keep landing first.
const maxTurnRetries = 16

// Reply is the answer to one chat message.
type Reply struct {
	Reply    ReplyText       `json:"reply"`
	ServedBy ServedBy        `json:"servedBy"`
	Trace    responder.Trace `json:"trace"`
	Input    string          `json:"input"`
}

// ReplyText is the agent's reply.
type ReplyText struct {
	Text string `json:"text"`
}

// ServedBy names what answered: a version or a draft revision.
type ServedBy struct {
	Version       any `json:"version"`
	DraftRevision any `json:"draftRevision"`
}

// PostMessage answers one user message in a session.
func (b *Backend) PostMessage(ctx context.Context, p Principal, sid, text string) (Reply, error) {
	ss, err := b.session(ctx, p, sid)
	if err != nil {
		return Reply{}, err
	}
	if strings.TrimSpace(text) == "" {
		return Reply{}, Invalid("/text", "required", "text must not be empty")
	}
	if len(text) > MaxMessageBytes || !utf8.ValidString(text) {
		return Reply{}, Invalid("/text", "max", "text must be at most 4096 bytes of UTF-8")
	}
	eng, err := b.engineFor(ctx, ss)
	if err != nil {
		return Reply{}, err
	}
	// Turns of one session are serialised optimistically: read the state,
	// answer outside any lock, append only if no other turn landed since
	// (else answer again on the new state). No lock is shared between
	// sessions, so a slow responder stalls nobody else, and the check
	// lives in the database, so it holds across daemons.
	var turn responder.Turn
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return Reply{}, err
		}
		cur, err := b.store.Session(ctx, ss.WorkspaceID, ss.ID)
		if err != nil {
			return Reply{}, err
		}
		var st responder.State
		if len(cur.State) > 0 {
			_ = json.Unmarshal(cur.State, &st)
		}
		turn = eng.Respond(st, text)
		trace, err := json.Marshal(turn.Trace)
		if err != nil {
			return Reply{}, err
		}
		state, err := json.Marshal(turn.State)
		if err != nil {
			return Reply{}, err
		}
		now := b.now()
		user := store.Message{Role: "user", Text: turn.Input, At: now}
		agent := store.Message{Role: "agent", Text: turn.Reply, Trace: trace, At: now}
		if ss.DraftMode {
			err = b.store.AppendTurnAfter(ctx, ss.ID, cur.LastSeq, user, agent, state)
		} else {
			// Published turns count in their version's outcomes, in the
			// same transaction that stores them.
			err = b.store.AppendTurnCounted(ctx, ss.ID, cur.LastSeq, user, agent, state, outcomeDelta(ss, turn.Outcome, now))
		}
		if errors.Is(err, store.ErrConflict) && attempt < maxTurnRetries {
			continue
		}
		if err != nil {
			return Reply{}, err
		}
		break
	}
	b.metrics.turns.Inc()
	return Reply{
		Reply:    ReplyText{Text: turn.Reply},
		ServedBy: ServedBy{Version: nullableVersion(ss.Version), DraftRevision: NullableString(ss.DraftRevision)},
		Trace:    turn.Trace,
		Input:    turn.Input,
	}, nil
}

// Usage is billable and draft session counts.
type Usage struct {
	BillableSessions int            `json:"billableSessions"`
	DraftSessions    int            `json:"draftSessions"`
	ByVersion        map[string]int `json:"byVersion"`
}

// Usage counts sessions of the caller's workspace (one agent when
// agentID is set) between from and to (zero: unbounded).
func (b *Backend) Usage(ctx context.Context, p Principal, agentID string, from, to time.Time) (Usage, error) {
	if agentID != "" {
		if _, err := b.agent(ctx, p, agentID); err != nil {
			return Usage{}, err
		}
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return Usage{}, Errorf("invalid_request", "to is before from")
	}
	u, err := b.store.Usage(ctx, p.Key.WorkspaceID, agentID, from, to)
	if err != nil {
		return Usage{}, err
	}
	by := map[string]int{}
	for n, k := range u.ByVersion {
		by[VersionID(n)] = k
	}
	return Usage{BillableSessions: u.BillableSessions, DraftSessions: u.DraftSessions, ByVersion: by}, nil
}
