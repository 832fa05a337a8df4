package postgres

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flowyte/flowyte/server/store"
)

// Store is the PostgreSQL metadata database. It is safe for concurrent use,
// by several processes too.
type Store struct {
	pool *pgxpool.Pool
	// locks holds the connections of agent locks (LockAgent), apart from
	// pool so lock holders can never exhaust the connections their own
	// writes need.
	locks *pgxpool.Pool
	// sessions is the group-commit queue of CreateSessionCounted.
	sessions *store.GroupCommit[*sessionReq, error]
	// stamps shares KeysStamp reads among concurrent callers.
	stamps stampReads
	// watch answers KeysStamp from memory while WatchKeys holds a lease.
	watch watchState
}

// Option configures [Open].
type Option func(*config)

type config struct {
	pool      *pgxpool.Config
	lockConns int32
}

// WithMaxConns sets the pool size (default: the URL's pool_max_conns, else
// max(16, 4×CPUs)). The URL also takes pool_min_conns,
// pool_max_conn_lifetime, pool_max_conn_idle_time and
// pool_health_check_period.
func WithMaxConns(n int32) Option {
	return func(c *config) { c.pool.MaxConns = max(n, 1) }
}

// WithLockConns bounds how many agent locks (LockAgent) this process holds
// at once, each on its own connection (default 16); more wait.
func WithLockConns(n int32) Option {
	return func(c *config) { c.lockConns = max(n, 1) }
}

// WithConnLifetime sets how long a pooled connection lives before it is
// replaced (default 1 h).
func WithConnLifetime(d time.Duration) Option {
	return func(c *config) { c.pool.MaxConnLifetime = d }
}

// Open connects to the database at dsn (a postgres:// URL or key=value
// string, pool settings included), checks that it answers, and applies
// pending migrations.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// pgxpool's default (max(4, CPUs)) starves a daemon whose
		// requests each hold a connection for a round trip or two.
		pcfg.MaxConns = int32(max(16, 4*runtime.NumCPU()))
	}
	cfg := config{pool: pcfg, lockConns: 16}
	for _, o := range opts {
		o(&cfg)
	}
	lcfg := pcfg.Copy()
	lcfg.MaxConns = cfg.lockConns
	lcfg.MinConns = 0
	s := &Store{}
	s.sessions = s.newSessionQueue()
	s.watch.init()
	if s.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if s.locks, err = pgxpool.NewWithConfig(ctx, lcfg); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() error {
	s.locks.Close()
	s.pool.Close()
	return nil
}

// Pool returns the connection pool, for health checks and ad-hoc reads.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping reports an error if the database is not usable, for /readyz.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	err := retryStale(s.pool, func() error { return s.pool.QueryRow(ctx, `SELECT 1`).Scan(&one) })
	if err != nil {
		return fmt.Errorf("ping store: %w", wrapError(err))
	}
	return nil
}

// Write runs fn in one transaction; fn's writes commit if it returns nil and
// are rolled back otherwise (a panic in fn rolls back too and is re-raised).
// ctx bounds the wait for a connection; once the transaction has begun, its
// statements ignore cancellation (as on SQLite), so a caller going away (a
// client hanging up) never rolls back a write that git already made. fn may
// call Store methods, but not ones that wait for rows fn has locked.
func (s *Store) Write(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.write(ctx, func(tx *pgTx) error { return fn(tx) })
}

func (s *Store) write(ctx context.Context, fn func(tx *pgTx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	var ptx pgx.Tx
	err = retryStale(s.pool, func() (err error) {
		ptx, err = s.pool.Begin(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("begin: %w", wrapError(err))
	}
	bg := context.WithoutCancel(ctx)
	defer func() {
		if p := recover(); p != nil {
			_ = ptx.Rollback(bg)
			panic(p)
		}
	}()
	if err := fn(&pgTx{tx: detached{ptx}}); err != nil {
		_ = ptx.Rollback(bg)
		return err
	}
	if err := ptx.Commit(bg); err != nil {
		return fmt.Errorf("commit: %w", wrapError(err))
	}
	return nil
}

// pgTx is the PostgreSQL [store.Tx].
type pgTx struct {
	tx detached
}

var _ store.Tx = (*pgTx)(nil)

// detached runs a transaction's statements without their context's
// cancellation: a cancelled statement would abort the whole transaction.
type detached struct {
	tx pgx.Tx
}

func (d detached) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return d.tx.Exec(context.WithoutCancel(ctx), sql, args...)
}

func (d detached) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return d.tx.Query(context.WithoutCancel(ctx), sql, args...)
}

func (d detached) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return d.tx.QueryRow(context.WithoutCancel(ctx), sql, args...)
}

func (d detached) CopyFrom(ctx context.Context, t pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	return d.tx.CopyFrom(context.WithoutCancel(ctx), t, cols, src)
}

// querier is what both the pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// SQLSTATE codes mapped to sentinels.
const (
	codeUniqueViolation = "23505"
)

// wrapError maps driver errors to the store sentinels by SQLSTATE code:
// no rows becomes ErrNotFound, a unique violation ErrConflict. The original
// error stays in the chain.
func wrapError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == codeUniqueViolation {
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	}
	if unreachable(err) && !errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// mustAffect returns ErrNotFound when a statement touched no row.
func mustAffect(tag pgconn.CommandTag) error {
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// conflictUnlessAffected returns ErrConflict when an
// INSERT ... ON CONFLICT DO NOTHING inserted nothing.
func conflictUnlessAffected(tag pgconn.CommandTag) error {
	if tag.RowsAffected() == 0 {
		return store.ErrConflict
	}
	return nil
}

// Time helpers: unix nanoseconds in, UTC out.

func toNanos(t time.Time) int64 { return t.UTC().UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func nullNanos(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	n := toNanos(*t)
	return &n
}

func timePtr(n *int64) *time.Time {
	if n == nil {
		return nil
	}
	t := fromNanos(*n)
	return &t
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// KeysStamp identifies the current state of key revocations across every
// daemon: the revision counter RevokeKey bumps. While WatchKeys holds a
// lease it is answered from memory (see watch.go); otherwise it is one
// primary-key read. When
// the database cannot be read it returns a fresh value each time, so
// callers drop their caches rather than trust them.
//
// Concurrent callers share reads, without any caller getting a value read
// before it asked: a caller joins the next read to start, never one
// already in flight, so a revocation committed before the call is always
// seen. At most one read is in flight per store.
func (s *Store) KeysStamp() string {
	if s.watch.leased() {
		return s.watch.key.Load().stamp
	}
	q := &s.stamps
	q.mu.Lock()
	var r *stampRead
	switch {
	case q.running == nil:
		r = newStampRead()
		q.running = r
		q.mu.Unlock()
	case q.next == nil:
		// This caller reads next, once the read in flight ends.
		r = newStampRead()
		q.next = r
		q.mu.Unlock()
		<-r.start
	default:
		r = q.next
		q.mu.Unlock()
		<-r.done
		return r.value()
	}
	r.rev, r.err = s.readKeysStamp()
	q.mu.Lock()
	q.running, q.next = q.next, nil
	if q.running != nil {
		close(q.running.start)
	}
	q.mu.Unlock()
	close(r.done)
	return r.value()
}

// stampReads is the queue of KeysStamp reads.
type stampReads struct {
	mu      sync.Mutex
	running *stampRead // the read in flight
	next    *stampRead // the read to start when it ends, if anyone waits for it
}

// stampRead is one read of the key revision, shared by its callers.
type stampRead struct {
	start chan struct{} // closed when the read may start (for a next read)
	done  chan struct{} // closed when rev and err are set
	rev   int64
	err   error
}

func newStampRead() *stampRead {
	return &stampRead{start: make(chan struct{}), done: make(chan struct{})}
}

func (r *stampRead) value() string {
	if r.err != nil {
		return "unknown " + store.NewID("")
	}
	return strconv.FormatInt(r.rev, 10)
}

func (s *Store) readKeysStamp() (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.watch.reads.Add(1)
	var rev int64
	err := s.pool.QueryRow(ctx, `SELECT rev FROM key_revision WHERE id = 1`).Scan(&rev)
	return rev, err
}
