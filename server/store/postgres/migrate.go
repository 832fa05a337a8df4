package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/flowyte/flowyte/server/store"
	"github.com/jackc/pgx/v5/pgconn"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrations returns the embedded migrations in file-name order.
func migrations() ([]store.Migration, error) { return store.ReadMigrations(migrationFS) }

// lockRow is the schema_migrations row every migration transaction locks
// first (SELECT ... FOR UPDATE), so daemons starting together apply each
// migration exactly once, with nothing engine-specific.
const lockRow = ""

// migrate applies every embedded migration not yet recorded in
// schema_migrations, each in its own transaction.
func (s *Store) migrate(ctx context.Context) error {
	// Concurrent CREATE TABLE IF NOT EXISTS can still collide in the
	// catalog (unique violation, duplicate table or type): the loser retries and
	// then finds the table.
	for attempt := 0; ; attempt++ {
		_, err := s.pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			name       TEXT PRIMARY KEY,
			applied_at BIGINT NOT NULL
		)`)
		if err == nil {
			_, err = s.pool.Exec(ctx,
				`INSERT INTO schema_migrations (name, applied_at) VALUES ($1, 0) ON CONFLICT DO NOTHING`, lockRow)
		}
		var pe *pgconn.PgError
		if err != nil && errors.As(err, &pe) && (pe.Code == codeUniqueViolation || pe.Code == "42P07" || pe.Code == "42710") && attempt < 5 {
			continue
		}
		if err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		break
	}
	ms, err := migrations()
	if err != nil {
		return err
	}
	for _, m := range ms {
		err := s.write(ctx, func(tx *pgTx) error {
			var lock string
			if err := tx.tx.QueryRow(ctx,
				`SELECT name FROM schema_migrations WHERE name = $1 FOR UPDATE`, lockRow).Scan(&lock); err != nil {
				return err
			}
			var n int
			if err := tx.tx.QueryRow(ctx,
				`SELECT count(*) FROM schema_migrations WHERE name = $1`, m.Name).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			// No arguments: the simple protocol, which runs a file of
			// several statements.
			if _, err := tx.tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.tx.Exec(ctx,
				`INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)`, m.Name, toNanos(time.Now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// AppliedMigrations returns the names of the applied migrations in order.
func (s *Store) AppliedMigrations(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT name FROM schema_migrations WHERE name <> $1 ORDER BY name`, lockRow)
	if err != nil {
		return nil, fmt.Errorf("applied migrations: %w", err)
	}
	names, err := collectStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("applied migrations: %w", err)
	}
	return names, nil
}
