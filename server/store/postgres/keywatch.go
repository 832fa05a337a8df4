package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flowyte/flowyte/server/store"
)

// Key revocations reach every daemon at once without a database read per
// request. A daemon running [Store.WatchKeys] answers KeysStamp from memory
// while it holds a lease; without one, KeysStamp reads key_revision (the
// exact fallback). The protocol:
//
//   - The watcher holds one connection that LISTENs on channelKeys and
//     heartbeats on that same connection every keyRenew: it upserts its
//     daemons row (acknowledging the revision it holds, lease_until =
//     database clock + keyLease), then reads key_revision again and raises
//     its revision to what it reads. Its lease in memory ends keyLease −
//     keyMargin after the moment it sent the upsert, so it always ends
//     before the row's lease does. Heartbeats on the listening connection
//     mean a dead or stuck connection also stops the lease.
//   - RevokeKey bumps key_revision and notifies channelKeys with the new
//     revision in its transaction. After the commit it waits until no other
//     daemon with a live lease has acknowledged less, or keyLease has
//     passed. A watcher raises its revision on the notification, then
//     acknowledges at once.
//
// Why a returned revocation is seen by every daemon at its next request: a
// daemon that answers from memory at time T renewed its lease at some
// t0 > T − keyLease. If the revocation committed before t0, the read after
// that renewal saw it. Otherwise the daemon's row was live when the
// revoker looked, so the revoker waited for its acknowledgement, or for
// keyLease, by which time the lease taken before the commit has ended.
// A daemon killed with its lease live delays revocations by up to
// keyLease; a clean stop deletes its row.
const (
	channelKeys = "flowyte_keys"
	keyLease    = 4 * time.Second
	keyRenew    = keyLease / 4
	keyMargin   = keyLease / 8
)

// keyWatch is this process's view of the key revision.
type keyWatch struct {
	id    string       // the daemons row (one per Store)
	base  time.Time    // monotonic origin of until
	rev   atomic.Int64 // the newest revision seen
	until atomic.Int64 // lease end, nanoseconds after base; 0 = none
	reads atomic.Int64 // database reads of the revision by KeysStamp
	stamp atomic.Value // string form of rev, cached for KeysStamp
	live  atomic.Bool  // a watcher runs
}

func (w *keyWatch) init() {
	w.id = store.NewID("d")
	w.stamp.Store("0")
}

// leased reports whether the in-memory revision may be trusted now.
func (w *keyWatch) leased() bool {
	u := w.until.Load()
	return u != 0 && leaseNow() < u
}

// raise records revision rev if newer, and reports whether it was.
func (w *keyWatch) raise(rev int64) bool {
	for {
		cur := w.rev.Load()
		if rev <= cur {
			return false
		}
		if w.rev.CompareAndSwap(cur, rev) {
			w.stamp.Store(strconv.FormatInt(rev, 10))
			return true
		}
	}
}

// KeysLeased reports whether KeysStamp is answered from memory now (a
// watcher holds a lease), for metrics and tests.
func (s *Store) KeysLeased() bool { return s.watch.leased() }

// WatchKeys keeps this store's key revision current without a read per
// KeysStamp (see the protocol above), until ctx ends; then it deletes its
// daemons row and returns ctx's error. A daemon runs one per store. While
// the database is unreachable it keeps reconnecting, and KeysStamp falls
// back to reading (which then fails, so caches are not trusted).
func (s *Store) WatchKeys(ctx context.Context) error {
	if !s.watch.live.CompareAndSwap(false, true) {
		return errors.New("watch keys: already watching")
	}
	defer s.watch.live.Store(false)
	cfg := s.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "flowyte-keys " + s.watch.id
	defer func() {
		// A clean stop: revocations need not wait for this daemon.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_, _ = s.pool.Exec(dctx, `DELETE FROM daemons WHERE id = $1`, s.watch.id)
	}()
	backoff := 50 * time.Millisecond
	for {
		_ = s.watchOnce(ctx, cfg, func() { backoff = 50 * time.Millisecond })
		s.watch.until.Store(0) // KeysStamp reads until the next lease
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (s *Store) watchOnce(ctx context.Context, cfg *pgx.ConnConfig, connected func()) error {
	cctx, cancel := context.WithTimeout(ctx, keyRenew)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := s.withTimeout(ctx, func(ctx context.Context) error {
		_, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{channelKeys}.Sanitize())
		if err == nil {
			// Rows of daemons long gone.
			_, err = conn.Exec(ctx, `DELETE FROM daemons WHERE lease_until < clock_timestamp() - interval '1 hour'`)
		}
		return err
	}); err != nil {
		return err
	}
	connected()
	next := time.Now()
	for {
		if !time.Now().Before(next) {
			if err := s.heartbeat(ctx, conn); err != nil {
				return err
			}
			next = time.Now().Add(keyRenew)
		}
		wctx, cancel := context.WithDeadline(ctx, next)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			rev, perr := strconv.ParseInt(n.Payload, 10, 64)
			if perr != nil || s.watch.raise(rev) {
				next = time.Now() // acknowledge now
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Time to renew.
		default:
			return err
		}
	}
}

// heartbeat acknowledges the revision held and renews the lease, then reads
// the revision again (a revocation whose revoker did not see this row yet
// committed before that read); it repeats while the read raises the
// revision, so the row acknowledges what the lease trusts.
func (s *Store) heartbeat(ctx context.Context, conn *pgx.Conn) error {
	for {
		sent := leaseNow()
		held := s.watch.rev.Load()
		var rev int64
		err := s.withTimeout(ctx, func(ctx context.Context) error {
			if _, err := conn.Exec(ctx, `INSERT INTO daemons (id, key_rev, lease_until)
				VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond')
				ON CONFLICT (id) DO UPDATE SET key_rev = greatest(daemons.key_rev, EXCLUDED.key_rev), lease_until = EXCLUDED.lease_until`,
				s.watch.id, held, keyLease.Milliseconds()); err != nil {
				return err
			}
			return conn.QueryRow(ctx, `SELECT rev FROM key_revision WHERE id = 1`).Scan(&rev)
		})
		if err != nil {
			s.watch.until.Store(0)
			return err
		}
		s.watch.raise(rev)
		s.watch.until.Store(sent + int64(keyLease-keyMargin))
		if s.watch.rev.Load() == held {
			return nil
		}
	}
}

// withTimeout runs fn with a deadline of keyRenew: a stuck connection
// ends the lease rather than hold it.
func (s *Store) withTimeout(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, keyRenew)
	defer cancel()
	return fn(ctx)
}

// awaitKeyRevision returns once no other daemon can still answer
// KeysStamp from memory with a revision below rev: when every live lease
// has acknowledged rev, or keyLease after the commit at the latest.
func (s *Store) awaitKeyRevision(ctx context.Context, rev int64) {
	deadline := time.Now().Add(keyLease)
	delay := time.Millisecond
	for {
		var waiting int
		qctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
		err := s.pool.QueryRow(qctx, `SELECT count(*) FROM daemons
			WHERE key_rev < $1 AND lease_until > clock_timestamp() AND id <> $2`, rev, s.watch.id).Scan(&waiting)
		cancel()
		if err == nil && waiting == 0 {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		time.Sleep(min(delay, left))
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// notifyKeyRevision bumps key_revision in tx and tells the watchers; it
// returns the new revision.
func notifyKeyRevision(ctx context.Context, tx *pgTx) (int64, error) {
	var rev int64
	if err := tx.tx.QueryRow(ctx, `UPDATE key_revision SET rev = rev + 1 WHERE id = 1 RETURNING rev`).Scan(&rev); err != nil {
		return 0, wrapError(err)
	}
	if _, err := tx.tx.Exec(ctx, `SELECT pg_notify($1, $2)`, channelKeys, strconv.FormatInt(rev, 10)); err != nil {
		return 0, fmt.Errorf("notify %s: %w", channelKeys, wrapError(err))
	}
	return rev, nil
}
