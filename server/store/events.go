package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Event is one row of the outbox (CONTRACT §9), written in the same
// transaction as the state change it announces.
type Event struct {
	Seq         int64  // insertion order, assigned by InsertEvent, never reused
	ID          string // "evt_" + random: the webhook-id
	WorkspaceID string
	AgentID     string
	Type        string // e.g. "version.published"
	Payload     []byte // the full JSON body
	CreatedAt   time.Time
	// Dedupe is unique when set, e.g. "version.published:<agent>:v3", so
	// reconciliation never records an event twice. "" = no dedupe.
	Dedupe string
}

const eventColumns = `seq, id, workspace_id, agent_id, type, payload, created_at, dedupe`

func scanEvent(sc scanner) (Event, error) {
	var (
		e      Event
		ns     int64
		dedupe sql.NullString
	)
	if err := sc.Scan(&e.Seq, &e.ID, &e.WorkspaceID, &e.AgentID, &e.Type, &e.Payload, &ns, &dedupe); err != nil {
		return Event{}, wrapError(err)
	}
	e.CreatedAt = fromNanos(ns)
	e.Dedupe = dedupe.String
	return e, nil
}

// InsertEvent appends e to the outbox (e.Seq is ignored). A duplicate ID or
// Dedupe is ErrConflict.
func (tx *sqliteTx) InsertEvent(ctx context.Context, e Event) error {
	if e.ID == "" || e.Type == "" {
		return errors.New("insert event: id and type are required")
	}
	if e.Payload == nil {
		e.Payload = []byte{}
	}
	dedupe := sql.NullString{String: e.Dedupe, Valid: e.Dedupe != ""}
	_, err := tx.q.ExecContext(ctx,
		`INSERT INTO events (id, workspace_id, agent_id, type, payload, created_at, dedupe)
		 VALUES (?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.WorkspaceID, e.AgentID, e.Type, e.Payload, toNanos(e.CreatedAt), dedupe)
	if err != nil {
		return fmt.Errorf("insert event %s: %w", e.Type, wrapError(err))
	}
	return nil
}

// EventByID returns the event with the given id, or ErrNotFound.
func (s *Store) EventByID(ctx context.Context, id string) (Event, error) {
	e, err := scanEvent(s.rdb.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM events WHERE id = ?`, id))
	if err != nil {
		return Event{}, fmt.Errorf("event %s: %w", id, err)
	}
	return e, nil
}

// EventsAfter returns up to limit events with seq > afterSeq in insertion
// order, and the seq of the last one returned (afterSeq if none), for the
// webhook dispatcher to resume from.
func (s *Store) EventsAfter(ctx context.Context, afterSeq int64, limit int) ([]Event, int64, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	rows, err := s.rdb.QueryContext(ctx,
		`SELECT `+eventColumns+` FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, afterSeq, limit)
	if err != nil {
		return nil, afterSeq, fmt.Errorf("events after %d: %w", afterSeq, err)
	}
	defer rows.Close()
	var es []Event
	last := afterSeq
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, afterSeq, fmt.Errorf("events after %d: %w", afterSeq, err)
		}
		es = append(es, e)
		last = e.Seq
	}
	if err := rows.Err(); err != nil {
		return nil, afterSeq, fmt.Errorf("events after %d: %w", afterSeq, err)
	}
	return es, last, nil
}
