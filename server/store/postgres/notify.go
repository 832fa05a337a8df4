package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flowyte/flowyte/server/store"
	"github.com/jackc/pgx/v5"
)

// Notify sends payload to every daemon listening on channel (Listen),
// now. Inside a transaction, use the Tx's Notify instead, so the message
// leaves only if the transaction commits. Payloads must stay under 8000
// bytes: send ids, not rows.
func (s *Store) Notify(ctx context.Context, channel, payload string) error {
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, payload); err != nil {
		return fmt.Errorf("notify %s: %w", channel, wrapError(err))
	}
	return nil
}

// Notify queues payload for every daemon listening on channel; PostgreSQL
// delivers it when the transaction commits, and drops it on rollback. The
// backend reaches it with a type assertion on the store.Tx:
//
//	if n, ok := tx.(interface{ Notify(context.Context, string, string) error }); ok { ... }
func (tx *pgTx) Notify(ctx context.Context, channel, payload string) error {
	if _, err := tx.tx.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, payload); err != nil {
		return fmt.Errorf("notify %s: %w", channel, wrapError(err))
	}
	return nil
}

// NotifyTx is tx's Notify, for callers that hold a store.Tx of this
// store (the backend's Cluster interface).
func (s *Store) NotifyTx(ctx context.Context, tx store.Tx, channel, payload string) error {
	ptx, ok := tx.(*pgTx)
	if !ok {
		return fmt.Errorf("notify %s: %T is not a transaction of this store", channel, tx)
	}
	return ptx.Notify(ctx, channel, payload)
}

// Listen delivers the notifications of channel to onMessage, one at a
// time, until ctx is done (it then returns ctx's error). It holds its own
// connection. Notifications sent while that connection is down are lost,
// so after every (re)connection, before any message, it calls onReset: a
// cache should then drop everything. If the connection breaks it
// reconnects, waiting up to a few seconds between attempts.
func (s *Store) Listen(ctx context.Context, channel string, onMessage func(payload string), onReset func()) error {
	cfg := s.pool.Config().ConnConfig.Copy()
	backoff := 50 * time.Millisecond
	for {
		err := s.listenOnce(ctx, cfg, channel, onMessage, onReset, func() { backoff = 50 * time.Millisecond })
		if ctx.Err() != nil {
			return ctx.Err()
		}
		_ = err // reconnect; the next onReset tells the caller
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *Store) listenOnce(ctx context.Context, cfg *pgx.ConnConfig, channel string,
	onMessage func(string), onReset func(), connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	connected()
	onReset()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return ctx.Err()
			}
			return err
		}
		onMessage(n.Payload)
	}
}
