package store

import (
	"context"
	"slices"
	"sync"
)

// GroupCommit is a group-commit queue, shared by both engines: while one
// batch of requests runs (one transaction, one commit), the requests that
// arrive queue up, and the next caller to lead runs them together. No
// goroutine of its own: the leader is a caller, and after a batch holding
// its own request it hands leadership to the oldest queued caller, so no
// caller keeps running other callers' batches under sustained load.
//
// R is a request, T its result. run gets a batch in queue order and
// returns one result per request, in the same order.
type GroupCommit[R, T any] struct {
	max int
	key func(R) string
	run func(batch []R) []T

	mu      sync.Mutex
	pending []*groupReq[R, T]
	leading bool // a caller is running batches
}

type groupReq[R, T any] struct {
	ctx  context.Context
	r    R
	done chan groupResult[T] // the outcome, sent once
	// lead receives when this caller must run the queue; it is only ever
	// sent to a caller still pending.
	lead chan struct{}
}

type groupResult[T any] struct {
	v  T
	ok bool // false: the caller's context ended before its batch
}

// NewGroupCommit returns a queue whose batches hold at most max requests
// (max ≤ 0: no bound). When key is not nil, requests with equal keys never
// share a batch: the later one waits for the next.
func NewGroupCommit[R, T any](max int, key func(R) string, run func(batch []R) []T) *GroupCommit[R, T] {
	return &GroupCommit[R, T]{max: max, key: key, run: run}
}

// Do queues r and returns its result once a batch holding it has run. ok
// is false, and r never runs, when ctx ends before r is taken into a
// batch; once taken, r runs with the others whatever happens to ctx.
func (q *GroupCommit[R, T]) Do(ctx context.Context, r R) (res T, ok bool) {
	if ctx.Err() != nil {
		return res, false
	}
	req := &groupReq[R, T]{ctx: ctx, r: r, done: make(chan groupResult[T], 1), lead: make(chan struct{}, 1)}
	q.mu.Lock()
	q.pending = append(q.pending, req)
	leader := !q.leading
	q.leading = true
	q.mu.Unlock()
	var out groupResult[T]
	if leader {
		q.lead(req)
		out = <-req.done
		return out.v, out.ok
	}
	select {
	case out = <-req.done:
	case <-req.lead:
		q.lead(req)
		out = <-req.done
	case <-ctx.Done():
		if q.leave(req) {
			return res, false
		}
		out = <-req.done // already in a batch: its outcome is the batch's
	}
	return out.v, out.ok
}

// leave takes req out of the queue if it is still waiting there (passing
// on the leadership it may have just been handed) and reports whether it
// did.
func (q *GroupCommit[R, T]) leave(req *groupReq[R, T]) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := slices.Index(q.pending, req)
	if i < 0 {
		return false
	}
	q.pending = slices.Delete(q.pending, i, i+1)
	select {
	case <-req.lead:
		q.handOff()
	default:
	}
	return true
}

// handOff passes leadership to the oldest queued caller, or ends it when
// none is left. q.mu must be held.
func (q *GroupCommit[R, T]) handOff() {
	if len(q.pending) > 0 {
		q.pending[0].lead <- struct{}{}
		return
	}
	q.pending = nil
	q.leading = false
}

// lead runs queued batches, in order, until one has taken me; then it
// hands leadership on.
func (q *GroupCommit[R, T]) lead(me *groupReq[R, T]) {
	for {
		batch, taken := q.take()
		if len(batch) > 0 {
			rs := make([]R, len(batch))
			for i, req := range batch {
				rs[i] = req.r
			}
			results := q.run(rs)
			for i, req := range batch {
				req.done <- groupResult[T]{v: results[i], ok: true}
			}
		}
		if slices.Contains(taken, me) {
			q.mu.Lock()
			q.handOff()
			q.mu.Unlock()
			return
		}
	}
}

// take removes the next batch from the queue, oldest first: up to max
// requests with distinct keys. Callers whose context already ended are
// answered and left out of the batch; taken lists every request removed
// from the queue.
func (q *GroupCommit[R, T]) take() (batch, taken []*groupReq[R, T]) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var keys map[string]struct{}
	if q.key != nil {
		keys = make(map[string]struct{}, len(q.pending))
	}
	rest := q.pending[:0:0]
	for _, req := range q.pending {
		wait := q.max > 0 && len(batch) == q.max
		var k string
		if keys != nil && !wait {
			k = q.key(req.r)
			_, wait = keys[k]
		}
		if wait {
			rest = append(rest, req)
			continue
		}
		taken = append(taken, req)
		if req.ctx.Err() != nil {
			req.done <- groupResult[T]{}
			continue
		}
		if keys != nil {
			keys[k] = struct{}{}
		}
		batch = append(batch, req)
	}
	q.pending = rest
	return batch, taken
}
