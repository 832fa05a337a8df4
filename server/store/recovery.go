package store

import (
	"context"
	"fmt"
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
