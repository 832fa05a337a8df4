package backend_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/backend"
)

// BenchmarkVersionEngineLoad times what the first published session of a
// version costs a daemon that just started (empty caches, a repository
// store with a cold object cache, a packed repository): reading and
// decoding the version's artifact (and, from format 2 on, the knowledge
// blobs of its tree) and building its responder, plus the first message.
// Acme plus FLOWYTE_BENCH_ARTICLES articles (default 5,000).
func BenchmarkVersionEngineLoad(b *testing.B) {
	n := 5000
	if v, err := strconv.Atoi(os.Getenv("FLOWYTE_BENCH_ARTICLES")); err == nil && v > 0 {
		n = v
	}
	w := newSharedWorld(b)
	ctx := context.Background()
	a := w.publishedArticles(b, n)
	root := filepath.Dir(w.repos.Path(a.ID))
	b.ResetTimer()
	for b.Loop() {
		repos, err := repo.Open(repo.Options{Root: root, Shared: true, MaxFiles: 20000, MaxDraftBytes: 256 << 20})
		require.NoError(b, err)
		fresh := backend.New(backend.Options{Repos: repos, Store: w.st, Log: zerolog.Nop()})
		s, err := fresh.CreateSession(ctx, w.admin, backend.SessionInput{AgentID: a.ID})
		require.NoError(b, err)
		_, err = fresh.PostMessage(ctx, w.admin, s.ID, "How long does shipping take?")
		require.NoError(b, err)
		b.StopTimer()
		require.NoError(b, repos.Close())
		b.StartTimer()
	}
}
