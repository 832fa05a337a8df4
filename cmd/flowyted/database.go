package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/flowyte/flowyte/server/backend"
	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/store/postgres"
	"github.com/flowyte/flowyte/server/webhook"
)

// metaStore is a metadata engine as the daemon and the CLI use it.
type metaStore interface {
	backend.Store
	webhook.Store
	Close() error
	CountKeys(ctx context.Context) (int, error)
}

var (
	_ metaStore = (*store.Store)(nil)
	_ metaStore = (*postgres.Store)(nil)
)

// isPostgres reports whether a --database value names PostgreSQL.
func isPostgres(database string) bool {
	return strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://")
}

// checkDatabase validates a --database value.
func checkDatabase(database string) error {
	if database == "" || database == "sqlite" || isPostgres(database) {
		return nil
	}
	return usageError{fmt.Sprintf("--database must be sqlite or a postgres:// URL, got %q", redactDSN(database))}
}

// openStore opens the metadata database: SQLite under the data dir, or
// PostgreSQL (which also coordinates several daemons: the Cluster).
func openStore(ctx context.Context, database, data string) (metaStore, backend.Cluster, error) {
	if isPostgres(database) {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		st, err := postgres.Open(octx, database)
		if err != nil {
			return nil, nil, fmt.Errorf("database %s: %w", redactDSN(database), err)
		}
		return st, st, nil
	}
	st, err := store.Open(filepath.Join(data, "flowyte.db"))
	if err != nil {
		return nil, nil, err
	}
	return st, nil, nil
}

// redactDSN hides a password in a database URL (for messages and logs).
func redactDSN(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return dsn
	}
	userinfo := dsn[scheme+3 : at]
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		return dsn[:scheme+3] + user + ":xxxxx" + dsn[at:]
	}
	return dsn
}

// migrateDB runs `flowyted migrate-db --data DIR --from sqlite --to
// postgres://...`: it copies every row of the data dir's SQLite database
// into an empty PostgreSQL database, keeping ids. Stop the daemon first.
func migrateDB(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate-db", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defData := getenv("FLOWYTE_DATA")
	if defData == "" {
		defData = "./data"
	}
	data := fs.String("data", defData, "data directory holding flowyte.db")
	from := fs.String("from", "sqlite", "source engine (sqlite)")
	to := fs.String("to", "", "destination: a postgres:// URL of an empty database")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *from != "sqlite" {
		return usageError{"--from must be sqlite"}
	}
	if !isPostgres(*to) {
		return usageError{"--to must be a postgres:// URL"}
	}
	src, err := store.Open(filepath.Join(*data, "flowyte.db"))
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, *to)
	if err != nil {
		return fmt.Errorf("database %s: %w", redactDSN(*to), err)
	}
	defer dst.Close()
	counts, err := postgres.ImportSQLite(ctx, src, dst)
	if errors.Is(err, postgres.ErrNotEmpty) {
		return fmt.Errorf("%s is not empty: migrate into a fresh database", redactDSN(*to))
	}
	if err != nil {
		return err
	}
	total := int64(0)
	for _, n := range counts {
		total += n
	}
	fmt.Fprintf(stdout, "copied %d rows from %s into %s; start the daemons with --database %s\n",
		total, filepath.Join(*data, "flowyte.db"), redactDSN(*to), redactDSN(*to))
	return nil
}
