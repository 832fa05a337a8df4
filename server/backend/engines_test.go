package backend_test

import (
	"github.com/flowyte/flowyte/server/backend"
	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/store/postgres"
)

// Both metadata engines implement the backend's Store.
var (
	_ backend.Store = (*store.Store)(nil)
	_ backend.Store = (*postgres.Store)(nil)
)
