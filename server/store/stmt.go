package store

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStmts bounds a prepared-statement cache; queries past it run
// unprepared.
const maxCachedStmts = 256

// preparer is what both *sql.DB and *sql.Tx offer.
type preparer interface {
	querier
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// stmtCache prepares each distinct query once and reuses it: SQLite's
// parser otherwise dominates a small query's cost. Over the reader pool
// (newStmtDB) statements live as long as the Store. Over one write
// transaction (newTxQuerier) they live as long as the transaction — a
// group commit runs many writes of one shape in it — and statements run
// without the caller's cancellation: a cancelled statement aborts SQLite's
// whole transaction, which other writers share. (Writer statements cannot
// outlive the transaction: preparing on the one-connection writer pool
// while a transaction holds that connection would wait for itself.)
type stmtCache struct {
	p      preparer
	detach bool // run statements with context.WithoutCancel
	mu     sync.Mutex
	stmts  map[string]*sql.Stmt
}

var _ querier = (*stmtCache)(nil)

func newStmtDB(db *sql.DB) *stmtCache { return &stmtCache{p: db, stmts: map[string]*sql.Stmt{}} }

func newTxQuerier(tx *sql.Tx) *stmtCache {
	return &stmtCache{p: tx, detach: true, stmts: map[string]*sql.Stmt{}}
}

// stmt returns the prepared statement for q, or nil when it cannot be
// cached (the caller then runs q directly).
func (c *stmtCache) stmt(ctx context.Context, q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[q]; ok {
		return st
	}
	if len(c.stmts) >= maxCachedStmts {
		return nil
	}
	st, err := c.p.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	c.stmts[q] = st
	return st
}

func (c *stmtCache) ctx(ctx context.Context) context.Context {
	if c.detach {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.stmts {
		st.Close()
	}
	clear(c.stmts)
}

// ExecContext implements querier.
func (c *stmtCache) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	ctx = c.ctx(ctx)
	if st := c.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.p.ExecContext(ctx, q, args...)
}

// QueryContext implements querier.
func (c *stmtCache) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	ctx = c.ctx(ctx)
	if st := c.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.p.QueryContext(ctx, q, args...)
}

// QueryRowContext implements querier.
func (c *stmtCache) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	ctx = c.ctx(ctx)
	if st := c.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.p.QueryRowContext(ctx, q, args...)
}
