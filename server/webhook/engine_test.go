package webhook

import (
	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/store/postgres"
)

// Both metadata engines can feed a dispatcher.
var (
	_ Store = (*store.Store)(nil)
	_ Store = (*postgres.Store)(nil)
)
