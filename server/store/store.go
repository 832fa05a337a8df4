package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNotFound is returned when the requested row does not exist (or is
// deleted, or belongs to another workspace).
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned when a write violates a unique or primary key
// constraint, for example a duplicate version number or event dedupe key.
var ErrConflict = errors.New("store: conflict")

// ErrBadCursor is returned when a pagination cursor cannot be decoded.
var ErrBadCursor = errors.New("store: bad cursor")

// ErrUnavailable is returned when the database cannot be reached (a
// database server down or restarting); the caller may retry later.
var ErrUnavailable = errors.New("store: database unavailable")

// Store is the metadata database. It is safe for concurrent use.
type Store struct {
	// db is the reader pool. Single autocommit writes through it also work
	// (busy_timeout serialises them), but multi-statement writes belong in
	// Write.
	db *sql.DB
	// wdb is the writer pool: one connection, transactions BEGIN IMMEDIATE.
	wdb *sql.DB
	// keysMarker is rewritten on every key revocation (see KeysStamp).
	keysMarker string
	// marker is the keys marker last read, held open (KeysStamp).
	marker   atomic.Pointer[keysMarker]
	markerMu sync.Mutex
	// rdb caches prepared statements of db.
	rdb *stmtCache

	// writes is the group-commit queue of Write.
	writes *GroupCommit[*writeReq, writeResult]
}

// sqliteTx is the SQLite [Tx]: one write transaction (or one savepoint of a
// group commit), handed to the function given to [Store.Write].
type sqliteTx struct {
	tx *sql.Tx
	q  *stmtCache
}

// Option configures [Open].
type Option func(*options)

type options struct {
	synchronous string
	busyTimeout time.Duration
	readConns   int
}

// WithSynchronous sets PRAGMA synchronous (default "FULL"). Anything weaker
// can lose acknowledged writes on power loss; it exists for benchmarks.
func WithSynchronous(mode string) Option {
	return func(o *options) { o.synchronous = strings.ToUpper(mode) }
}

// WithBusyTimeout sets how long a connection waits for another writer's lock
// before failing with SQLITE_BUSY (default 5 s).
func WithBusyTimeout(d time.Duration) Option {
	return func(o *options) { o.busyTimeout = d }
}

// WithReadConns sets the size of the reader pool (default: max(4, 2×CPUs)).
func WithReadConns(n int) Option {
	return func(o *options) { o.readConns = n }
}

// Open opens (creating if missing) the database file at path, configures
// WAL, synchronous=FULL, busy_timeout and foreign keys on every connection,
// and applies pending migrations.
func Open(path string, opts ...Option) (*Store, error) {
	o := options{synchronous: "FULL", busyTimeout: 5 * time.Second, readConns: max(4, 2*runtime.NumCPU())}
	for _, opt := range opts {
		opt(&o)
	}
	o.readConns = max(o.readConns, 1)
	switch o.synchronous {
	case "OFF", "NORMAL", "FULL", "EXTRA":
	default:
		return nil, fmt.Errorf("open store: bad synchronous mode %q", o.synchronous)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	// The database holds webhook secrets and key hashes: owner-only,
	// whether or not the file or the directory existed before.
	if err := restrictFiles(path); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+o.synchronous+")")
	base := "file:" + (&url.URL{Path: path}).EscapedPath()

	wq := cloneValues(q)
	wq.Set("_txlock", "immediate")
	wdb, err := sql.Open("sqlite", base+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)

	db, err := sql.Open("sqlite", base+"?"+q.Encode())
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	db.SetMaxOpenConns(o.readConns)
	db.SetMaxIdleConns(o.readConns)

	s := &Store{db: db, wdb: wdb, rdb: newStmtDB(db), keysMarker: path + "-keys"}
	s.writes = NewGroupCommit(maxBatch, nil, s.runBatch)
	ctx := context.Background()
	// The writer connection switches the file to WAL first, so readers
	// never race on the journal mode change.
	var mode string
	if err := wdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		s.Close()
		return nil, fmt.Errorf("open store: journal_mode is %q, want wal", mode)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, nil
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// Close closes both connection pools.
func (s *Store) Close() error {
	if m := s.marker.Swap(nil); m != nil {
		m.f.Close()
	}
	s.rdb.close()
	return errors.Join(s.db.Close(), s.wdb.Close())
}

// DB returns the reader pool, for health checks and ad-hoc reads.
func (s *Store) DB() *sql.DB { return s.db }

// Ping reports an error if the database is not usable, for /readyz.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	return nil
}

// Write runs fn in a write transaction (BEGIN IMMEDIATE); fn's writes
// commit if it returns nil and are rolled back otherwise (a panic in fn
// rolls back too and is re-raised in the caller). Writes are serialised on
// a single connection, so fn must not call Write or any write method of
// Store (RevokeKey, TouchKey, BeginIdempotent, FinishIdempotent,
// AbandonIdempotent, PruneIdempotency): that would wait for itself. Use the
// methods of tx instead.
//
// Concurrent writers share commits (group commit): while one transaction
// commits, the writes that arrive queue up and then run together in one
// transaction, each inside its own SAVEPOINT so one failing fn undoes only
// its own writes. With synchronous=FULL that turns N fsyncs into one.
func (s *Store) Write(ctx context.Context, fn func(tx Tx) error) error {
	return s.write(ctx, func(tx *sqliteTx) error { return fn(tx) })
}

// write is Write for this package's own methods, which use the concrete
// transaction.
func (s *Store) write(ctx context.Context, fn func(tx *sqliteTx) error) error {
	res, ok := s.writes.Do(ctx, &writeReq{ctx: ctx, fn: fn})
	if !ok {
		return ctx.Err()
	}
	if res.panicked {
		panic(res.panicValue)
	}
	return res.err
}

// maxBatch bounds how many writes share one commit.
const maxBatch = 64

type writeReq struct {
	ctx context.Context
	fn  func(tx *sqliteTx) error
}

type writeResult struct {
	err        error
	panicked   bool
	panicValue any
}

// runFn runs one fn, turning a panic into a result.
func runFn(fn func(tx *sqliteTx) error, tx *sqliteTx) (res writeResult) {
	defer func() {
		if p := recover(); p != nil {
			res = writeResult{err: fmt.Errorf("write panicked: %v", p), panicked: true, panicValue: p}
		}
	}()
	return writeResult{err: fn(tx)}
}

// runBatch runs writes in one transaction and returns each one's outcome.
func (s *Store) runBatch(batch []*writeReq) (results []writeResult) {
	results = make([]writeResult, len(batch))
	// Not a caller's context: one caller going away must not roll back the
	// others' writes. Each fn still uses its own context for its statements.
	bg := context.Background()
	sqlTx, err := s.wdb.BeginTx(bg, nil)
	if err != nil {
		for i := range results {
			results[i].err = fmt.Errorf("begin: %w", wrapError(err))
		}
		return
	}
	tx := &sqliteTx{tx: sqlTx, q: newTxQuerier(sqlTx)}
	single := len(batch) == 1
	ok := 0
	for i, r := range batch {
		if single {
			results[i] = runFn(r.fn, tx)
		} else {
			if _, err := tx.q.ExecContext(bg, "SAVEPOINT w"); err != nil {
				results[i].err = fmt.Errorf("savepoint: %w", wrapError(err))
				continue
			}
			results[i] = runFn(r.fn, tx)
			if results[i].err != nil {
				if _, err := tx.q.ExecContext(bg, "ROLLBACK TO w"); err != nil {
					// The transaction is unusable: fail the whole batch.
					_ = sqlTx.Rollback()
					for j := range results {
						if results[j].err == nil {
							results[j].err = fmt.Errorf("rollback to savepoint: %w", wrapError(err))
						}
					}
					return
				}
			}
			if _, err := tx.q.ExecContext(bg, "RELEASE w"); err != nil {
				// The savepoint could not be released (a statement left
				// open, say): undo this fn's writes so what it is told
				// (failed) is what commits; if even that fails, the whole
				// batch fails.
				if results[i].err == nil {
					results[i].err = fmt.Errorf("release savepoint: %w", wrapError(err))
				}
				_, rbErr := tx.q.ExecContext(bg, "ROLLBACK TO w")
				_, relErr := tx.q.ExecContext(bg, "RELEASE w")
				if rbErr != nil || relErr != nil {
					_ = sqlTx.Rollback()
					for j := range results {
						if results[j].err == nil {
							results[j].err = fmt.Errorf("release savepoint: %w", wrapError(err))
						}
					}
					return
				}
			}
		}
		if results[i].err == nil {
			ok++
		}
	}
	if ok == 0 {
		_ = sqlTx.Rollback()
		return
	}
	if err := sqlTx.Commit(); err != nil {
		for i := range results {
			if results[i].err == nil {
				results[i].err = fmt.Errorf("commit: %w", wrapError(err))
			}
		}
	}
	return results
}

// wrapError maps driver errors to the package sentinels by result code:
// sql.ErrNoRows becomes ErrNotFound, unique and primary key violations
// become ErrConflict. The original error stays in the chain.
func wrapError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", ErrConflict, err)
		}
	}
	return err
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns prefix followed by 16 lowercase base32 characters encoding
// 10 bytes from crypto/rand, e.g. NewID("evt_").
func NewID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return prefix + idEncoding.EncodeToString(b[:])
}

// NewAgentID returns "agt_" followed by 20 lowercase base32 characters
// (100 random bits), the agent id format of the contract.
func NewAgentID() string {
	var b [13]byte
	_, _ = rand.Read(b[:])
	return "agt_" + idEncoding.EncodeToString(b[:])[:20]
}

// Time helpers: unix nanoseconds in, UTC out.

func toNanos(t time.Time) int64 { return t.UTC().UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func nullNanos(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: toNanos(*t), Valid: true}
}

func timePtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromNanos(n.Int64)
	return &t
}

// restrictFiles creates the database file 0600 if missing and makes it
// and its -wal, -shm and keys marker owner-only.
func restrictFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-keys"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
