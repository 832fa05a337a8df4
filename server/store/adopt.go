package store

import (
	"context"
	"database/sql"
	"errors"
)

// AgentDeleted reports whether the agent row id exists and is marked
// deleted (a deletion whose repository move did not finish).
func (s *Store) AgentDeleted(ctx context.Context, id string) (bool, error) {
	var deleted sql.NullInt64
	err := s.rdb.QueryRowContext(ctx, `SELECT deleted_at FROM agents WHERE id = ?`, id).Scan(&deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrapError(err)
	}
	return deleted.Valid, nil
}
