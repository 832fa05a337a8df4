package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder runs batches of ints for GroupCommit tests: each result is the
// request times ten; it records every batch, and the first batch blocks
// until gate is closed, so the requests behind it queue up.
type recorder struct {
	mu      sync.Mutex
	batches [][]int
	gate    chan struct{}
	first   sync.Once
	started chan struct{}
}

func newRecorder() *recorder {
	return &recorder{gate: make(chan struct{}), started: make(chan struct{})}
}

func (rc *recorder) run(batch []int) []int {
	rc.first.Do(func() {
		close(rc.started)
		<-rc.gate
	})
	rc.mu.Lock()
	rc.batches = append(rc.batches, append([]int(nil), batch...))
	rc.mu.Unlock()
	out := make([]int, len(batch))
	for i, r := range batch {
		out[i] = r * 10
	}
	return out
}

// queueBehind starts a request that blocks the queue, then queues reqs
// one after the other, in order, and returns their results once the gate
// opens.
func queueBehind(t *testing.T, q *GroupCommit[int, int], rc *recorder, reqs []int) []int {
	t.Helper()
	go q.Do(context.Background(), -1)
	<-rc.started
	got := make([]int, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() {
			v, ok := q.Do(context.Background(), r)
			assert.True(t, ok)
			got[i] = v
		})
		require.Eventually(t, func() bool {
			q.mu.Lock()
			defer q.mu.Unlock()
			return len(q.pending) == i+1
		}, 10*time.Second, 100*time.Microsecond, "request %d queued", i)
	}
	close(rc.gate)
	wg.Wait()
	return got
}

// TestGroupQueueBatchesWithinBounds: requests queued behind a running
// batch run together, at most max at a time, each caller getting its own
// result.
func TestGroupQueueBatchesWithinBounds(t *testing.T) {
	rc := newRecorder()
	q := NewGroupCommit(4, nil, rc.run)
	reqs := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	got := queueBehind(t, q, rc, reqs)
	for i, r := range reqs {
		assert.Equal(t, r*10, got[i])
	}
	var seen []int
	for _, b := range rc.batches[1:] {
		assert.LessOrEqual(t, len(b), 4)
		seen = append(seen, b...)
	}
	assert.ElementsMatch(t, reqs, seen, "each request ran once")
	assert.Len(t, rc.batches, 1+3, "10 queued requests in batches of 4, 4, 2")
}

// TestGroupQueueKeysNeverShareABatch: requests with one key run in
// separate batches, in queue order.
func TestGroupQueueKeysNeverShareABatch(t *testing.T) {
	rc := newRecorder()
	q := NewGroupCommit(0, func(r int) string { return string(rune('a' + r%3)) }, rc.run)
	reqs := []int{0, 1, 2, 3, 4, 5, 6}
	queueBehind(t, q, rc, reqs)
	ran := map[int]int{} // request → batch index
	for bi, b := range rc.batches[1:] {
		keys := map[int]bool{}
		for _, r := range b {
			assert.False(t, keys[r%3], "batch %v holds key %d twice", b, r%3)
			keys[r%3] = true
			ran[r] = bi
		}
	}
	assert.Len(t, ran, len(reqs))
	for _, r := range reqs {
		if r >= 3 {
			assert.Less(t, ran[r-3], ran[r], "%d ran before %d, which shares its key and queued first", r-3, r)
		}
	}
}

// TestGroupQueueCancelledWhileQueued: a caller whose context ends while it
// waits leaves the queue at once, its request never runs, and the callers
// behind it are served.
func TestGroupQueueCancelledWhileQueued(t *testing.T) {
	rc := newRecorder()
	q := NewGroupCommit(0, nil, rc.run)
	go q.Do(context.Background(), -1)
	<-rc.started
	ctx, cancel := context.WithCancel(context.Background())
	left := make(chan bool)
	go func() {
		_, ok := q.Do(ctx, 99)
		left <- ok
	}()
	require.Eventually(t, func() bool { q.mu.Lock(); defer q.mu.Unlock(); return len(q.pending) == 1 }, 10*time.Second, time.Millisecond)
	cancel()
	assert.False(t, <-left, "a caller that went away while queued is not run")
	done := make(chan int)
	go func() {
		v, ok := q.Do(context.Background(), 7)
		assert.True(t, ok)
		done <- v
	}()
	close(rc.gate)
	assert.Equal(t, 70, <-done)
	for _, b := range rc.batches {
		assert.NotContains(t, b, 99)
	}
	_, ok := q.Do(ctx, 5)
	assert.False(t, ok, "an ended context is refused before queueing")
}
