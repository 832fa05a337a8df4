package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flowyte/flowyte/server/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testIdempotency(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	rec := store.Idempotency{WorkspaceID: "ws_1", Key: "k1", Scope: "publish:agt_a", RequestHash: "h1", CreatedAt: t0}

	// Begin: absent → claimed.
	got, err := s.BeginIdempotent(ctx, rec)
	require.NoError(t, err, "first Begin=%+v,%v, want nil,nil", got, err)
	require.Nil(t, got, "first Begin=%+v,%v, want nil,nil", got, err)
	// Begin again while running: the running record comes back.
	got, err = s.BeginIdempotent(ctx, store.Idempotency{WorkspaceID: "ws_1", Key: "k1", Scope: "publish:agt_a", RequestHash: "h2", CreatedAt: t0.Add(time.Second)})
	require.NoError(t, err, "second Begin=%+v,%v, want the running record", got, err)
	require.NotNil(t, got, "second Begin=%+v,%v, want the running record", got, err)
	require.Equal(t, store.IdemRunning, got.State, "running record=%+v, want state running, hash h1, created %v", got, t0)
	require.Equal(t, "h1", got.RequestHash, "running record=%+v, want state running, hash h1, created %v", got, t0)
	require.Equal(t, "publish:agt_a", got.Scope, "running record=%+v, want state running, hash h1, created %v", got, t0)
	require.True(t, got.CreatedAt.Equal(t0), "running record=%+v, want state running, hash h1, created %v", got, t0)
	// The same key in another workspace is independent.
	got, err = s.BeginIdempotent(ctx, store.Idempotency{WorkspaceID: "ws_2", Key: "k1", RequestHash: "x", CreatedAt: t0})
	require.NoError(t, err, "Begin in another workspace=%+v,%v, want nil,nil", got, err)
	require.Nil(t, got, "Begin in another workspace=%+v,%v, want nil,nil", got, err)

	// Finish, then replay returns the response.
	headers := map[string]string{"Location": "/agents/agt_a/versions/v1", "Content-Type": "application/json"}
	body := []byte(`{"id":"v1"}`)
	require.NoError(t, s.FinishIdempotent(ctx, "ws_1", "k1", 201, headers, body))
	got, err = s.BeginIdempotent(ctx, store.Idempotency{WorkspaceID: "ws_1", Key: "k1", RequestHash: "h1", CreatedAt: t0.Add(23 * time.Hour)})
	require.NoError(t, err, "replay Begin=%+v,%v, want the done record", got, err)
	require.NotNil(t, got, "replay Begin=%+v,%v, want the done record", got, err)
	want := store.Idempotency{WorkspaceID: "ws_1", Key: "k1", Scope: "publish:agt_a", RequestHash: "h1", State: store.IdemDone,
		Status: 201, Body: body, Headers: headers, CreatedAt: t0}
	require.Equal(t, want, *got, "replayed=%+v, want %+v", *got, want)

	// After 24 h the record is replaced by a new running claim.
	got, err = s.BeginIdempotent(ctx, store.Idempotency{WorkspaceID: "ws_1", Key: "k1", RequestHash: "h9", CreatedAt: t0.Add(store.IdempotencyTTL)})
	require.NoError(t, err, "Begin after expiry=%+v,%v, want nil,nil", got, err)
	require.Nil(t, got, "Begin after expiry=%+v,%v, want nil,nil", got, err)
	got, err = s.BeginIdempotent(ctx, store.Idempotency{WorkspaceID: "ws_1", Key: "k1", RequestHash: "h9", CreatedAt: t0.Add(store.IdempotencyTTL + time.Second)})
	require.NoError(t, err, "record after expiry=%+v,%v, want the new running claim h9", got, err)
	require.NotNil(t, got, "record after expiry=%+v,%v, want the new running claim h9", got, err)
	require.Equal(t, store.IdemRunning, got.State, "record after expiry=%+v,%v, want the new running claim h9", got, err)
	require.Equal(t, "h9", got.RequestHash, "record after expiry=%+v,%v, want the new running claim h9", got, err)

	// Finishing an unknown key is ErrNotFound.
	err = s.FinishIdempotent(ctx, "ws_1", "nope", 200, nil, nil)
	require.ErrorIs(t, err, store.ErrNotFound, "Finish(unknown): err=%v, want ErrNotFound", err)
}

func testIdempotencyFinishInTx(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	_, err := s.BeginIdempotent(ctx, store.Idempotency{WorkspaceID: "w", Key: "k", RequestHash: "h", CreatedAt: t0})
	require.NoError(t, err)
	// A rolled back transaction leaves the record running.
	boom := errors.New("boom")
	err = s.Write(ctx, func(tx store.Tx) error {
		if err := tx.FinishIdempotentTx(ctx, "w", "k", 201, nil, []byte("x")); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom, "Write err=%v, want boom", err)
	got, _ := s.BeginIdempotent(ctx, store.Idempotency{WorkspaceID: "w", Key: "k", CreatedAt: t0})
	require.NotNil(t, got, "after rollback=%+v, want running", got)
	require.Equal(t, store.IdemRunning, got.State, "after rollback=%+v, want running", got)
	mustWrite(t, s, func(tx store.Tx) error { return tx.FinishIdempotentTx(ctx, "w", "k", 201, nil, nil) })
	got, _ = s.BeginIdempotent(ctx, store.Idempotency{WorkspaceID: "w", Key: "k", CreatedAt: t0})
	require.NotNil(t, got, "after commit=%+v, want done 201 with empty headers and body", got)
	require.Equal(t, store.IdemDone, got.State, "after commit=%+v, want done 201 with empty headers and body", got)
	require.EqualValues(t, 201, got.Status, "after commit=%+v, want done 201 with empty headers and body", got)
	require.NotNil(t, got.Headers, "after commit=%+v, want done 201 with empty headers and body", got)
	require.Len(t, got.Headers, 0, "after commit=%+v, want done 201 with empty headers and body", got)
	require.Len(t, got.Body, 0, "after commit=%+v, want done 201 with empty headers and body", got)
}

func testIdempotencyAbandonAndPrune(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	begin := func(key string, at time.Time) *store.Idempotency {
		t.Helper()
		got, err := s.BeginIdempotent(ctx, store.Idempotency{WorkspaceID: "w", Key: key, RequestHash: "h", CreatedAt: at})
		require.NoError(t, err)
		return got
	}
	begin("run", t0)
	require.NoError(t, s.AbandonIdempotent(ctx, "w", "run"))
	got := begin("run", t0)
	require.Nil(t, got, "Begin after Abandon=%+v, want nil (claim again)", got)
	// Abandon leaves done records alone.
	begin("done", t0)
	require.NoError(t, s.FinishIdempotent(ctx, "w", "done", 200, nil, []byte("ok")))
	require.NoError(t, s.AbandonIdempotent(ctx, "w", "done"))
	got = begin("done", t0)
	require.NotNil(t, got, "done record after Abandon=%+v, want it kept", got)
	require.Equal(t, store.IdemDone, got.State, "done record after Abandon=%+v, want it kept", got)
	require.NoError(t, s.AbandonIdempotent(ctx, "w", "missing"), "Abandon(unknown)")

	begin("new", t0.Add(48*time.Hour))
	n, err := s.PruneIdempotency(ctx, t0.Add(24*time.Hour))
	require.NoError(t, err)
	require.EqualValues(t, 2, n, "pruned %d, want 2 (run, done)", n)
	got = begin("new", t0.Add(48*time.Hour))
	require.NotNil(t, got, "the recent record was pruned, want it kept")
}

func testIdempotencyAbandonStale(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	begin := func(key string, at time.Time) *store.Idempotency {
		t.Helper()
		got, err := s.BeginIdempotent(ctx, store.Idempotency{WorkspaceID: "w", Key: key, RequestHash: "h", CreatedAt: at})
		require.NoError(t, err)
		return got
	}
	begin("old-running", t0)
	begin("young-running", t0.Add(time.Hour))
	begin("old-done", t0)
	require.NoError(t, s.FinishIdempotent(ctx, "w", "old-done", 201, nil, []byte("ok")))

	n, err := s.AbandonStaleIdempotency(ctx, t0.Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, 1, n, "abandoned records")
	now := t0.Add(time.Hour)
	assert.Nil(t, begin("old-running", now), "a stale running record blocks its key")
	if young := begin("young-running", now); assert.NotNil(t, young, "a young running record was abandoned") {
		assert.Equal(t, store.IdemRunning, young.State)
	}
	if done := begin("old-done", now); assert.NotNil(t, done, "a done record was abandoned") {
		assert.Equal(t, store.IdemDone, done.State)
	}

	require.NoError(t, s.AbandonRunningIdempotency(ctx))
	assert.Nil(t, begin("young-running", now), "AbandonRunningIdempotency kept a running record")
}
