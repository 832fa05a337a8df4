package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/store/pgtest"
)

type notifier interface {
	Notify(ctx context.Context, channel, payload string) error
}

// listen runs Listen in the background and returns its messages, with
// "<reset>" for every reset.
func listen(t *testing.T, l interface {
	Listen(context.Context, string, func(string), func()) error
}, channel string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- l.Listen(ctx, channel, func(p string) { got <- p }, func() { got <- "<reset>" })
	}()
	t.Cleanup(func() {
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
	})
	return got
}

func next(t *testing.T, got <-chan string) string {
	t.Helper()
	select {
	case p := <-got:
		return p
	case <-time.After(10 * time.Second):
		require.FailNow(t, "no notification within 10s")
		return ""
	}
}

func none(t *testing.T, got <-chan string) {
	t.Helper()
	select {
	case p := <-got:
		require.FailNow(t, fmt.Sprintf("unexpected notification %q", p))
	case <-time.After(200 * time.Millisecond):
	}
}

func TestNotifyAcrossDaemons(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := context.Background()
	got := listen(t, b, "agents")
	require.Equal(t, "<reset>", next(t, got), "a listener starts with a reset")

	require.NoError(t, a.Notify(ctx, "agents", "agt_1"))
	assert.Equal(t, "agt_1", next(t, got))

	// Inside a transaction: delivered at commit, never on rollback.
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.Write(ctx, func(tx store.Tx) error {
			if err := tx.(notifier).Notify(ctx, "agents", "agt_2"); err != nil {
				return err
			}
			<-release
			return nil
		})
	}()
	none(t, got)
	close(release)
	require.NoError(t, <-done)
	assert.Equal(t, "agt_2", next(t, got))
	boom := errors.New("boom")
	err := a.Write(ctx, func(tx store.Tx) error {
		if err := tx.(notifier).Notify(ctx, "agents", "agt_3"); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	none(t, got)

	// NotifyTx, the same through the store (what the backend uses).
	require.NoError(t, a.Write(ctx, func(tx store.Tx) error { return a.NotifyTx(ctx, tx, "agents", "agt_4") }))
	assert.Equal(t, "agt_4", next(t, got))
	require.Error(t, a.NotifyTx(ctx, struct{ store.Tx }{}, "agents", "agt_5"), "not a transaction of this store")
	none(t, got)
}

// TestListenResetsAfterRestart: a listener whose connection broke
// reconnects by itself and says so with a reset.
func TestListenResetsAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a cluster")
	}
	c := pgtest.NewCluster(t)
	dsn := pgtest.CreateDatabase(t, c.URL("postgres"))
	s := open(t, dsn)
	got := listen(t, s, "agents")
	require.Equal(t, "<reset>", next(t, got))
	require.NoError(t, c.Stop())
	require.NoError(t, c.Start())
	require.Equal(t, "<reset>", next(t, got), "no reset after the server restarted")
	require.Eventually(t, func() bool { return s.Notify(context.Background(), "agents", "agt_9") == nil },
		10*time.Second, 50*time.Millisecond)
	assert.Equal(t, "agt_9", next(t, got))
}
