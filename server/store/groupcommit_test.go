package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
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
			errs[i] = s.Write(ctx, func(tx *Tx) error {
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
			if !errors.Is(err, boom) {
				t.Fatalf("write %d: err=%v, want boom", i, err)
			}
			if !errors.Is(lookErr, ErrNotFound) {
				t.Fatalf("failed write %d left its workspace behind: %v", i, lookErr)
			}
			continue
		}
		if err != nil || lookErr != nil {
			t.Fatalf("write %d: err=%v lookup=%v, want committed", i, err, lookErr)
		}
	}
}

func TestGroupCommitPanicReachesCaller(t *testing.T) {
	s := mustOpen(t)
	defer func() {
		if r := recover(); r != "kaput" {
			t.Fatalf("recover()=%v, want kaput", r)
		}
		// The writer is free again.
		if err := s.Write(context.Background(), func(tx *Tx) error { return nil }); err != nil {
			t.Fatalf("write after panic: %v", err)
		}
	}()
	_ = s.Write(context.Background(), func(tx *Tx) error { panic("kaput") })
}
