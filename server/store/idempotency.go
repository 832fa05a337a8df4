package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// IdempotencyTTL is how long an Idempotency-Key record is replayed.
const IdempotencyTTL = 24 * time.Hour

// Idempotency states.
const (
	IdemRunning = "running" // the first request is still being processed
	IdemDone    = "done"    // the response is recorded and replayable
)

// Idempotency is the record of one Idempotency-Key (CONTRACT §5): the first
// request's fingerprint and, once done, its response.
type Idempotency struct {
	WorkspaceID string
	Key         string
	Scope       string // what the key was used for, e.g. "publish:<agentId>"
	RequestHash string
	State       string // IdemRunning or IdemDone
	Status      int
	Body        []byte
	Headers     map[string]string
	CreatedAt   time.Time
}

// BeginIdempotent claims (rec.WorkspaceID, rec.Key): if no live record
// exists it inserts rec with state running and returns (nil, nil).
// Otherwise it returns the existing record and the caller compares Scope,
// RequestHash and State. A record older than IdempotencyTTL (measured from
// rec.CreatedAt, which defaults to now) is replaced.
func (s *Store) BeginIdempotent(ctx context.Context, rec Idempotency) (*Idempotency, error) {
	if rec.WorkspaceID == "" || rec.Key == "" {
		return nil, errors.New("begin idempotent: workspace and key are required")
	}
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = time.Now()
	}
	var existing *Idempotency
	err := s.write(ctx, func(tx *sqliteTx) error {
		old, err := idempotency(ctx, tx, rec.WorkspaceID, rec.Key)
		switch {
		case err == nil && old.CreatedAt.After(rec.CreatedAt.Add(-IdempotencyTTL)):
			existing = &old
			return nil
		case err == nil:
			if _, err := tx.q.ExecContext(ctx,
				`DELETE FROM idempotency WHERE workspace_id = ? AND key = ?`, rec.WorkspaceID, rec.Key); err != nil {
				return err
			}
		case !errors.Is(err, ErrNotFound):
			return err
		}
		_, err = tx.q.ExecContext(ctx,
			`INSERT INTO idempotency (workspace_id, key, scope, request_hash, state, status, headers, body, created_at)
			 VALUES (?, ?, ?, ?, ?, 0, '{}', NULL, ?)`,
			rec.WorkspaceID, rec.Key, rec.Scope, rec.RequestHash, IdemRunning, toNanos(rec.CreatedAt))
		return wrapError(err)
	})
	if err != nil {
		return nil, fmt.Errorf("begin idempotent %q: %w", rec.Key, err)
	}
	return existing, nil
}

func idempotency(ctx context.Context, tx *sqliteTx, workspaceID, key string) (Idempotency, error) {
	var (
		r       Idempotency
		headers string
		ns      int64
	)
	err := tx.q.QueryRowContext(ctx,
		`SELECT workspace_id, key, scope, request_hash, state, status, headers, body, created_at
		 FROM idempotency WHERE workspace_id = ? AND key = ?`, workspaceID, key).
		Scan(&r.WorkspaceID, &r.Key, &r.Scope, &r.RequestHash, &r.State, &r.Status, &headers, &r.Body, &ns)
	if err != nil {
		return Idempotency{}, wrapError(err)
	}
	if err := json.Unmarshal([]byte(headers), &r.Headers); err != nil {
		return Idempotency{}, fmt.Errorf("decode headers: %w", err)
	}
	r.CreatedAt = fromNanos(ns)
	return r, nil
}

// FinishIdempotent records the response of the first request and marks the
// record done. No record is ErrNotFound.
func (s *Store) FinishIdempotent(ctx context.Context, workspaceID, key string, status int, headers map[string]string, body []byte) error {
	return s.write(ctx, func(tx *sqliteTx) error {
		return tx.FinishIdempotentTx(ctx, workspaceID, key, status, headers, body)
	})
}

// FinishIdempotentTx is FinishIdempotent inside a write transaction, so a
// publish records its response atomically with its rows.
func (tx *sqliteTx) FinishIdempotentTx(ctx context.Context, workspaceID, key string, status int, headers map[string]string, body []byte) error {
	h, body, err := EncodeIdempotentResponse(headers, body)
	if err != nil {
		return fmt.Errorf("finish idempotent %q: %w", key, err)
	}
	res, err := tx.q.ExecContext(ctx,
		`UPDATE idempotency SET state = ?, status = ?, headers = ?, body = ? WHERE workspace_id = ? AND key = ?`,
		IdemDone, status, h, body, workspaceID, key)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("finish idempotent %q: %w", key, wrapError(err))
	}
	return nil
}

// AbandonIdempotent deletes a running record, so the key can be retried
// after the first request failed with an error that must not be replayed.
// A done or missing record is left alone.
func (s *Store) AbandonIdempotent(ctx context.Context, workspaceID, key string) error {
	if _, err := s.wdb.ExecContext(ctx,
		`DELETE FROM idempotency WHERE workspace_id = ? AND key = ? AND state = ?`,
		workspaceID, key, IdemRunning); err != nil {
		return fmt.Errorf("abandon idempotent %q: %w", key, err)
	}
	return nil
}

// PruneIdempotency deletes every record created before olderThan and
// returns how many it deleted.
func (s *Store) PruneIdempotency(ctx context.Context, olderThan time.Time) (int, error) {
	res, err := s.wdb.ExecContext(ctx, `DELETE FROM idempotency WHERE created_at < ?`, toNanos(olderThan))
	if err != nil {
		return 0, fmt.Errorf("prune idempotency: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune idempotency: %w", err)
	}
	return int(n), nil
}

// EncodeIdempotentResponse is the stored form of a first response's
// headers (JSON, never null) and body (never NULL), shared by engines.
func EncodeIdempotentResponse(headers map[string]string, body []byte) (string, []byte, error) {
	if headers == nil {
		headers = map[string]string{}
	}
	h, err := json.Marshal(headers)
	if err != nil {
		return "", nil, err
	}
	if body == nil {
		body = []byte{}
	}
	return string(h), body, nil
}
