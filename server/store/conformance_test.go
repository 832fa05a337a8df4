package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/store/storetest"
	"github.com/stretchr/testify/require"
)

// sqliteEngine adds what the suite needs to inspect a SQLite store.
type sqliteEngine struct {
	*store.Store
	path string
}

func openSQLite(t *testing.T, path string) *sqliteEngine {
	t.Helper()
	s, err := store.Open(path, store.WithSynchronous("NORMAL"))
	require.NoError(t, err, "Open")
	t.Cleanup(func() { _ = s.Close() })
	return &sqliteEngine{Store: s, path: path}
}

// Reopen implements storetest.Reopener.
func (e *sqliteEngine) Reopen(t *testing.T) storetest.Engine {
	require.NoError(t, e.Close(), "Close")
	return openSQLite(t, e.path)
}

// DeleteEvent implements storetest.EventDeleter.
func (e *sqliteEngine) DeleteEvent(ctx context.Context, id string) error {
	_, err := e.DB().ExecContext(ctx, `DELETE FROM events WHERE id = ?`, id)
	return err
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Engine {
		return openSQLite(t, filepath.Join(t.TempDir(), "flowyte.db"))
	})
}

func BenchmarkEngine(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) storetest.Engine {
		s, err := store.Open(filepath.Join(b.TempDir(), "flowyte.db"))
		require.NoError(b, err)
		b.Cleanup(func() { _ = s.Close() })
		return s
	})
}
