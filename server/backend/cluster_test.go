package backend_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/backend"
	"github.com/flowyte/flowyte/server/store"
)

// localCluster is a Cluster for daemons in one process: one lock per
// agent, notifications dropped.
type localCluster struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (c *localCluster) LockAgent(_ context.Context, id string) (func(), error) {
	c.mu.Lock()
	l := c.locks[id]
	if l == nil {
		l = &sync.Mutex{}
		c.locks[id] = l
	}
	c.mu.Unlock()
	l.Lock()
	return l.Unlock, nil
}

func (c *localCluster) Notify(context.Context, string, string) error { return nil }

func (c *localCluster) Listen(ctx context.Context, _ string, _ func(string), _ func()) error {
	<-ctx.Done()
	return ctx.Err()
}

func (c *localCluster) Watch(ctx context.Context, _ func(string, string), _ func(), _ ...string) error {
	<-ctx.Done()
	return ctx.Err()
}

func (c *localCluster) Sync(context.Context) error { return nil }

func (c *localCluster) NotifyTx(context.Context, store.Tx, string, string) error { return nil }

// Leased is false: nothing is broadcast between these daemons, so neither
// may trust its row caches.
func (c *localCluster) Leased() bool { return false }

// TestInterruptedWriteRepairedOnNextTouch: two daemons share one database
// and one data directory. One dies in the middle of a publish (the tag and
// the pointer moved in git, no row written, its write mark left behind);
// the other's next write to that agent finishes the publish in the
// database first. A write that completes leaves no mark.
func TestInterruptedWriteRepairedOnNextTouch(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "flowyte.db"), store.WithSynchronous("OFF"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	cluster := &localCluster{locks: map[string]*sync.Mutex{}}
	daemon := func() (*backend.Backend, *repo.Store) {
		repos, err := repo.Open(repo.Options{Root: filepath.Join(dir, "agents"), Shared: true, Compile: func(files map[string][]byte) ([]byte, error) {
			res := compile.Compile(files)
			if !res.OK() {
				return nil, res.Errors
			}
			return res.JSON, nil
		}})
		require.NoError(t, err)
		return backend.New(backend.Options{Repos: repos, Store: st, Cluster: cluster, Log: zerolog.Nop()}), repos
	}
	a, reposA := daemon()
	b, reposB := daemon()
	w := &world{b: a, st: st}
	w.admin = w.principal(t, "a", "admin", backend.AllScopes...)
	ag := w.agentFromFixture(t)
	_, err = a.Publish(ctx, w.admin, ag.ID, backend.PublishInput{})
	require.NoError(t, err)
	interrupted, err := reposB.MarkWriting(ag.ID)
	require.NoError(t, err)
	require.False(t, interrupted, "completed writes clear their mark")
	require.NoError(t, reposB.ClearWriting(ag.ID))

	// Daemon A dies mid-publish of v2: its mark made, git moved, the
	// database did not.
	w.commit(t, ag.ID, backend.Change{Path: "knowledge/new.md", Content: []byte("# New\n\nfresh text\n")})
	_, err = reposA.MarkWriting(ag.ID)
	require.NoError(t, err)
	_, err = reposA.Publish(ctx, ag.ID, repo.PublishRequest{}, nil)
	require.NoError(t, err)
	page, err := b.Versions(ctx, w.admin, ag.ID, "", 10)
	require.NoError(t, err)
	require.Len(t, page.Data, 1, "the database has not seen v2 yet")

	// Daemon B's next write to the agent repairs it first.
	_, err = b.Commit(ctx, w.admin, ag.ID, backend.CommitInput{Changes: []backend.Change{{Path: "knowledge/more.md", Content: []byte("# More\n\ntext\n")}}})
	require.NoError(t, err)
	page, err = b.Versions(ctx, w.admin, ag.ID, "", 10)
	require.NoError(t, err)
	require.Len(t, page.Data, 2, "v2 recorded from its tag")
	assert.Equal(t, "v2", page.Published)
	interrupted, err = reposA.MarkWriting(ag.ID)
	require.NoError(t, err)
	assert.False(t, interrupted, "the repairing write cleared the mark")
	require.NoError(t, reposA.ClearWriting(ag.ID))
}
