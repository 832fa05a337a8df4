package store

import (
	"context"
	"fmt"
	"time"
)

// AbandonRunningIdempotency deletes every idempotency record still marked
// running. At startup no request is running, so such records belong to
// requests a crash cut short; a retry with the same key then runs afresh.
func (s *Store) AbandonRunningIdempotency(ctx context.Context) error {
	if _, err := s.wdb.ExecContext(ctx, `DELETE FROM idempotency WHERE state = 'running'`); err != nil {
		return fmt.Errorf("abandon running idempotency records: %w", err)
	}
	return nil
}

// AbandonStaleIdempotency deletes the idempotency records still marked
// running that were created before olderThan, and returns how many. With
// several daemons on one database a daemon cannot tell a crashed request
// from one running elsewhere, so it abandons only records older than any
// request can run; a retry with such a key then runs afresh.
func (s *Store) AbandonStaleIdempotency(ctx context.Context, olderThan time.Time) (int, error) {
	res, err := s.wdb.ExecContext(ctx,
		`DELETE FROM idempotency WHERE state = 'running' AND created_at < ?`, toNanos(olderThan))
	if err != nil {
		return 0, fmt.Errorf("abandon stale idempotency records: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("abandon stale idempotency records: %w", err)
	}
	return int(n), nil
}
