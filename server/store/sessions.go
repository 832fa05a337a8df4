package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Session is one chat session (CONTRACT §8), pinned at creation to the
// published version or the draft revision it serves.
type Session struct {
	ID          string // "ses_..." (see NewSessionID)
	WorkspaceID string
	AgentID     string
	Channel     string // "chat" or "phone"
	DraftMode   bool
	// Version is the published version number served; 0 for a draft session.
	Version int
	// DraftRevision is the draft commit served; "" unless DraftMode.
	DraftRevision string
	Billable      bool
	CreatedAt     time.Time
	// State is the responder's conversation state as JSON (nil = none). The
	// store does not interpret it.
	State []byte
	// LastSeq is the Seq of the session's newest message (0 = none). It is
	// maintained by AppendTurn and ignored by CreateSession; pass it to
	// AppendTurnAfter to detect a concurrent turn.
	LastSeq int
}

// Message roles.
const (
	// RoleUser marks a message written by the user.
	RoleUser = "user"
	// RoleAgent marks a reply of the agent.
	RoleAgent = "agent"
)

// Message is one message of a session's transcript.
type Message struct {
	Seq   int    // 1-based position in the session, assigned by AppendTurn
	Role  string // RoleUser or RoleAgent
	Text  string
	Trace []byte // JSON, or nil
	At    time.Time
}

// Usage counts sessions for GET /usage.
type Usage struct {
	// BillableSessions counts sessions marked billable.
	BillableSessions int
	// DraftSessions counts draft-mode sessions (never billable).
	DraftSessions int
	// ByVersion counts published (non-draft) sessions per version number.
	ByVersion map[int]int
}

// NewSessionID returns a new session id: "ses_" and 16 random base32
// characters.
func NewSessionID() string { return NewID("ses_") }

const sessionColumns = `id, workspace_id, agent_id, channel, draft_mode, version, draft_revision, billable, created_at, state, last_seq`

func scanSession(sc scanner) (Session, error) {
	var (
		s         Session
		draft     int
		billable  int
		createdAt int64
		state     []byte
	)
	if err := sc.Scan(&s.ID, &s.WorkspaceID, &s.AgentID, &s.Channel, &draft, &s.Version,
		&s.DraftRevision, &billable, &createdAt, &state, &s.LastSeq); err != nil {
		return Session{}, wrapError(err)
	}
	s.DraftMode = draft != 0
	s.Billable = billable != 0
	s.CreatedAt = fromNanos(createdAt)
	s.State = state
	return s, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// CreateSession inserts s (s.LastSeq is ignored; a new session has no
// messages). A draft session must have Version 0; a published one a
// Version > 0 and no DraftRevision. A duplicate id is ErrConflict.
func (tx *sqliteTx) CreateSession(ctx context.Context, s Session) error {
	if err := CheckSession(s); err != nil {
		return err
	}
	_, err := tx.q.ExecContext(ctx,
		`INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`,
		s.ID, s.WorkspaceID, s.AgentID, s.Channel, boolInt(s.DraftMode), s.Version,
		s.DraftRevision, boolInt(s.Billable), toNanos(s.CreatedAt), nullBytes(s.State))
	if err != nil {
		return fmt.Errorf("create session %s: %w", s.ID, wrapError(err))
	}
	return nil
}

// CheckSession reports what makes s unfit for CreateSession before any
// database sees it (shared by both engines): missing ids or creation
// time, or a pinning that is neither a draft revision nor a version.
func CheckSession(s Session) error {
	switch {
	case s.ID == "" || s.WorkspaceID == "" || s.AgentID == "" || s.Channel == "":
		return errors.New("create session: id, workspace, agent and channel are required")
	case s.CreatedAt.IsZero():
		return errors.New("create session: created at is required")
	case s.DraftMode && s.Version != 0:
		return fmt.Errorf("create session %s: draft session with version %d", s.ID, s.Version)
	case !s.DraftMode && s.Version <= 0:
		return fmt.Errorf("create session %s: published session needs a version", s.ID)
	case !s.DraftMode && s.DraftRevision != "":
		return fmt.Errorf("create session %s: published session with a draft revision", s.ID)
	}
	return nil
}

// CreateSessionCounted creates s and, when d is not nil, adds d to the
// outcome counters in the same transaction: a session is counted exactly
// when it is stored. Concurrent calls share commits, as every Write does.
// A duplicate id is ErrConflict and counts nothing.
func (s *Store) CreateSessionCounted(ctx context.Context, ses Session, d *OutcomeDelta) error {
	return s.write(ctx, func(tx *sqliteTx) error {
		if err := tx.CreateSession(ctx, ses); err != nil {
			return err
		}
		if d == nil {
			return nil
		}
		return tx.AddOutcomes(ctx, *d)
	})
}

// nullBytes stores nil as NULL and anything else (even empty) as a BLOB.
func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// Session returns session id of workspace workspaceID. A session of another
// workspace is ErrNotFound.
func (s *Store) Session(ctx context.Context, workspaceID, id string) (Session, error) {
	ses, err := scanSession(s.rdb.QueryRowContext(ctx,
		`SELECT `+sessionColumns+` FROM sessions WHERE id = ? AND workspace_id = ?`, id, workspaceID))
	if err != nil {
		return Session{}, fmt.Errorf("session %s: %w", id, err)
	}
	return ses, nil
}

// AppendTurn appends one exchange to session sessionID in one write
// transaction: the user message gets the next Seq, the agent message the
// one after, and the session's State becomes state (nil clears it). The
// messages' Seq fields are ignored; an empty Role defaults to RoleUser and
// RoleAgent respectively; a zero At becomes the current time. Writes are
// serialised, so concurrent turns never interleave or share a Seq; to also
// detect that another turn landed since the state was read, use
// [Store.AppendTurnAfter]. An unknown session is ErrNotFound. Do not call
// it inside [Store.Write].
func (s *Store) AppendTurn(ctx context.Context, sessionID string, user, agent Message, state []byte) error {
	return s.appendTurn(ctx, sessionID, -1, user, agent, state, nil)
}

// AppendTurnAfter is [Store.AppendTurn] with an optimistic check: it fails
// with ErrConflict, writing nothing, unless the session's newest message is
// still lastSeq (the Session.LastSeq read before computing the reply). A
// caller that gets ErrConflict re-reads the session and answers again.
func (s *Store) AppendTurnAfter(ctx context.Context, sessionID string, lastSeq int, user, agent Message, state []byte) error {
	if lastSeq < 0 {
		return fmt.Errorf("append turn %s: negative last seq %d", sessionID, lastSeq)
	}
	return s.appendTurn(ctx, sessionID, lastSeq, user, agent, state, nil)
}

// appendTurn appends one exchange; also, when not nil, runs in the same
// transaction after the messages are written.
// PrepareTurn fills in the default roles and times of one turn's two
// messages and checks them (every engine appends turns this way).
func PrepareTurn(sessionID string, user, agent *Message, now time.Time) error {
	if user.Role == "" {
		user.Role = RoleUser
	}
	if agent.Role == "" {
		agent.Role = RoleAgent
	}
	if user.Role != RoleUser || agent.Role != RoleAgent {
		return fmt.Errorf("append turn %s: roles %q, %q, want %q, %q", sessionID, user.Role, agent.Role, RoleUser, RoleAgent)
	}
	for _, m := range []*Message{user, agent} {
		if m.At.IsZero() {
			m.At = now
		}
	}
	return nil
}

func (s *Store) appendTurn(ctx context.Context, sessionID string, lastSeq int, user, agent Message, state []byte, also func(tx Tx) error) error {
	if err := PrepareTurn(sessionID, &user, &agent, time.Now()); err != nil {
		return err
	}
	err := s.write(ctx, func(tx *sqliteTx) error {
		var cur int
		if err := tx.q.QueryRowContext(ctx,
			`SELECT last_seq FROM sessions WHERE id = ?`, sessionID).Scan(&cur); err != nil {
			return wrapError(err)
		}
		if lastSeq >= 0 && cur != lastSeq {
			return fmt.Errorf("%w: last seq is %d, want %d", ErrConflict, cur, lastSeq)
		}
		for i, m := range []Message{user, agent} {
			if _, err := tx.q.ExecContext(ctx,
				`INSERT INTO session_messages (session_id, seq, role, text, trace, at) VALUES (?, ?, ?, ?, ?, ?)`,
				sessionID, cur+1+i, m.Role, m.Text, nullBytes(m.Trace), toNanos(m.At)); err != nil {
				return wrapError(err)
			}
		}
		if _, err := tx.q.ExecContext(ctx,
			`UPDATE sessions SET state = ?, last_seq = ? WHERE id = ?`, nullBytes(state), cur+2, sessionID); err != nil {
			return wrapError(err)
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append turn %s: %w", sessionID, err)
	}
	return nil
}

// Messages returns the transcript of session sessionID in Seq order. An
// unknown session is ErrNotFound; callers check the workspace with
// [Store.Session] first.
func (s *Store) Messages(ctx context.Context, sessionID string) ([]Message, error) {
	// One read transaction, so the existence check and the rows agree.
	rtx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("messages %s: %w", sessionID, wrapError(err))
	}
	defer rtx.Rollback() //nolint:errcheck // read-only
	var last int
	if err := rtx.QueryRowContext(ctx, `SELECT last_seq FROM sessions WHERE id = ?`, sessionID).Scan(&last); err != nil {
		return nil, fmt.Errorf("messages %s: %w", sessionID, wrapError(err))
	}
	rows, err := rtx.QueryContext(ctx,
		`SELECT seq, role, text, trace, at FROM session_messages WHERE session_id = ? ORDER BY seq`, sessionID)
	if err != nil {
		return nil, fmt.Errorf("messages %s: %w", sessionID, wrapError(err))
	}
	defer rows.Close()
	msgs := make([]Message, 0, last)
	for rows.Next() {
		var (
			m     Message
			trace []byte
			at    int64
		)
		if err := rows.Scan(&m.Seq, &m.Role, &m.Text, &trace, &at); err != nil {
			return nil, fmt.Errorf("messages %s: %w", sessionID, wrapError(err))
		}
		m.Trace = trace
		m.At = fromNanos(at)
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("messages %s: %w", sessionID, wrapError(err))
	}
	return msgs, nil
}

// Usage counts the sessions of workspace workspaceID (of agent agentID
// only, unless it is "") created in [from, to); a zero from or to leaves
// that side unbounded. ByVersion is never nil.
func (s *Store) Usage(ctx context.Context, workspaceID, agentID string, from, to time.Time) (Usage, error) {
	var (
		where strings.Builder
		args  = []any{workspaceID}
	)
	where.WriteString(`workspace_id = ?`)
	if agentID != "" {
		where.WriteString(` AND agent_id = ?`)
		args = append(args, agentID)
	}
	if !from.IsZero() {
		where.WriteString(` AND created_at >= ?`)
		args = append(args, toNanos(from))
	}
	if !to.IsZero() {
		where.WriteString(` AND created_at < ?`)
		args = append(args, toNanos(to))
	}
	rows, err := s.rdb.QueryContext(ctx,
		`SELECT draft_mode, billable, version, count(*) FROM sessions WHERE `+where.String()+
			` GROUP BY draft_mode, billable, version`, args...)
	if err != nil {
		return Usage{}, fmt.Errorf("usage: %w", wrapError(err))
	}
	defer rows.Close()
	u := Usage{ByVersion: map[int]int{}}
	for rows.Next() {
		var draft, billable, version, n int
		if err := rows.Scan(&draft, &billable, &version, &n); err != nil {
			return Usage{}, fmt.Errorf("usage: %w", wrapError(err))
		}
		if billable != 0 {
			u.BillableSessions += n
		}
		if draft != 0 {
			u.DraftSessions += n
		} else {
			u.ByVersion[version] += n
		}
	}
	if err := rows.Err(); err != nil {
		return Usage{}, fmt.Errorf("usage: %w", wrapError(err))
	}
	return u, nil
}

// CountSessionsByAgent returns the number of sessions (draft or not) of
// each agent of workspace workspaceID that has any.
func (s *Store) CountSessionsByAgent(ctx context.Context, workspaceID string) (map[string]int, error) {
	rows, err := s.rdb.QueryContext(ctx,
		`SELECT agent_id, count(*) FROM sessions WHERE workspace_id = ? GROUP BY agent_id`, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("count sessions: %w", wrapError(err))
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var (
			id string
			n  int
		)
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("count sessions: %w", wrapError(err))
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count sessions: %w", wrapError(err))
	}
	return out, nil
}
