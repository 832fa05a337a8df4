package postgres_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/store/pgtest"
	"github.com/flowyte/flowyte/server/store/postgres"
)

var t0 = time.Date(2026, 11, 28, 9, 30, 0, 123456789, time.UTC)

// open opens a store on dsn, closed when t ends.
func open(t *testing.T, dsn string, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, opts...)
	require.NoError(t, err, "Open")
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustWorkspace(t *testing.T, s *postgres.Store, name string) store.Workspace {
	t.Helper()
	var w store.Workspace
	require.NoError(t, s.Write(context.Background(), func(tx store.Tx) error {
		var err error
		w, err = tx.EnsureWorkspace(context.Background(), name, t0)
		return err
	}))
	return w
}

// TestTwoDaemonsMigrateOnce opens several stores on one fresh database at
// once, as daemons starting together do: each migration applies once.
func TestTwoDaemonsMigrateOnce(t *testing.T) {
	dsn := pgtest.Start(t)
	var wg sync.WaitGroup
	stores := make([]*postgres.Store, 4)
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = postgres.Open(context.Background(), dsn) })
	}
	wg.Wait()
	for i, s := range stores {
		require.NoError(t, errs[i], "Open %d", i)
		t.Cleanup(func() { _ = s.Close() })
	}
	got, err := stores[0].AppliedMigrations(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, got)
	assert.Equal(t, "0001_init.sql", got[0])
	seen := map[string]bool{}
	for _, m := range got {
		assert.False(t, seen[m], "migration %s applied twice", m)
		seen[m] = true
	}
}

// TestKeysStampAcrossDaemons: a key revoked through one daemon changes the
// stamp every other daemon reads at its next request.
func TestKeysStampAcrossDaemons(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := context.Background()
	require.NoError(t, a.Write(ctx, func(tx store.Tx) error {
		ws, err := tx.EnsureWorkspace(ctx, "w", t0)
		if err != nil {
			return err
		}
		return tx.CreateKey(ctx, store.Key{ID: "key_1", WorkspaceID: ws.ID, Name: "k", CreatedAt: t0}, []byte("h1"))
	}))
	before := b.KeysStamp()
	assert.Equal(t, before, a.KeysStamp(), "daemons disagree on the stamp")
	require.NoError(t, a.RevokeKey(ctx, "key_1", t0))
	after := b.KeysStamp()
	assert.NotEqual(t, before, after, "a revocation on daemon a left daemon b's stamp unchanged")
	k, err := b.KeyByHash(ctx, []byte("h1"))
	require.NoError(t, err)
	assert.NotNil(t, k.RevokedAt, "daemon b sees the key unrevoked")
	// A failed revocation does not move the stamp.
	require.ErrorIs(t, a.RevokeKey(ctx, "key_missing", t0), store.ErrNotFound)
	assert.Equal(t, after, b.KeysStamp())
}

// TestEventsCommitInSeqOrder: an event transaction that takes its number
// after another waits for it to commit, so the fan-out cursor can never
// pass a smaller seq that commits later.
func TestEventsCommitInSeqOrder(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := context.Background()
	insert := func(tx store.Tx, id string) error {
		return tx.InsertEvent(ctx, store.Event{ID: id, WorkspaceID: "ws", Type: "draft.updated", Payload: []byte(`{}`), CreatedAt: t0})
	}
	inA, releaseA := make(chan struct{}), make(chan struct{})
	doneA := make(chan error, 1)
	go func() {
		doneA <- a.Write(ctx, func(tx store.Tx) error {
			if err := insert(tx, "evt_a"); err != nil {
				return err
			}
			close(inA)
			<-releaseA
			return nil
		})
	}()
	<-inA
	var doneB atomic.Bool
	errB := make(chan error, 1)
	go func() {
		errB <- b.Write(ctx, func(tx store.Tx) error { return insert(tx, "evt_b") })
		doneB.Store(true)
	}()
	time.Sleep(300 * time.Millisecond)
	assert.False(t, doneB.Load(), "a later event committed while an earlier one was open")
	// Fan-out meanwhile sees no event (a's is uncommitted) and keeps its cursor.
	fo, err := b.FanOutWebhookEvents(ctx, t0, 10)
	require.NoError(t, err)
	assert.Equal(t, 0, fo.Events)
	close(releaseA)
	require.NoError(t, <-doneA)
	require.NoError(t, <-errB)
	ea, err := a.EventByID(ctx, "evt_a")
	require.NoError(t, err)
	eb, err := a.EventByID(ctx, "evt_b")
	require.NoError(t, err)
	assert.Less(t, ea.Seq, eb.Seq)
}

func TestLockAgentAcrossDaemons(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := context.Background()

	unlock, err := a.LockAgent(ctx, "agt_1")
	require.NoError(t, err)
	_, ok, err := b.TryLockAgent(ctx, "agt_1")
	require.NoError(t, err)
	assert.False(t, ok, "daemon b took a lock daemon a holds")
	other, ok, err := b.TryLockAgent(ctx, "agt_2")
	require.NoError(t, err)
	require.True(t, ok, "another agent's lock is independent")
	other()

	// A waiter gives up with its context.
	wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = b.LockAgent(wctx, "agt_1")
	require.Error(t, err, "LockAgent returned while the lock was held")
	assert.True(t, errors.Is(err, context.DeadlineExceeded) || wctx.Err() != nil, "err=%v", err)

	// A waiter gets the lock once it is released.
	got := make(chan func(), 1)
	go func() {
		u, err := b.LockAgent(ctx, "agt_1")
		assert.NoError(t, err)
		got <- u
	}()
	select {
	case <-got:
		require.FailNow(t, "b got the lock while a held it")
	case <-time.After(200 * time.Millisecond):
	}
	unlock()
	select {
	case u := <-got:
		require.NotNil(t, u)
		u()
	case <-time.After(10 * time.Second):
		require.FailNow(t, "b did not get the lock after a released it")
	}
}

// TestLockAgentReleasedWhenDaemonDies: a daemon dying with the lock held
// (its connections closed) frees the lock for the others.
func TestLockAgentReleasedWhenDaemonDies(t *testing.T) {
	dsn := pgtest.Start(t)
	b := open(t, dsn)
	ctx := context.Background()
	a, err := postgres.Open(ctx, dsn)
	require.NoError(t, err)
	_, err = a.LockAgent(ctx, "agt_1")
	require.NoError(t, err)
	// Kill every backend of a's lock pool, as a SIGKILL of the daemon
	// would close its sockets.
	_, err = b.Pool().Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid()`)
	require.NoError(t, err)
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	unlock, err := b.LockAgent(lctx, "agt_1")
	require.NoError(t, err, "lock of a dead daemon not released")
	unlock()
}

func TestWrapErrorByCode(t *testing.T) {
	dsn := pgtest.Start(t)
	s := open(t, dsn)
	ctx := context.Background()
	mustWorkspace(t, s, "w")
	// A unique violation outside the ON CONFLICT paths maps by SQLSTATE.
	err := s.Write(ctx, func(tx store.Tx) error {
		return tx.CreateKey(ctx, store.Key{ID: "key_1", WorkspaceID: mustWorkspace(t, s, "w").ID, CreatedAt: t0}, []byte("h"))
	})
	require.NoError(t, err)
	_, err = s.Pool().Exec(ctx, `INSERT INTO workspaces (id, name, created_at) VALUES ('ws_dup', 'w', 0)`)
	require.Error(t, err)
	err = s.Write(ctx, func(tx store.Tx) error {
		return tx.CreateKey(ctx, store.Key{ID: "key_2", WorkspaceID: mustWorkspace(t, s, "w").ID, CreatedAt: t0}, []byte("h"))
	})
	assert.ErrorIs(t, err, store.ErrConflict, "duplicate key hash")
	_, err = s.Agent(ctx, "ws", "agt_missing")
	assert.ErrorIs(t, err, store.ErrNotFound)
	// A foreign key violation is not a conflict.
	err = s.Write(ctx, func(tx store.Tx) error {
		return tx.CreateAgent(ctx, store.Agent{ID: "agt_x", WorkspaceID: "ws_missing", CreatedAt: t0, DraftUpdatedAt: t0})
	})
	require.Error(t, err)
	assert.NotErrorIs(t, err, store.ErrConflict)
}

func TestPoolSettingsFromURL(t *testing.T) {
	dsn := pgtest.Start(t)
	s := open(t, dsn+"&pool_max_conns=3&pool_max_conn_lifetime=10m")
	cfg := s.Pool().Config()
	assert.EqualValues(t, 3, cfg.MaxConns)
	assert.Equal(t, 10*time.Minute, cfg.MaxConnLifetime)
	s2 := open(t, dsn, postgres.WithMaxConns(7), postgres.WithConnLifetime(time.Minute))
	assert.EqualValues(t, 7, s2.Pool().Config().MaxConns)
	assert.Equal(t, time.Minute, s2.Pool().Config().MaxConnLifetime)
	s3 := open(t, dsn)
	assert.GreaterOrEqual(t, s3.Pool().Config().MaxConns, int32(16), "default pool size")
	_, err := postgres.Open(context.Background(), dsn+"&pool_max_conns=zero")
	assert.Error(t, err, "a bad pool setting is refused")
}

// TestSurvivesDatabaseRestart: Ping fails while the server is down and
// recovers by itself once it is back, without reopening the store.
func TestSurvivesDatabaseRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a cluster")
	}
	c := pgtest.NewCluster(t)
	dsn := pgtest.CreateDatabase(t, c.URL("postgres"))
	s := open(t, dsn)
	ctx := context.Background()
	mustWorkspace(t, s, "before")
	require.NoError(t, c.Stop())
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	assert.Error(t, s.Ping(pctx), "Ping with the server down")
	require.NoError(t, c.Start())
	require.Eventually(t, func() bool { return s.Ping(ctx) == nil }, 10*time.Second, 50*time.Millisecond,
		"Ping did not recover after the server came back")
	mustWorkspace(t, s, "after")
	_, err := s.WorkspaceByName(ctx, "before")
	assert.NoError(t, err)
}

// restartableWithAgent opens a store on a private cluster the test may
// stop and start, holding workspace w and its agent agt_a.
func restartableWithAgent(t *testing.T) (*pgtest.Cluster, *postgres.Store, store.Workspace) {
	t.Helper()
	if testing.Short() {
		t.Skip("restarts a cluster")
	}
	c := pgtest.NewCluster(t)
	s := open(t, pgtest.CreateDatabase(t, c.URL("postgres")))
	ctx := context.Background()
	ws := mustWorkspace(t, s, "w")
	require.NoError(t, s.Write(ctx, func(tx store.Tx) error {
		return tx.CreateAgent(ctx, store.Agent{ID: "agt_a", WorkspaceID: ws.ID, Name: "a", CreatedAt: t0, DraftUpdatedAt: t0})
	}))
	return c, s, ws
}

// TestSessionBatchWithDatabaseDown: while the server is down, every
// caller of a shared session batch is told it failed (unavailable), none
// of those sessions exists once the server is back, and creations work
// again without reopening the store.
func TestSessionBatchWithDatabaseDown(t *testing.T) {
	c, s, ws := restartableWithAgent(t)
	ctx := context.Background()
	newSession := func() (store.Session, *store.OutcomeDelta) {
		return store.Session{ID: store.NewSessionID(), WorkspaceID: ws.ID, AgentID: "agt_a", Channel: "chat", Version: 1, Billable: true, CreatedAt: t0},
			&store.OutcomeDelta{AgentID: "agt_a", Version: 1, At: t0, Sessions: 1}
	}
	require.NoError(t, c.Stop())
	const n = 20
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ses, d := newSession()
			ids[i] = ses.ID
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			errs[i] = s.CreateSessionCounted(cctx, ses, d)
		})
	}
	wg.Wait()
	for i, err := range errs {
		assert.ErrorIs(t, err, store.ErrUnavailable, "creation %d with the server down", i)
	}
	require.NoError(t, c.Start())
	require.Eventually(t, func() bool { return s.Ping(ctx) == nil }, 10*time.Second, 50*time.Millisecond)
	for _, id := range ids {
		_, err := s.Session(ctx, ws.ID, id)
		assert.ErrorIs(t, err, store.ErrNotFound, "a failed creation stores nothing")
	}
	ses, d := newSession()
	require.NoError(t, s.CreateSessionCounted(ctx, ses, d), "creation after the server came back")
	out, err := s.Outcomes(ctx, "agt_a", []int{1}, time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, int64(1), out[0].Sessions, "only the creation that succeeded is counted")
}

// TestSessionCreationRightAfterRestart: creations on a pool whose
// connections died with the server succeed once it is back (a dead
// connection is retried on a fresh one), each stored and counted once.
func TestSessionCreationRightAfterRestart(t *testing.T) {
	c, s, ws := restartableWithAgent(t)
	ctx := context.Background()
	create := func(n int) []error {
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				ses := store.Session{ID: store.NewSessionID(), WorkspaceID: ws.ID, AgentID: "agt_a", Channel: "chat", Version: 1, Billable: true, CreatedAt: t0}
				errs[i] = s.CreateSessionCounted(ctx, ses, &store.OutcomeDelta{AgentID: "agt_a", Version: 1, At: t0, Sessions: 1})
			})
		}
		wg.Wait()
		return errs
	}
	for _, err := range create(50) { // fills the pool with connections
		require.NoError(t, err)
	}
	require.NoError(t, c.Stop())
	require.NoError(t, c.Start())
	for i, err := range create(50) {
		assert.NoError(t, err, "creation %d right after the restart", i)
	}
	out, err := s.Outcomes(ctx, "agt_a", []int{1}, time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, int64(100), out[0].Sessions, "every session counted once")
	u, err := s.Usage(ctx, ws.ID, "agt_a", time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, 100, u.ByVersion[1])
}

// TestKeysStampSharedReadsStayExact: with KeysStamp reads in flight all
// the time (shared among concurrent callers), a call made after a
// revocation returned always sees it.
func TestKeysStampSharedReadsStayExact(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := context.Background()
	const keys = 30
	require.NoError(t, a.Write(ctx, func(tx store.Tx) error {
		ws, err := tx.EnsureWorkspace(ctx, "w", t0)
		if err != nil {
			return err
		}
		for i := range keys {
			id := "key_" + string(rune('a'+i))
			if err := tx.CreateKey(ctx, store.Key{ID: id, WorkspaceID: ws.ID, Name: id, CreatedAt: t0}, []byte(id)); err != nil {
				return err
			}
		}
		return nil
	}))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls atomic.Int64
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					_ = b.KeysStamp()
					calls.Add(1)
				}
			}
		})
	}
	for i := range keys {
		before := b.KeysStamp()
		require.NoError(t, a.RevokeKey(ctx, "key_"+string(rune('a'+i)), t0))
		assert.NotEqual(t, before, b.KeysStamp(), "revocation %d unseen by a call made after it", i)
	}
	close(stop)
	wg.Wait()
	assert.Positive(t, calls.Load(), "the concurrent callers ran")
}
