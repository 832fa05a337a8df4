package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flowyte/flowyte/server/store"
)

// BeginIdempotent claims (rec.WorkspaceID, rec.Key): if no live record
// exists it inserts rec with state running and returns (nil, nil).
// Otherwise it returns the existing record. A record older than
// store.IdempotencyTTL (measured from rec.CreatedAt, default now) is
// replaced. Two daemons racing on one key: exactly one claims it.
func (s *Store) BeginIdempotent(ctx context.Context, rec store.Idempotency) (*store.Idempotency, error) {
	if rec.WorkspaceID == "" || rec.Key == "" {
		return nil, errors.New("begin idempotent: workspace and key are required")
	}
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = time.Now()
	}
	var (
		existing *store.Idempotency
		err      error
	)
	// A claim finds the row gone only when another request abandoned it
	// between our insert and our read: claim again.
	for range 3 {
		err = s.write(ctx, func(tx *pgTx) error {
			existing = nil
			return tx.claimIdempotent(ctx, rec, &existing)
		})
		if !errors.Is(err, errRetry) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("begin idempotent %q: %w", rec.Key, err)
	}
	return existing, nil
}

func (tx *pgTx) claimIdempotent(ctx context.Context, rec store.Idempotency, existing **store.Idempotency) error {
	tag, err := tx.tx.Exec(ctx,
		`INSERT INTO idempotency (workspace_id, key, scope, request_hash, state, status, headers, body, created_at)
		 VALUES ($1, $2, $3, $4, $5, 0, '{}', NULL, $6) ON CONFLICT DO NOTHING`,
		rec.WorkspaceID, rec.Key, rec.Scope, rec.RequestHash, store.IdemRunning, toNanos(rec.CreatedAt))
	if err != nil {
		return wrapError(err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	// The row exists and is committed (the insert waited for any
	// concurrent claim to end). Lock it and decide.
	old, err := idempotency(ctx, tx, rec.WorkspaceID, rec.Key)
	if errors.Is(err, store.ErrNotFound) {
		return errRetry
	}
	if err != nil {
		return err
	}
	if old.CreatedAt.After(rec.CreatedAt.Add(-store.IdempotencyTTL)) {
		*existing = &old
		return nil
	}
	_, err = tx.tx.Exec(ctx,
		`UPDATE idempotency SET scope = $3, request_hash = $4, state = $5, status = 0, headers = '{}',
		        body = NULL, created_at = $6
		 WHERE workspace_id = $1 AND key = $2`,
		rec.WorkspaceID, rec.Key, rec.Scope, rec.RequestHash, store.IdemRunning, toNanos(rec.CreatedAt))
	return wrapError(err)
}

// errRetry asks BeginIdempotent to run its transaction again.
var errRetry = errors.New("retry")

func idempotency(ctx context.Context, tx *pgTx, workspaceID, key string) (store.Idempotency, error) {
	var (
		r       store.Idempotency
		headers string
		ns      int64
	)
	err := tx.tx.QueryRow(ctx,
		`SELECT workspace_id, key, scope, request_hash, state, status, headers, body, created_at
		 FROM idempotency WHERE workspace_id = $1 AND key = $2 FOR UPDATE`, workspaceID, key).
		Scan(&r.WorkspaceID, &r.Key, &r.Scope, &r.RequestHash, &r.State, &r.Status, &headers, &r.Body, &ns)
	if err != nil {
		return store.Idempotency{}, wrapError(err)
	}
	if err := json.Unmarshal([]byte(headers), &r.Headers); err != nil {
		return store.Idempotency{}, fmt.Errorf("decode headers: %w", err)
	}
	r.CreatedAt = fromNanos(ns)
	return r, nil
}

// FinishIdempotent records the response of the first request and marks the
// record done. No record is ErrNotFound.
func (s *Store) FinishIdempotent(ctx context.Context, workspaceID, key string, status int, headers map[string]string, body []byte) error {
	return s.write(ctx, func(tx *pgTx) error {
		return tx.FinishIdempotentTx(ctx, workspaceID, key, status, headers, body)
	})
}

// FinishIdempotentTx is FinishIdempotent inside a write transaction.
func (tx *pgTx) FinishIdempotentTx(ctx context.Context, workspaceID, key string, status int, headers map[string]string, body []byte) error {
	h, body, err := store.EncodeIdempotentResponse(headers, body)
	if err != nil {
		return fmt.Errorf("finish idempotent %q: %w", key, err)
	}
	tag, err := tx.tx.Exec(ctx,
		`UPDATE idempotency SET state = $1, status = $2, headers = $3, body = $4 WHERE workspace_id = $5 AND key = $6`,
		store.IdemDone, status, h, body, workspaceID, key)
	if err == nil {
		err = mustAffect(tag)
	}
	if err != nil {
		return fmt.Errorf("finish idempotent %q: %w", key, wrapError(err))
	}
	return nil
}

// AbandonIdempotent deletes a running record, so the key can be retried.
// A done or missing record is left alone.
func (s *Store) AbandonIdempotent(ctx context.Context, workspaceID, key string) error {
	if _, err := s.pool.Exec(ctx,
		`DELETE FROM idempotency WHERE workspace_id = $1 AND key = $2 AND state = $3`,
		workspaceID, key, store.IdemRunning); err != nil {
		return fmt.Errorf("abandon idempotent %q: %w", key, err)
	}
	return nil
}

// PruneIdempotency deletes every record created before olderThan and
// returns how many it deleted.
func (s *Store) PruneIdempotency(ctx context.Context, olderThan time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency WHERE created_at < $1`, toNanos(olderThan))
	if err != nil {
		return 0, fmt.Errorf("prune idempotency: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// AbandonRunningIdempotency deletes every idempotency record still marked
// running. With several daemons sharing the database, another daemon may be
// running such a request: call it only when every daemon is stopped (the
// backend should instead abandon records of requests older than a publish
// can take).
func (s *Store) AbandonRunningIdempotency(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM idempotency WHERE state = 'running'`); err != nil {
		return fmt.Errorf("abandon running idempotency records: %w", err)
	}
	return nil
}

// AbandonStaleIdempotency deletes the idempotency records still marked
// running that were created before olderThan, and returns how many: what a
// daemon sharing the database may safely abandon (a request running on
// another daemon is younger than any request can take).
func (s *Store) AbandonStaleIdempotency(ctx context.Context, olderThan time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx,
		`DELETE FROM idempotency WHERE state = 'running' AND created_at < $1`, toNanos(olderThan))
	if err != nil {
		return 0, fmt.Errorf("abandon stale idempotency records: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
