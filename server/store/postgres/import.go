package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/flowyte/flowyte/server/store"
)

// ErrNotEmpty is returned by ImportSQLite when the destination already
// holds data.
var ErrNotEmpty = errors.New("postgres: destination database is not empty")

// importTables lists every table ImportSQLite copies, parents before
// children (foreign keys). Both schemas name their columns alike.
var importTables = []string{
	"workspaces", "api_keys", "agents", "versions", "deployments", "idempotency", "events",
	"webhooks", "webhook_messages", "webhook_deliveries", "sessions", "session_messages",
	"channels", "outcome_counters", "test_runs", "dashboard_sessions",
}

// ImportSQLite copies every row of the SQLite store src into the empty
// PostgreSQL store dst, keeping ids, sequence numbers and times, in one
// transaction: the core of `flowyted migrate-db --from sqlite --to
// postgres://...`. Stop the daemon first (src must not change meanwhile).
// Counters move past the copied rows (event seq, deployment and delivery
// ids, the webhook fan-out cursor), so the daemon carries on where SQLite
// left off. It returns how many rows it copied per table. A dst holding
// any row is ErrNotEmpty.
func ImportSQLite(ctx context.Context, src *store.Store, dst *Store) (map[string]int64, error) {
	counts := map[string]int64{}
	err := dst.write(ctx, func(tx *pgTx) error {
		for _, t := range importTables {
			var any bool
			if err := tx.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+t+`)`).Scan(&any); err != nil {
				return fmt.Errorf("check %s: %w", t, err)
			}
			if any {
				return fmt.Errorf("%w: table %s has rows", ErrNotEmpty, t)
			}
		}
		for _, t := range importTables {
			n, err := copyTable(ctx, src.DB(), tx.tx, t)
			if err != nil {
				return fmt.Errorf("copy %s: %w", t, err)
			}
			counts[t] = n
		}
		var after int64
		if err := src.DB().QueryRowContext(ctx, `SELECT after_seq FROM webhook_fanout WHERE id = 1`).Scan(&after); err != nil {
			return fmt.Errorf("read fan-out cursor: %w", err)
		}
		// The SQLite sequences (AUTOINCREMENT) may be past the highest
		// remaining row (pruned rows): carry them over, so no id is reused.
		seqs := map[string]int64{}
		rows, err := src.DB().QueryContext(ctx, `SELECT name, seq FROM sqlite_sequence`)
		if err != nil {
			return fmt.Errorf("read sqlite sequences: %w", err)
		}
		for rows.Next() {
			var (
				name string
				seq  int64
			)
			if err := rows.Scan(&name, &seq); err != nil {
				rows.Close()
				return err
			}
			seqs[name] = seq
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, q := range []struct {
			sql string
			arg int64
		}{
			{`UPDATE webhook_fanout SET after_seq = $1 WHERE id = 1`, after},
			{`UPDATE event_seq SET last = GREATEST($1, (SELECT COALESCE(MAX(seq), 0) FROM events)) WHERE id = 1`, seqs["events"]},
			{`SELECT setval(pg_get_serial_sequence('deployments', 'id'),
			   GREATEST($1, (SELECT COALESCE(MAX(id), 0) FROM deployments), 1), $1 > 0 OR EXISTS (SELECT 1 FROM deployments))`,
				seqs["deployments"]},
			{`SELECT setval(pg_get_serial_sequence('webhook_deliveries', 'seq'),
			   GREATEST($1, (SELECT COALESCE(MAX(seq), 0) FROM webhook_deliveries), 1), $1 > 0 OR EXISTS (SELECT 1 FROM webhook_deliveries))`,
				seqs["webhook_deliveries"]},
			{`SELECT setval(pg_get_serial_sequence('test_runs', 'seq'),
			   GREATEST((SELECT COALESCE(MAX(seq), 0) FROM test_runs), 1), EXISTS (SELECT 1 FROM test_runs))`, 0},
			{`UPDATE key_revision SET rev = rev + 1 WHERE id = 1`, 0},
		} {
			args := []any{q.arg}
			if !strings.Contains(q.sql, "$1") {
				args = nil
			}
			if _, err := tx.tx.Exec(ctx, q.sql, args...); err != nil {
				return fmt.Errorf("move counters: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("import sqlite: %w", err)
	}
	return counts, nil
}

// copyTable streams table t from SQLite into PostgreSQL with COPY, taking
// the column list from the PostgreSQL schema.
func copyTable(ctx context.Context, src *sql.DB, dst detached, t string) (int64, error) {
	rows, err := dst.Query(ctx,
		`SELECT column_name FROM information_schema.columns
		 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, t)
	if err != nil {
		return 0, err
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	srows, err := src.QueryContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+t)
	if err != nil {
		return 0, err
	}
	defer srows.Close()
	return dst.CopyFrom(ctx, pgx.Identifier{t}, cols, &sqlRows{rows: srows, n: len(cols)})
}

// sqlRows adapts *sql.Rows to pgx.CopyFromSource.
type sqlRows struct {
	rows *sql.Rows
	n    int
	vals []any
	err  error
}

func (r *sqlRows) Next() bool {
	if !r.rows.Next() {
		r.err = r.rows.Err()
		return false
	}
	r.vals = make([]any, r.n)
	ptrs := make([]any, r.n)
	for i := range r.vals {
		ptrs[i] = &r.vals[i]
	}
	if err := r.rows.Scan(ptrs...); err != nil {
		r.err = err
		return false
	}
	return true
}

func (r *sqlRows) Values() ([]any, error) { return r.vals, nil }

func (r *sqlRows) Err() error { return r.err }
