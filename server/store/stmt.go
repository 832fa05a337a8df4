package store

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStmts bounds the prepared-statement cache; queries past it run
// unprepared.
const maxCachedStmts = 256

// stmtDB prepares each distinct query once per pool and reuses it:
// SQLite's parser otherwise dominates a small query's cost.
type stmtDB struct {
	db    *sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func newStmtDB(db *sql.DB) *stmtDB { return &stmtDB{db: db, stmts: map[string]*sql.Stmt{}} }

// stmt returns the prepared statement for q, or nil when it cannot be
// cached (the caller then runs q directly).
func (c *stmtDB) stmt(ctx context.Context, q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[q]; ok {
		return st
	}
	if len(c.stmts) >= maxCachedStmts {
		return nil
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	c.stmts[q] = st
	return st
}

func (c *stmtDB) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.stmts {
		st.Close()
	}
	clear(c.stmts)
}

// ExecContext implements querier.
func (c *stmtDB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := c.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.db.ExecContext(ctx, q, args...)
}

// QueryContext implements querier.
func (c *stmtDB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := c.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.db.QueryContext(ctx, q, args...)
}

// QueryRowContext implements querier.
func (c *stmtDB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := c.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.db.QueryRowContext(ctx, q, args...)
}

// txQuerier runs queries inside one write transaction. Statements are
// prepared on the transaction and reused within it (a group commit runs
// many writes of the same shape in one transaction); they are not kept
// across transactions, because preparing on the one-connection writer pool
// while a transaction holds that connection would wait for itself.
type txQuerier struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func newTxQuerier(tx *sql.Tx) txQuerier {
	return txQuerier{tx: tx, stmts: map[string]*sql.Stmt{}}
}

func (t txQuerier) stmt(ctx context.Context, q string) *sql.Stmt {
	if st, ok := t.stmts[q]; ok {
		return st
	}
	if len(t.stmts) >= maxCachedStmts {
		return nil
	}
	st, err := t.tx.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	t.stmts[q] = st
	return st
}

// ExecContext implements querier. Statements inside a write run without
// the caller's cancellation: a cancelled statement aborts SQLite's whole
// transaction, which other writers share (group commit). Cancellation is
// checked before each write starts instead.
func (t txQuerier) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	ctx = context.WithoutCancel(ctx)
	if st := t.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, q, args...)
}

// QueryContext implements querier.
func (t txQuerier) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	ctx = context.WithoutCancel(ctx)
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, q, args...)
}

// QueryRowContext implements querier.
func (t txQuerier) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	ctx = context.WithoutCancel(ctx)
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q, args...)
}
