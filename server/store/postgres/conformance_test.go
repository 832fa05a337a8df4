package postgres_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/store/pgtest"
	"github.com/flowyte/flowyte/server/store/postgres"
	"github.com/flowyte/flowyte/server/store/storetest"
)

// Both engines implement the whole method set.
var (
	_ storetest.Engine = (*postgres.Store)(nil)
	_ storetest.Engine = (*store.Store)(nil)
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// pgEngine adds what the suite needs to inspect a PostgreSQL store.
type pgEngine struct {
	*postgres.Store
	dsn string
}

func openPG(t *testing.T, dsn string) *pgEngine {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn)
	require.NoError(t, err, "Open")
	t.Cleanup(func() { _ = s.Close() })
	return &pgEngine{Store: s, dsn: dsn}
}

// Reopen implements storetest.Reopener.
func (e *pgEngine) Reopen(t *testing.T) storetest.Engine {
	require.NoError(t, e.Close(), "Close")
	return openPG(t, e.dsn)
}

// DeleteEvent implements storetest.EventDeleter.
func (e *pgEngine) DeleteEvent(ctx context.Context, id string) error {
	_, err := e.Pool().Exec(ctx, `DELETE FROM events WHERE id = $1`, id)
	return err
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Engine { return openPG(t, pgtest.Start(t)) })
}

func BenchmarkEngine(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) storetest.Engine {
		s, err := postgres.Open(context.Background(), pgtest.Start(b))
		require.NoError(b, err)
		b.Cleanup(func() { _ = s.Close() })
		return s
	})
}
