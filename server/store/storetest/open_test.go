package storetest_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/store/pgtest"
	"github.com/flowyte/flowyte/server/store/postgres"
	"github.com/flowyte/flowyte/server/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestOpenFollowsEnvironment(t *testing.T) {
	for _, c := range []struct {
		env      string
		postgres bool
	}{
		{"", false},
		{"postgres", true},
	} {
		t.Run("env="+c.env, func(t *testing.T) {
			t.Setenv(pgtest.EnvDatabase, c.env)
			e := storetest.Open(t)
			require.NoError(t, e.Ping(context.Background()))
			_, isPG := e.(*postgres.Store)
			_, isSQLite := e.(*store.Store)
			assert.Equal(t, c.postgres, isPG, "postgres engine")
			assert.Equal(t, !c.postgres, isSQLite, "sqlite engine")
		})
	}
}
