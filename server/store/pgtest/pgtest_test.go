package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestStartGivesFreshDatabases(t *testing.T) {
	ctx := context.Background()
	a, b := Start(t), Start(t)
	require.NotEqual(t, a, b)
	ca, err := pgx.Connect(ctx, a)
	require.NoError(t, err)
	defer ca.Close(ctx)
	_, err = ca.Exec(ctx, `CREATE TABLE only_in_a (x int)`)
	require.NoError(t, err)

	cb, err := pgx.Connect(ctx, b)
	require.NoError(t, err)
	defer cb.Close(ctx)
	var n int
	require.NoError(t, cb.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'`).Scan(&n))
	assert.Equal(t, 0, n, "a table of one test's database is visible in another's")
}

func TestClusterRestart(t *testing.T) {
	if os.Getenv(EnvDatabase) != "" {
		t.Skip("uses a private cluster")
	}
	ctx := context.Background()
	c := NewCluster(t)
	require.NoError(t, c.Stop())
	_, err := pgx.Connect(ctx, c.URL("postgres"))
	require.Error(t, err, "connect to a stopped cluster")
	require.NoError(t, c.Start())
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var one int
	require.NoError(t, conn.QueryRow(ctx, `SELECT 1`).Scan(&one))
	assert.Equal(t, 1, one)
}

func TestNotInstalledSkips(t *testing.T) {
	var skipped bool
	t.Run("inner", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		skipOrFail(t, errNotInstalled)
	})
	assert.True(t, skipped, "a missing PostgreSQL must skip, not fail")
	assert.Contains(t, errNotInstalled.Error(), EnvDatabase, "the skip message says how to run the tests")
}
