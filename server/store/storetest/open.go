package storetest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/store/pgtest"
	"github.com/flowyte/flowyte/server/store/postgres"
)

// Open opens a fresh, empty store for a test of code above the store (the
// backend, the HTTP server), closed when tb ends. The engine follows
// FLOWYTE_TEST_DATABASE: unset, a SQLite file in a temp dir; "postgres", a
// database on a private cluster (pgtest); a postgres:// URL, a database on
// that server. A package using PostgreSQL this way should run its tests
// through pgtest.Main, so the private cluster stops at the end.
func Open(tb testing.TB) Engine {
	tb.Helper()
	if os.Getenv(pgtest.EnvDatabase) == "" {
		s, err := store.Open(filepath.Join(tb.TempDir(), "flowyte.db"))
		if err != nil {
			tb.Fatalf("open sqlite store: %v", err)
		}
		tb.Cleanup(func() { _ = s.Close() })
		return s
	}
	s, err := postgres.Open(context.Background(), pgtest.Start(tb))
	if err != nil {
		tb.Fatalf("open postgres store: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}
