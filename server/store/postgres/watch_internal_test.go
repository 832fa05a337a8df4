package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store/pgtest"
)

// TestBarrierBeforeTheFirstLease: a message broadcast after a watcher
// started listening but before it has a row (so the sender does not wait
// for it) is handled before that watcher trusts anything.
func TestBarrierBeforeTheFirstLease(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := context.Background()
	a, err := Open(ctx, dsn)
	require.NoError(t, err)
	defer a.Close()
	b, err := Open(ctx, dsn)
	require.NoError(t, err)
	defer b.Close()

	// The handler holds the watcher until the test lets it go, so the
	// test sees whether the lease came before the message.
	called, release := make(chan string, 1), make(chan struct{})
	listening, proceed := make(chan struct{}), make(chan struct{})
	testHookListening = func() {
		close(listening)
		<-proceed
	}
	defer func() { testHookListening = nil }()
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- b.Watch(wctx, func(_, id string) {
			called <- id
			<-release
		}, nil, "flowyte_test")
	}()
	var once sync.Once
	letGo := func() { once.Do(func() { close(release) }) }
	defer func() {
		letGo()
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
	}()
	<-listening
	testHookListening = nil
	start := time.Now()
	require.NoError(t, a.Broadcast(ctx, "flowyte_test", "x"))
	assert.Less(t, time.Since(start), leaseTime/2, "b has no row yet: nobody to wait for")
	close(proceed)
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case id := <-called:
			assert.Equal(t, "x", id)
			assert.False(t, b.Leased(), "no lease while the message is being handled")
			letGo()
			require.Eventually(t, b.Leased, 10*time.Second, time.Millisecond)
			return
		default:
		}
		require.False(t, b.Leased(), "a lease before the message queued ahead of it was handled")
		require.True(t, time.Now().Before(deadline), "the message never came")
		time.Sleep(50 * time.Microsecond)
	}
}
