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

// The cluster watch keeps what a daemon holds in memory about other
// daemons' writes exact without a database read per request: the key
// revision (KeysStamp) and whatever the daemon caches and invalidates by
// Broadcast messages (agent rows). While a daemon holds a lease, what it
// holds is current as of every revocation and Broadcast that has returned,
// on any daemon. Without a lease it must read (KeysStamp does by itself;
// callers check Leased).
//
// The protocol:
//
//   - A watcher ([Store.Watch]) holds one connection that LISTENs on the
//     keys, ping and callers' channels, and heartbeats on that same
//     connection every renewEvery: it upserts its daemons row
//     (acknowledging the key revision and the newest ping it holds;
//     lease_until = database clock + leaseTime), reads key_revision again
//     and raises its revision to it, then notifies itself on a private
//     channel and handles every message queued before that one (a
//     barrier). Its lease in memory ends leaseTime − leaseMargin after it
//     sent the upsert, so always before the row's. Heartbeats on the
//     listening connection mean a dead or stuck connection also ends the
//     lease. After every reconnection it calls onReset before it trusts
//     anything: messages sent while it was away are lost.
//   - RevokeKey bumps key_revision and notifies the new revision in its
//     transaction; Broadcast notifies its message, then (once that has
//     committed) a ping numbered by the cluster_pings sequence. Each then
//     waits until no other daemon with a live lease acknowledges less, or
//     leaseTime has passed. A watcher handles messages in commit order and
//     acknowledges a revision or ping right after handling it.
//
// Why a returned revocation or Broadcast is seen by a daemon that trusts
// its memory at time T: the daemon renewed at some t0 > T − leaseTime. If
// the writer looked at the daemons table after that renewal committed, it
// found the lease live and waited for the acknowledgement (a ping numbered
// n or more is delivered after every message committed before n was
// drawn). If it looked before, its message or revision committed before
// the renewal, so the read or the barrier that follows the renewal
// handled it before the lease was trusted; and if no renewal lies between,
// the lease that was live when the writer looked has ended by T, or the
// writer waited leaseTime. A daemon killed with a live lease delays
// writers by up to leaseTime; a clean stop deletes its row.
//
// Acknowledgements and heartbeats commit with synchronous_commit off: a
// lost one only makes a writer wait, and a database crash ends every
// watcher's connection, so its lease, before the database is back.
const (
	channelKeys = "flowyte_keys"
	channelPing = "flowyte_ping"
	leaseTime   = 2 * time.Second
	renewEvery  = leaseTime / 4
	leaseMargin = leaseTime / 8
	// roundTrips bounds one connection attempt or heartbeat: a stuck
	// connection ends the lease rather than hold it.
	roundTrips = leaseTime / 2
)

// watchState is this process's view of the cluster.
type watchState struct {
	id    string                   // the daemons row (one per Store)
	key   atomic.Pointer[keyStamp] // the newest key revision seen
	ping  atomic.Int64             // the newest ping seen
	lease atomic.Pointer[leaseEnd] // the lease held; nil = none
	reads atomic.Int64             // database reads of the key revision by KeysStamp
	live  atomic.Bool              // a watcher runs
}

// leaseEnd is when a lease ends, as a time.Time read from both of Go's
// clocks: the monotonic one (immune to steps of the wall clock) and the
// wall clock, which the kernel moves on by the time a system spent
// suspended, and a hypervisor's guest agent or NTP after a VM was paused.
// The lease holds while both say so. One time.Now (vDSO, no syscall) per
// check: it is on every request's path.
type leaseEnd struct {
	mono time.Time // carries the monotonic reading
	wall int64     // UnixNano
}

// keyStamp is a key revision and its KeysStamp string, swapped together so
// the string never lags the revision.
type keyStamp struct {
	rev   int64
	stamp string
}

func (w *watchState) init() {
	w.id = store.NewID("d")
	w.key.Store(&keyStamp{stamp: "0"})
}

// leased reports whether what is held in memory may be trusted now.
func (w *watchState) leased() bool {
	l := w.lease.Load()
	if l == nil {
		return false
	}
	now := time.Now()
	return now.Before(l.mono) && now.UnixNano() < l.wall
}

// raise records key revision rev if newer, and reports whether it was.
func (w *watchState) raise(rev int64) bool {
	for {
		cur := w.key.Load()
		if rev <= cur.rev {
			return false
		}
		if w.key.CompareAndSwap(cur, &keyStamp{rev: rev, stamp: strconv.FormatInt(rev, 10)}) {
			return true
		}
	}
}

// raisePing records ping n if newer, and reports whether it was.
func (w *watchState) raisePing(n int64) bool {
	for {
		cur := w.ping.Load()
		if n <= cur {
			return false
		}
		if w.ping.CompareAndSwap(cur, n) {
			return true
		}
	}
}

// Leased reports whether this daemon's watcher holds a lease now: what it
// keeps in memory and invalidates by Broadcast messages may be trusted.
// Without one, read the database.
func (s *Store) Leased() bool { return s.watch.leased() }

// WatchKeys is Watch for the key revision alone.
func (s *Store) WatchKeys(ctx context.Context) error { return s.Watch(ctx, nil, nil) }

// Watch runs this store's cluster watcher (see the protocol above) until
// ctx ends; then it deletes its daemons row and returns ctx's error. It
// calls onMessage for every message Broadcast on one of channels, one at a
// time and in commit order, and onReset after each (re)connection, before
// the lease is trusted: a cache should then drop everything. Either may be
// nil. One watcher runs per store. While the database is unreachable it
// keeps reconnecting, and KeysStamp reads (failing, so caches are not
// trusted).
func (s *Store) Watch(ctx context.Context, onMessage func(channel, payload string), onReset func(), channels ...string) error {
	if !s.watch.live.CompareAndSwap(false, true) {
		return errors.New("watch: this store is already watched")
	}
	defer s.watch.live.Store(false)
	cfg := s.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "flowyte-watch " + s.watch.id
	cfg.RuntimeParams["synchronous_commit"] = "off"
	defer func() {
		// A clean stop: writers need not wait for this daemon.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_, _ = s.pool.Exec(dctx, `DELETE FROM daemons WHERE id = $1`, s.watch.id)
	}()
	w := &watcher{s: s, onMessage: onMessage, onReset: onReset, channels: channels}
	backoff := 50 * time.Millisecond
	for {
		_ = w.run(ctx, cfg, func() { backoff = 50 * time.Millisecond })
		s.watch.lease.Store(nil) // read until the next lease
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// testHookListening, when set by a test, runs once a watcher listens,
// before its first heartbeat.
var testHookListening func()

// watcher is one Watch call.
type watcher struct {
	s         *Store
	onMessage func(channel, payload string)
	onReset   func()
	channels  []string
	conn      *pgx.Conn
	barrier   int64 // the last barrier token sent
	ackNow    bool  // something was raised: heartbeat at once
}

func (w *watcher) private() string { return "flowyte_sync_" + w.s.watch.id }

// run is one connection's life.
func (w *watcher) run(ctx context.Context, cfg *pgx.ConnConfig, connected func()) error {
	cctx, cancel := context.WithTimeout(ctx, roundTrips)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	w.conn = conn
	if err := w.bounded(ctx, func(ctx context.Context) error {
		for _, ch := range append([]string{channelKeys, channelPing, w.private()}, w.channels...) {
			if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{ch}.Sanitize()); err != nil {
				return err
			}
		}
		// Rows of daemons long gone.
		_, err := conn.Exec(ctx, `DELETE FROM daemons WHERE lease_until < clock_timestamp() - interval '1 hour'`)
		return err
	}); err != nil {
		return err
	}
	connected()
	if w.onReset != nil {
		w.onReset()
	}
	if testHookListening != nil {
		testHookListening()
	}
	next := time.Now()
	for {
		if w.ackNow || !time.Now().Before(next) {
			w.ackNow = false
			if err := w.heartbeat(ctx); err != nil {
				w.s.watch.lease.Store(nil)
				return err
			}
			next = time.Now().Add(renewEvery)
			continue // the barrier may have raised something
		}
		wctx, cancel := context.WithDeadline(ctx, next)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			w.handle(n.Channel, n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Time to renew.
		default:
			return err
		}
	}
}

// handle takes one notification; it reports whether it was the barrier
// token awaited.
func (w *watcher) handle(channel, payload string) (barrier bool) {
	switch channel {
	case channelKeys:
		rev, err := strconv.ParseInt(payload, 10, 64)
		if err != nil || w.s.watch.raise(rev) {
			w.ackNow = true
		}
	case channelPing:
		n, err := strconv.ParseInt(payload, 10, 64)
		if err == nil && w.s.watch.raisePing(n) {
			w.ackNow = true
		}
	case w.private():
		return payload == strconv.FormatInt(w.barrier, 10)
	default:
		if w.onMessage != nil {
			w.onMessage(channel, payload)
		}
	}
	return false
}

// heartbeat acknowledges what is held and renews the lease, reads the key
// revision again and passes a barrier; only then is the lease trusted.
func (w *watcher) heartbeat(ctx context.Context) error {
	st := &w.s.watch
	sent := time.Now()
	// Without a lease nothing is trusted until the barrier below has
	// handled every message committed before it, so every ping drawn so
	// far may be acknowledged now (after a reconnection, the pings whose
	// notifications were lost would otherwise hold writers for leaseTime).
	ping := `$3::bigint`
	if !st.leased() {
		ping = `greatest($3::bigint, (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM cluster_pings))`
	}
	var rev, acked int64
	err := w.bounded(ctx, func(ctx context.Context) error {
		if err := w.conn.QueryRow(ctx, `INSERT INTO daemons (id, key_rev, ping_ack, lease_until)
			VALUES ($1, $2, `+ping+`, clock_timestamp() + $4 * interval '1 millisecond')
			ON CONFLICT (id) DO UPDATE SET key_rev = greatest(daemons.key_rev, EXCLUDED.key_rev),
				ping_ack = greatest(daemons.ping_ack, EXCLUDED.ping_ack), lease_until = EXCLUDED.lease_until
			RETURNING ping_ack`,
			st.id, st.key.Load().rev, st.ping.Load(), leaseTime.Milliseconds()).Scan(&acked); err != nil {
			return err
		}
		st.raisePing(acked)
		if err := w.conn.QueryRow(ctx, `SELECT rev FROM key_revision WHERE id = 1`).Scan(&rev); err != nil {
			return err
		}
		// The barrier: every message committed before this notification
		// is delivered before it.
		w.barrier++
		if _, err := w.conn.Exec(ctx, `SELECT pg_notify($1, $2)`, w.private(), strconv.FormatInt(w.barrier, 10)); err != nil {
			return err
		}
		for {
			n, err := w.conn.WaitForNotification(ctx)
			if err != nil {
				return err
			}
			if w.handle(n.Channel, n.Payload) {
				return nil
			}
		}
	})
	if err != nil {
		return err
	}
	if st.raise(rev) {
		w.ackNow = true
	}
	end := sent.Add(leaseTime - leaseMargin)
	st.lease.Store(&leaseEnd{mono: end, wall: end.UnixNano()})
	return nil
}

// bounded runs fn with a deadline of roundTrips.
func (w *watcher) bounded(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, roundTrips)
	defer cancel()
	return fn(ctx)
}

// Broadcast sends payload on channel to every watching daemon (their
// Watch's onMessage) and returns once every daemon with a live lease has
// handled it, or leaseTime has passed. Call it after the change it
// announces has committed.
func (s *Store) Broadcast(ctx context.Context, channel, payload string) error {
	if err := s.Notify(ctx, channel, payload); err != nil {
		return err
	}
	return s.Sync(ctx)
}

// Sync returns once every daemon with a live lease has handled every
// message committed before the call (sent by Notify, or by a transaction's
// Notify), or leaseTime has passed. A write that notifies in its own
// transaction calls Sync after its commit: one round trip when no other
// daemon is watching.
func (s *Store) Sync(ctx context.Context) error {
	// The ping is drawn after the messages committed: a daemon that has
	// seen it, or any later one, has handled them.
	start := time.Now()
	var n int64
	var waiting int
	err := s.pool.QueryRow(context.WithoutCancel(ctx), `WITH p AS (SELECT nextval('cluster_pings') AS n)
		SELECT p.n, (SELECT count(*) FROM daemons
			WHERE ping_ack < p.n AND lease_until > clock_timestamp() AND id <> $2)::int
		FROM p, LATERAL (SELECT pg_notify($1, p.n::text)) AS sent`,
		channelPing, s.watch.id).Scan(&n, &waiting)
	if err == nil && waiting == 0 {
		return nil
	}
	if err == nil {
		s.await(ctx, start, `SELECT count(*) FROM daemons WHERE ping_ack < $1 AND lease_until > clock_timestamp() AND id <> $2`, n)
		return nil
	}
	// Without a ping nobody can acknowledge: wait out the leases.
	time.Sleep(time.Until(start.Add(leaseTime)))
	return nil
}

// await polls query (a count of the daemons still to acknowledge value)
// until it is zero, or leaseTime after start: by then every lease taken
// before start has ended.
func (s *Store) await(ctx context.Context, start time.Time, query string, value int64) {
	deadline := start.Add(leaseTime)
	delay := 500 * time.Microsecond
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		time.Sleep(min(delay, left))
		delay = min(2*delay, 50*time.Millisecond)
		var waiting int
		qctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
		err := s.pool.QueryRow(qctx, query, value, s.watch.id).Scan(&waiting)
		cancel()
		if err == nil && waiting == 0 {
			return
		}
	}
}

// awaitKeyRevision returns once no other daemon can still answer
// KeysStamp from memory with a revision below rev.
func (s *Store) awaitKeyRevision(ctx context.Context, start time.Time, rev int64) {
	var waiting int
	err := s.pool.QueryRow(context.WithoutCancel(ctx), `SELECT count(*) FROM daemons
		WHERE key_rev < $1 AND lease_until > clock_timestamp() AND id <> $2`, rev, s.watch.id).Scan(&waiting)
	if err == nil && waiting == 0 {
		return
	}
	s.await(ctx, start, `SELECT count(*) FROM daemons WHERE key_rev < $1 AND lease_until > clock_timestamp() AND id <> $2`, rev)
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
