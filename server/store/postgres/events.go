package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/flowyte/flowyte/server/store"
)

const eventColumns = `seq, id, workspace_id, agent_id, type, payload, created_at, dedupe`

func scanEvent(row pgx.Row) (store.Event, error) {
	var (
		e      store.Event
		ns     int64
		dedupe *string
	)
	if err := row.Scan(&e.Seq, &e.ID, &e.WorkspaceID, &e.AgentID, &e.Type, &e.Payload, &ns, &dedupe); err != nil {
		return store.Event{}, wrapError(err)
	}
	e.CreatedAt = fromNanos(ns)
	if dedupe != nil {
		e.Dedupe = *dedupe
	}
	return e, nil
}

// InsertEvent appends e to the outbox (e.Seq is ignored). A duplicate ID or
// Dedupe is ErrConflict, and the transaction stays usable.
//
// The seq comes from the event_seq counter row, which stays locked until
// the transaction ends: event-writing transactions commit in seq order, so
// the fan-out cursor never skips an event committed late.
func (tx *pgTx) InsertEvent(ctx context.Context, e store.Event) error {
	if e.ID == "" || e.Type == "" {
		return errors.New("insert event: id and type are required")
	}
	if e.Payload == nil {
		e.Payload = []byte{}
	}
	var dedupe *string
	if e.Dedupe != "" {
		dedupe = &e.Dedupe
	}
	// Conflict first, without taking a number: a duplicate (a recovery
	// re-recording an event) neither locks the counter nor leaves a gap.
	var dup bool
	if err := tx.tx.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM events WHERE id = $1 OR dedupe = $2)`, e.ID, dedupe).Scan(&dup); err != nil {
		return fmt.Errorf("insert event %s: %w", e.Type, wrapError(err))
	}
	if dup {
		return fmt.Errorf("insert event %s: %w", e.Type, store.ErrConflict)
	}
	tag, err := tx.tx.Exec(ctx,
		`WITH n AS (UPDATE event_seq SET last = last + 1 WHERE id = 1 RETURNING last)
		 INSERT INTO events (seq, id, workspace_id, agent_id, type, payload, created_at, dedupe)
		 SELECT n.last, $1, $2, $3, $4, $5, $6, $7 FROM n
		 ON CONFLICT DO NOTHING`,
		e.ID, e.WorkspaceID, e.AgentID, e.Type, e.Payload, toNanos(e.CreatedAt), dedupe)
	if err == nil {
		err = conflictUnlessAffected(tag)
	}
	if err != nil {
		return fmt.Errorf("insert event %s: %w", e.Type, wrapError(err))
	}
	return nil
}

// EventByID returns the event with the given id, or ErrNotFound.
func (s *Store) EventByID(ctx context.Context, id string) (store.Event, error) {
	e, err := scanEvent(s.pool.QueryRow(ctx, `SELECT `+eventColumns+` FROM events WHERE id = $1`, id))
	if err != nil {
		return store.Event{}, fmt.Errorf("event %s: %w", id, err)
	}
	return e, nil
}

// EventsAfter returns up to limit events with seq > afterSeq in insertion
// order, and the seq of the last one returned (afterSeq if none).
func (s *Store) EventsAfter(ctx context.Context, afterSeq int64, limit int) ([]store.Event, int64, error) {
	if limit <= 0 {
		limit = store.DefaultPageSize
	}
	rows, err := s.pool.Query(ctx,
		`SELECT `+eventColumns+` FROM events WHERE seq > $1 ORDER BY seq LIMIT $2`, afterSeq, limit)
	if err != nil {
		return nil, afterSeq, fmt.Errorf("events after %d: %w", afterSeq, err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Event, error) { return scanEvent(r) })
	if err != nil {
		return nil, afterSeq, fmt.Errorf("events after %d: %w", afterSeq, err)
	}
	if len(es) == 0 {
		return nil, afterSeq, nil
	}
	return es, es[len(es)-1].Seq, nil
}
