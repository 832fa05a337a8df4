package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/store/pgtest"
	"github.com/flowyte/flowyte/server/store/postgres"
)

// watchKeys runs s.WatchKeys until the returned stop (or the test's end)
// and waits for its first lease.
func watchKeys(t *testing.T, s *postgres.Store) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.WatchKeys(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
	}
	t.Cleanup(stop)
	require.Eventually(t, s.Leased, 10*time.Second, 5*time.Millisecond, "the watcher takes a lease")
	return stop
}

// newKeys creates n keys through s and returns their ids.
func newKeys(t *testing.T, s *postgres.Store, n int) []string {
	t.Helper()
	ws := mustWorkspace(t, s, "w")
	var ids []string
	require.NoError(t, s.Write(context.Background(), func(tx store.Tx) error {
		for i := range n {
			id := fmt.Sprintf("key_w%d", i)
			if err := tx.CreateKey(context.Background(), store.Key{ID: id, WorkspaceID: ws.ID, Name: id, CreatedAt: t0}, []byte(id)); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	}))
	return ids
}

// TestKeyRevocationReachesALeasedDaemonAtOnce: a daemon watching keys
// answers KeysStamp from memory, yet a revocation through another daemon
// changes its stamp before RevokeKey returns, every time.
func TestKeyRevocationReachesALeasedDaemonAtOnce(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	ids := newKeys(t, a, 8)
	watchKeys(t, a)
	watchKeys(t, b)

	prev := b.KeysStamp()
	reads := postgres.StampReads(b)
	for range 200 {
		require.Equal(t, prev, b.KeysStamp())
	}
	ctx := context.Background()
	for i, id := range ids {
		r := []*postgres.Store{a, b}[i%2] // revoked through either daemon
		require.NoError(t, r.RevokeKey(ctx, id, t0))
		for _, s := range []*postgres.Store{a, b} {
			require.NotEqual(t, prev, s.KeysStamp(), "revocation %d is seen at the next call", i)
		}
		prev = b.KeysStamp()
		assert.Equal(t, prev, a.KeysStamp(), "both daemons hold the same revision")
	}
	assert.True(t, b.Leased())
	assert.Equal(t, reads, postgres.StampReads(b), "a leased daemon never read the revision per call")
}

// TestKeyRevocationWithoutAWatcherReads: a store that does not watch
// (the CLI, tests) reads the revision on every call, as before.
func TestKeyRevocationWithoutAWatcherReads(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	ids := newKeys(t, a, 1)
	before := b.KeysStamp()
	require.NoError(t, a.RevokeKey(context.Background(), ids[0], t0))
	assert.NotEqual(t, before, b.KeysStamp())
	assert.False(t, b.Leased())
	assert.Positive(t, postgres.StampReads(b))
}

// TestKeyRevocationWaitsForEveryLiveLease: a daemon that holds a lease
// but never acknowledges (stuck, or killed) holds a revocation back until
// its lease ends, never longer.
func TestKeyRevocationWaitsForEveryLiveLease(t *testing.T) {
	dsn := pgtest.Start(t)
	a := open(t, dsn)
	ids := newKeys(t, a, 1)
	ctx := context.Background()
	_, err := a.Pool().Exec(ctx, `INSERT INTO daemons (id, key_rev, lease_until) VALUES ('d_stuck', 0, clock_timestamp() + interval '700 milliseconds')`)
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, a.RevokeKey(ctx, ids[0], t0))
	took := time.Since(start)
	assert.GreaterOrEqual(t, took, 500*time.Millisecond, "waited for the stuck daemon's lease")
	assert.Less(t, took, 10*time.Second)
}

// TestKeyWatcherConnectionLost: the watcher's connection is killed (its
// notifications with it) just before a revocation; the revocation still
// reaches that daemon before RevokeKey returns, and it leases again.
func TestKeyWatcherConnectionLost(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	ids := newKeys(t, a, 3)
	watchKeys(t, b)
	ctx := context.Background()
	for i, id := range ids {
		before := b.KeysStamp()
		var killed int
		require.NoError(t, a.Pool().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name LIKE 'flowyte-watch %'`).Scan(&killed))
		require.Equal(t, 1, killed, "round %d: the watcher's connection", i)
		require.NoError(t, a.RevokeKey(ctx, id, t0))
		assert.NotEqual(t, before, b.KeysStamp(), "round %d: seen after a lost connection", i)
		require.Eventually(t, b.Leased, 10*time.Second, 5*time.Millisecond, "round %d: leases again", i)
	}
}

// TestKeyWatcherCleanStop: a stopped watcher deletes its row, so
// revocations do not wait for it; a second WatchKeys on one store is
// refused.
func TestKeyWatcherCleanStop(t *testing.T) {
	dsn := pgtest.Start(t)
	a := open(t, dsn)
	stop := watchKeys(t, a)
	err := a.WatchKeys(context.Background())
	require.Error(t, err, "one watcher per store")
	assert.False(t, errors.Is(err, context.Canceled))
	ctx := context.Background()
	var n int
	require.NoError(t, a.Pool().QueryRow(ctx, `SELECT count(*) FROM daemons`).Scan(&n))
	assert.Equal(t, 1, n)
	stop()
	require.NoError(t, a.Pool().QueryRow(ctx, `SELECT count(*) FROM daemons`).Scan(&n))
	assert.Equal(t, 0, n, "a clean stop deletes the row")
	assert.False(t, a.Leased())
}

// cacheModel is what a daemon caches and invalidates by Broadcast: a set
// of ids, each dropped by its message, all dropped on a reset.
type cacheModel struct {
	mu     sync.Mutex
	ids    map[string]bool
	resets int
}

func (c *cacheModel) put(id string) { c.mu.Lock(); c.ids[id] = true; c.mu.Unlock() }
func (c *cacheModel) has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids[id]
}

// watchCache runs s.Watch on channel for a cacheModel until the test ends,
// and waits for its first lease.
func watchCache(t *testing.T, s *postgres.Store, channel string) *cacheModel {
	t.Helper()
	c := &cacheModel{ids: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Watch(ctx, func(ch, id string) {
			assert.Equal(t, channel, ch)
			c.mu.Lock()
			delete(c.ids, id)
			c.mu.Unlock()
		}, func() {
			c.mu.Lock()
			clear(c.ids)
			c.resets++
			c.mu.Unlock()
		}, channel)
	}()
	t.Cleanup(func() {
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
	})
	require.Eventually(t, s.Leased, 10*time.Second, 5*time.Millisecond, "the watcher takes a lease")
	return c
}

// TestBroadcastHandledBeforeItReturns: a message broadcast through one
// daemon has been handled by every other watching daemon when Broadcast
// returns, whichever daemon sends.
func TestBroadcastHandledBeforeItReturns(t *testing.T) {
	dsn := pgtest.Start(t)
	stores := []*postgres.Store{open(t, dsn), open(t, dsn), open(t, dsn)}
	var caches []*cacheModel
	for _, s := range stores {
		caches = append(caches, watchCache(t, s, "flowyte_test"))
	}
	ctx := context.Background()
	for i := range 30 {
		id := fmt.Sprintf("agent-%d", i)
		for _, c := range caches {
			c.put(id)
		}
		from := i % len(stores)
		require.NoError(t, stores[from].Broadcast(ctx, "flowyte_test", id))
		for j, c := range caches {
			if j != from { // the sender drops its own entry itself
				assert.False(t, c.has(id), "round %d: daemon %d handled the message", i, j)
			}
		}
	}
	for _, s := range stores {
		assert.True(t, s.Leased())
	}
}

// TestBroadcastWaitsForEveryLiveLease: a daemon that holds a lease but
// never acknowledges holds a broadcast back until its lease ends.
func TestBroadcastWaitsForEveryLiveLease(t *testing.T) {
	dsn := pgtest.Start(t)
	a := open(t, dsn)
	ctx := context.Background()
	_, err := a.Pool().Exec(ctx, `INSERT INTO daemons (id, key_rev, lease_until) VALUES ('d_stuck', 0, clock_timestamp() + interval '700 milliseconds')`)
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, a.Broadcast(ctx, "flowyte_test", "x"))
	took := time.Since(start)
	assert.GreaterOrEqual(t, took, 500*time.Millisecond, "waited for the stuck daemon's lease")
	assert.Less(t, took, 10*time.Second)
	start = time.Now()
	require.NoError(t, a.Broadcast(ctx, "flowyte_test", "y"))
	assert.Less(t, time.Since(start), 500*time.Millisecond, "an expired lease is not waited for")
}

// TestBroadcastAcrossALostConnection: the watcher's connection is killed
// (with the messages it would have carried) just before a broadcast; when
// the broadcast has returned, that daemon either has handled the message
// or does not trust its cache until it has reset it.
func TestBroadcastAcrossALostConnection(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	c := watchCache(t, b, "flowyte_test")
	ctx := context.Background()
	for i := range 5 {
		id := fmt.Sprintf("agent-%d", i)
		c.put(id)
		var killed int
		require.NoError(t, a.Pool().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name LIKE 'flowyte-watch %'`).Scan(&killed))
		require.Equal(t, 1, killed, "round %d: the watcher's connection", i)
		require.NoError(t, a.Broadcast(ctx, "flowyte_test", id))
		if b.Leased() {
			assert.False(t, c.has(id), "round %d: trusted with the entry still cached", i)
		}
		require.Eventually(t, b.Leased, 10*time.Second, 5*time.Millisecond, "round %d: leases again", i)
		assert.False(t, c.has(id), "round %d: gone once leased again", i)
	}
	c.mu.Lock()
	assert.GreaterOrEqual(t, c.resets, 6, "a reset after every reconnection")
	c.mu.Unlock()
}
