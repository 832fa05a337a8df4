package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/flowyte/flowyte/server/store"
)

// CreateDashboardSession stores a new session; a token hash already
// stored is ErrConflict.
func (s *Store) CreateDashboardSession(ctx context.Context, d store.DashboardSession) error {
	if err := store.CheckDashboardSession(d); err != nil {
		return fmt.Errorf("create dashboard session: %w", err)
	}
	_, err := s.pool.Exec(ctx,
		`INSERT INTO dashboard_sessions (token_hash, key_ref, key_id, created_at, last_seen) VALUES ($1, $2, $3, $4, $5)`,
		d.TokenHash, d.KeyRef, d.KeyID, toNanos(d.CreatedAt), toNanos(d.LastSeen))
	if err != nil {
		return fmt.Errorf("create dashboard session: %w", wrapError(err))
	}
	return nil
}

// DashboardSession returns the session whose token hashes to tokenHash,
// or ErrNotFound.
func (s *Store) DashboardSession(ctx context.Context, tokenHash []byte) (store.DashboardSession, error) {
	var (
		d              store.DashboardSession
		created, lastS int64
	)
	err := s.pool.QueryRow(ctx,
		`SELECT token_hash, key_ref, key_id, created_at, last_seen FROM dashboard_sessions WHERE token_hash = $1`,
		tokenHash).Scan(&d.TokenHash, &d.KeyRef, &d.KeyID, &created, &lastS)
	if err != nil {
		return store.DashboardSession{}, fmt.Errorf("dashboard session: %w", wrapError(err))
	}
	d.CreatedAt, d.LastSeen = fromNanos(created), fromNanos(lastS)
	return d, nil
}

// TouchDashboardSession records that the session was seen at at. LastSeen
// never moves back (daemons may touch it out of order); an unknown token
// hash is ErrNotFound.
func (s *Store) TouchDashboardSession(ctx context.Context, tokenHash []byte, at time.Time) error {
	tag, err := s.pool.Exec(ctx,
		`UPDATE dashboard_sessions SET last_seen = GREATEST(last_seen, $1) WHERE token_hash = $2`, toNanos(at), tokenHash)
	if err == nil {
		err = mustAffect(tag)
	}
	if err != nil {
		return fmt.Errorf("touch dashboard session: %w", wrapError(err))
	}
	return nil
}

// DeleteDashboardSession ends a session; an unknown token hash is
// ErrNotFound.
func (s *Store) DeleteDashboardSession(ctx context.Context, tokenHash []byte) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM dashboard_sessions WHERE token_hash = $1`, tokenHash)
	if err == nil {
		err = mustAffect(tag)
	}
	if err != nil {
		return fmt.Errorf("delete dashboard session: %w", wrapError(err))
	}
	return nil
}

// PruneDashboardSessions deletes the sessions last seen before idleBefore
// or created before createdBefore (expired ones), and returns how many.
func (s *Store) PruneDashboardSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx,
		`DELETE FROM dashboard_sessions WHERE last_seen < $1 OR created_at < $2`, toNanos(idleBefore), toNanos(createdBefore))
	if err != nil {
		return 0, fmt.Errorf("prune dashboard sessions: %w", wrapError(err))
	}
	return int(tag.RowsAffected()), nil
}
