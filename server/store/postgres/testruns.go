package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/flowyte/flowyte/server/store"
)

const testRunColumns = `id, agent_id, target, draft_revision, version, status, total, passed, failed, duration_ms, created_at`

func scanTestRun(row pgx.Row, r *store.TestRun, extra ...any) error {
	var at int64
	dest := append([]any{&r.ID, &r.AgentID, &r.Target, &r.DraftRevision, &r.Version, &r.Status,
		&r.Total, &r.Passed, &r.Failed, &r.DurationMs, &at}, extra...)
	if err := row.Scan(dest...); err != nil {
		return wrapError(err)
	}
	r.CreatedAt = fromNanos(at)
	return nil
}

// InsertTestRun stores r; an existing id is ErrConflict.
func (tx *pgTx) InsertTestRun(ctx context.Context, r store.TestRun) error {
	if r.ID == "" || r.AgentID == "" {
		return fmt.Errorf("insert test run: bad id %q or agent %q", r.ID, r.AgentID)
	}
	cases := r.Cases
	if cases == nil {
		cases = []byte("[]")
	}
	tag, err := tx.tx.Exec(ctx,
		`INSERT INTO test_runs (`+testRunColumns+`, cases) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		 ON CONFLICT DO NOTHING`,
		r.ID, r.AgentID, r.Target, r.DraftRevision, r.Version, r.Status, r.Total, r.Passed, r.Failed,
		r.DurationMs, toNanos(r.CreatedAt), cases)
	if err == nil {
		err = conflictUnlessAffected(tag)
	}
	if err != nil {
		return fmt.Errorf("insert test run %s: %w", r.ID, wrapError(err))
	}
	return nil
}

// TestRun returns run id of the agent with its cases, or ErrNotFound.
func (s *Store) TestRun(ctx context.Context, agentID, id string) (store.TestRun, error) {
	var r store.TestRun
	err := scanTestRun(s.pool.QueryRow(ctx,
		`SELECT `+testRunColumns+`, cases FROM test_runs WHERE id = $1 AND agent_id = $2`, id, agentID), &r, &r.Cases)
	if err != nil {
		return store.TestRun{}, fmt.Errorf("test run %s: %w", id, err)
	}
	return r, nil
}

// ListTestRuns returns up to limit runs of the agent, newest first,
// without their cases, and the next page's cursor (the same cursor form
// as the SQLite engine's).
func (s *Store) ListTestRuns(ctx context.Context, agentID, cursor string, limit int) ([]store.TestRun, string, error) {
	if limit <= 0 {
		limit = store.DefaultPageSize
	}
	before, err := store.DecodeTestRunCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.pool.Query(ctx,
		`SELECT `+testRunColumns+`, seq FROM test_runs WHERE agent_id = $1 AND seq < $2
		 ORDER BY seq DESC LIMIT $3`, agentID, before, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list test runs: %w", wrapError(err))
	}
	defer rows.Close()
	out := make([]store.TestRun, 0, min(limit, 256))
	var seq int64
	more := false
	for rows.Next() {
		if len(out) == limit {
			more = true
			break
		}
		var r store.TestRun
		if err := scanTestRun(rows, &r, &seq); err != nil {
			return nil, "", fmt.Errorf("list test runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list test runs: %w", wrapError(err))
	}
	next := ""
	if more {
		next = store.EncodeTestRunCursor(seq)
	}
	return out, next, nil
}
