package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGroupCommitIsolatesFailures runs many concurrent writes, every third
// failing after it wrote: the failures leave nothing behind, the others all
// commit, whatever batch they shared.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 60)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Write(ctx, func(tx Tx) error {
				if _, err := tx.EnsureWorkspace(ctx, fmt.Sprintf("ws-%d", i), time.Now()); err != nil {
					return err
				}
				if i%3 == 0 {
					return boom
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		_, lookErr := s.WorkspaceByName(ctx, fmt.Sprintf("ws-%d", i))
		if i%3 == 0 {
			require.ErrorIs(t, err, boom, "write %d: err=%v, want boom", i, err)
			require.ErrorIs(t, lookErr, ErrNotFound, "failed write %d left its workspace behind: %v", i, lookErr)
			continue
		}
		require.NoError(t, err, "write %d: err=%v lookup=%v, want committed", i, err, lookErr)
		require.Nil(t, lookErr, "write %d: err=%v lookup=%v, want committed", i, err, lookErr)
	}
}

func TestGroupCommitPanicReachesCaller(t *testing.T) {
	s := mustOpen(t)
	defer func() {
		r := recover()
		require.Equal(t, "kaput", r, "recover()=%v, want kaput", r)
		// The writer is free again.
		require.NoError(t, s.Write(context.Background(), func(tx Tx) error { return nil }), "write after panic")
	}()
	_ = s.Write(context.Background(), func(tx Tx) error { panic("kaput") })
}

// TestGroupCommitCancelledCallerSparesOthers: a caller whose context is
// cancelled while its statement runs must not abort the writes it shares a
// transaction with.
func TestGroupCommitCancelledCallerSparesOthers(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 30)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			errs[i] = s.Write(cctx, func(tx Tx) error {
				if i%2 == 0 {
					cancel() // this caller goes away mid-write
				}
				_, err := tx.EnsureWorkspace(cctx, fmt.Sprintf("c-%d", i), time.Now())
				return err
			})
		}()
	}
	wg.Wait()
	for i := range errs {
		if i%2 == 1 {
			require.Nil(t, errs[i], "write %d failed because another caller was cancelled: %v", i, errs[i])
			_, err := s.WorkspaceByName(ctx, fmt.Sprintf("c-%d", i))
			require.NoError(t, err, "write %d not committed", i)
		}
	}
}

// TestGroupCommitLeaderReturns: under a stream of writers larger than one
// batch, every caller keeps returning: the one committing the queue hands
// that job on after its own write instead of serving the others forever.
func TestGroupCommitLeaderReturns(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	const writers = 100
	var done [writers]atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := s.Write(ctx, func(tx Tx) error {
					_, err := tx.EnsureWorkspace(ctx, fmt.Sprintf("l-%d-%d", w, i%3), time.Now())
					return err
				}); err == nil {
					done[w].Add(1)
				}
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		lagging := 0
		for w := range writers {
			if done[w].Load() < 3 {
				lagging++
			}
		}
		if lagging == 0 {
			break
		}
		if time.Now().After(deadline) {
			close(stop)
			require.Failf(t, "writers starved", "%d writers stuck below 3 writes while others kept writing", lagging)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
}
