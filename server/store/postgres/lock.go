package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// LockAgent takes the cross-daemon lock of agent id: a PostgreSQL session
// advisory lock held on one pooled connection until unlock is called (or
// the daemon dies: its connection closes and the server releases the lock,
// so a SIGKILLed publish never leaves the agent locked). It waits until
// the lock is free or ctx is done. Publish, rollback and draft writes of
// one agent take it around their git and database work, so daemons
// serialise them as one daemon's in-process lock does.
//
// unlock must be called exactly once; it releases the lock and returns the
// connection to the pool (or closes it, when the release itself fails, so
// the server drops the lock with the session).
func (s *Store) LockAgent(ctx context.Context, id string) (unlock func(), err error) {
	var conn *pgxpool.Conn
	// A lock statement that failed on a stale connection (the server
	// restarted) took no lock: its session is gone. Try a fresh one.
	err = retryStale(s.locks, func() error {
		c, err := s.locks.Acquire(ctx)
		if err != nil {
			return err
		}
		// hashtextextended maps the id to the 64-bit lock key; a collision
		// between two agents only serialises them needlessly.
		if _, err := c.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended($1, 0))`, "agent:"+id); err != nil {
			// A cancelled wait may leave the connection mid-protocol: drop it.
			c.Conn().Close(context.Background())
			c.Release()
			return err
		}
		conn = c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lock agent %s: %w", id, wrapError(err))
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, "agent:"+id).Scan(&ok); err != nil || !ok {
			conn.Conn().Close(ctx)
		}
		conn.Release()
	}, nil
}

// TryLockAgent is LockAgent without waiting: ok is false when another
// session holds the lock.
func (s *Store) TryLockAgent(ctx context.Context, id string) (unlock func(), ok bool, err error) {
	var conn *pgxpool.Conn
	err = retryStale(s.locks, func() error {
		c, err := s.locks.Acquire(ctx)
		if err != nil {
			return err
		}
		if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, "agent:"+id).Scan(&ok); err != nil {
			c.Conn().Close(context.Background())
			c.Release()
			return err
		}
		conn = c
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("lock agent %s: %w", id, wrapError(err))
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var released bool
		if err := conn.QueryRow(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, "agent:"+id).Scan(&released); err != nil || !released {
			conn.Conn().Close(ctx)
		}
		conn.Release()
	}, true, nil
}
