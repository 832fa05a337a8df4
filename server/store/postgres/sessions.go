package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flowyte/flowyte/server/store"
)

const sessionColumns = `id, workspace_id, agent_id, channel, draft_mode, version, draft_revision, billable, created_at, state, last_seq`

func scanSession(row pgx.Row) (store.Session, error) {
	var (
		s         store.Session
		draft     int
		billable  int
		createdAt int64
	)
	if err := row.Scan(&s.ID, &s.WorkspaceID, &s.AgentID, &s.Channel, &draft, &s.Version,
		&s.DraftRevision, &billable, &createdAt, &s.State, &s.LastSeq); err != nil {
		return store.Session{}, wrapError(err)
	}
	s.DraftMode = draft != 0
	s.Billable = billable != 0
	s.CreatedAt = fromNanos(createdAt)
	return s, nil
}

// CreateSession inserts s (s.LastSeq is ignored). A draft session must
// have Version 0; a published one a Version > 0 and no DraftRevision. A
// duplicate id is ErrConflict.
func (tx *pgTx) CreateSession(ctx context.Context, s store.Session) error {
	if err := store.CheckSession(s); err != nil {
		return err
	}
	tag, err := tx.tx.Exec(ctx,
		`INSERT INTO sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0)
		 ON CONFLICT DO NOTHING`,
		s.ID, s.WorkspaceID, s.AgentID, s.Channel, boolInt(s.DraftMode), s.Version,
		s.DraftRevision, boolInt(s.Billable), toNanos(s.CreatedAt), s.State)
	if err == nil {
		err = conflictUnlessAffected(tag)
	}
	if err != nil {
		return fmt.Errorf("create session %s: %w", s.ID, wrapError(err))
	}
	return nil
}

// Session returns session id of workspace workspaceID. A session of another
// workspace is ErrNotFound.
func (s *Store) Session(ctx context.Context, workspaceID, id string) (store.Session, error) {
	ses, err := scanSession(s.pool.QueryRow(ctx,
		`SELECT `+sessionColumns+` FROM sessions WHERE id = $1 AND workspace_id = $2`, id, workspaceID))
	if err != nil {
		return store.Session{}, fmt.Errorf("session %s: %w", id, err)
	}
	return ses, nil
}

// AppendTurn appends one exchange to session sessionID in one transaction
// (see store.Store.AppendTurn). The session row is locked first, so turns
// from several daemons never interleave or share a Seq. An unknown session
// is ErrNotFound.
func (s *Store) AppendTurn(ctx context.Context, sessionID string, user, agent store.Message, state []byte) error {
	return s.appendTurn(ctx, sessionID, -1, user, agent, state, nil)
}

// AppendTurnAfter is AppendTurn with an optimistic check: ErrConflict,
// writing nothing, unless the session's newest message is still lastSeq.
func (s *Store) AppendTurnAfter(ctx context.Context, sessionID string, lastSeq int, user, agent store.Message, state []byte) error {
	if lastSeq < 0 {
		return fmt.Errorf("append turn %s: negative last seq %d", sessionID, lastSeq)
	}
	return s.appendTurn(ctx, sessionID, lastSeq, user, agent, state, nil)
}

func (s *Store) appendTurn(ctx context.Context, sessionID string, lastSeq int, user, agent store.Message, state []byte, also func(tx *pgTx) error) error {
	if err := store.PrepareTurn(sessionID, &user, &agent, time.Now()); err != nil {
		return err
	}
	err := s.write(ctx, func(tx *pgTx) error {
		var cur int
		if err := tx.tx.QueryRow(ctx,
			`SELECT last_seq FROM sessions WHERE id = $1 FOR UPDATE`, sessionID).Scan(&cur); err != nil {
			return wrapError(err)
		}
		if lastSeq >= 0 && cur != lastSeq {
			return fmt.Errorf("%w: last seq is %d, want %d", store.ErrConflict, cur, lastSeq)
		}
		if _, err := tx.tx.Exec(ctx,
			`INSERT INTO session_messages (session_id, seq, role, text, trace, at)
			 VALUES ($1, $2, $3, $4, $5, $6), ($1, $7, $8, $9, $10, $11)`,
			sessionID, cur+1, user.Role, user.Text, user.Trace, toNanos(user.At),
			cur+2, agent.Role, agent.Text, agent.Trace, toNanos(agent.At)); err != nil {
			return wrapError(err)
		}
		if _, err := tx.tx.Exec(ctx, `UPDATE sessions SET state = $1, last_seq = $2 WHERE id = $3`, state, cur+2, sessionID); err != nil {
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
// unknown session is ErrNotFound.
func (s *Store) Messages(ctx context.Context, sessionID string) ([]store.Message, error) {
	// One statement, so the existence check and the rows agree.
	rows, err := s.pool.Query(ctx,
		`SELECT m.seq, m.role, m.text, m.trace, m.at
		 FROM sessions s LEFT JOIN session_messages m ON m.session_id = s.id
		 WHERE s.id = $1 ORDER BY m.seq`, sessionID)
	if err != nil {
		return nil, fmt.Errorf("messages %s: %w", sessionID, wrapError(err))
	}
	defer rows.Close()
	found := false
	msgs := []store.Message{}
	for rows.Next() {
		found = true
		var (
			seq        *int
			role, text *string
			trace      []byte
			at         *int64
		)
		if err := rows.Scan(&seq, &role, &text, &trace, &at); err != nil {
			return nil, fmt.Errorf("messages %s: %w", sessionID, wrapError(err))
		}
		if seq == nil {
			continue // a session without messages
		}
		msgs = append(msgs, store.Message{Seq: *seq, Role: *role, Text: *text, Trace: trace, At: fromNanos(*at)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("messages %s: %w", sessionID, wrapError(err))
	}
	if !found {
		return nil, fmt.Errorf("messages %s: %w", sessionID, store.ErrNotFound)
	}
	return msgs, nil
}

// Usage counts the sessions of workspace workspaceID (of agent agentID
// only, unless it is "") created in [from, to); a zero from or to leaves
// that side unbounded. ByVersion is never nil.
func (s *Store) Usage(ctx context.Context, workspaceID, agentID string, from, to time.Time) (store.Usage, error) {
	var (
		where strings.Builder
		args  = []any{workspaceID}
	)
	where.WriteString(`workspace_id = $1`)
	add := func(cond string, v any) {
		args = append(args, v)
		where.WriteString(` AND ` + cond + ` $` + strconv.Itoa(len(args)))
	}
	if agentID != "" {
		add(`agent_id =`, agentID)
	}
	if !from.IsZero() {
		add(`created_at >=`, toNanos(from))
	}
	if !to.IsZero() {
		add(`created_at <`, toNanos(to))
	}
	rows, err := s.pool.Query(ctx,
		`SELECT draft_mode, billable, version, count(*) FROM sessions WHERE `+where.String()+
			` GROUP BY draft_mode, billable, version`, args...)
	if err != nil {
		return store.Usage{}, fmt.Errorf("usage: %w", wrapError(err))
	}
	defer rows.Close()
	u := store.Usage{ByVersion: map[int]int{}}
	for rows.Next() {
		var draft, billable, version, n int
		if err := rows.Scan(&draft, &billable, &version, &n); err != nil {
			return store.Usage{}, fmt.Errorf("usage: %w", wrapError(err))
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
		return store.Usage{}, fmt.Errorf("usage: %w", wrapError(err))
	}
	return u, nil
}

// CountSessionsByAgent returns the number of sessions of each agent of
// workspace workspaceID that has any.
func (s *Store) CountSessionsByAgent(ctx context.Context, workspaceID string) (map[string]int, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT agent_id, count(*) FROM sessions WHERE workspace_id = $1 GROUP BY agent_id`, workspaceID)
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
