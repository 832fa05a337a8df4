package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DashboardSession is a dashboard sign-in session (CONTRACT §13). The
// token itself is never stored: only its SHA-256.
type DashboardSession struct {
	// TokenHash is the SHA-256 of the session token (32 bytes).
	TokenHash []byte
	// KeyRef is the hex SHA-256 of the API key the session was made from.
	KeyRef string
	// KeyID is that key's id; revoking the key deletes the session.
	KeyID     string
	CreatedAt time.Time
	LastSeen  time.Time
}

// CheckDashboardSession validates what every engine requires of a new
// session row.
func CheckDashboardSession(s DashboardSession) error {
	if len(s.TokenHash) != 32 || s.KeyRef == "" || s.KeyID == "" {
		return errors.New("a 32-byte token hash, a key ref and a key id are required")
	}
	return nil
}

// CreateDashboardSession stores a new session; a token hash already
// stored is ErrConflict.
func (s *Store) CreateDashboardSession(ctx context.Context, d DashboardSession) error {
	if err := CheckDashboardSession(d); err != nil {
		return fmt.Errorf("create dashboard session: %w", err)
	}
	err := s.write(ctx, func(tx *sqliteTx) error {
		_, err := tx.q.ExecContext(ctx,
			`INSERT INTO dashboard_sessions (token_hash, key_ref, key_id, created_at, last_seen) VALUES (?, ?, ?, ?, ?)`,
			d.TokenHash, d.KeyRef, d.KeyID, toNanos(d.CreatedAt), toNanos(d.LastSeen))
		return wrapError(err)
	})
	if err != nil {
		return fmt.Errorf("create dashboard session: %w", err)
	}
	return nil
}

// DashboardSession returns the session whose token hashes to tokenHash,
// or ErrNotFound.
func (s *Store) DashboardSession(ctx context.Context, tokenHash []byte) (DashboardSession, error) {
	var (
		d              DashboardSession
		created, lastS int64
	)
	err := s.rdb.QueryRowContext(ctx,
		`SELECT token_hash, key_ref, key_id, created_at, last_seen FROM dashboard_sessions WHERE token_hash = ?`,
		tokenHash).Scan(&d.TokenHash, &d.KeyRef, &d.KeyID, &created, &lastS)
	if err != nil {
		return DashboardSession{}, fmt.Errorf("dashboard session: %w", wrapError(err))
	}
	d.CreatedAt, d.LastSeen = fromNanos(created), fromNanos(lastS)
	return d, nil
}

// TouchDashboardSession records that the session was seen at at. LastSeen
// never moves back (two daemons may touch it out of order); an unknown
// token hash is ErrNotFound.
func (s *Store) TouchDashboardSession(ctx context.Context, tokenHash []byte, at time.Time) error {
	err := s.write(ctx, func(tx *sqliteTx) error {
		res, err := tx.q.ExecContext(ctx,
			`UPDATE dashboard_sessions SET last_seen = max(last_seen, ?) WHERE token_hash = ?`, toNanos(at), tokenHash)
		if err != nil {
			return wrapError(err)
		}
		return mustAffect(res)
	})
	if err != nil {
		return fmt.Errorf("touch dashboard session: %w", err)
	}
	return nil
}

// DeleteDashboardSession ends a session; an unknown token hash is
// ErrNotFound.
func (s *Store) DeleteDashboardSession(ctx context.Context, tokenHash []byte) error {
	err := s.write(ctx, func(tx *sqliteTx) error {
		res, err := tx.q.ExecContext(ctx, `DELETE FROM dashboard_sessions WHERE token_hash = ?`, tokenHash)
		if err != nil {
			return wrapError(err)
		}
		return mustAffect(res)
	})
	if err != nil {
		return fmt.Errorf("delete dashboard session: %w", err)
	}
	return nil
}

// PruneDashboardSessions deletes the sessions last seen before idleBefore
// or created before createdBefore (expired ones), and returns how many.
func (s *Store) PruneDashboardSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sqliteTx) error {
		res, err := tx.q.ExecContext(ctx,
			`DELETE FROM dashboard_sessions WHERE last_seen < ? OR created_at < ?`, toNanos(idleBefore), toNanos(createdBefore))
		if err != nil {
			return wrapError(err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune dashboard sessions: %w", err)
	}
	return int(n), nil
}
