package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestIdempotency(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	rec := Idempotency{WorkspaceID: "ws_1", Key: "k1", Scope: "publish:agt_a", RequestHash: "h1", CreatedAt: t0}

	// Begin: absent → claimed.
	got, err := s.BeginIdempotent(ctx, rec)
	if err != nil || got != nil {
		t.Fatalf("first Begin=%+v,%v, want nil,nil", got, err)
	}
	// Begin again while running: the running record comes back.
	got, err = s.BeginIdempotent(ctx, Idempotency{WorkspaceID: "ws_1", Key: "k1", Scope: "publish:agt_a", RequestHash: "h2", CreatedAt: t0.Add(time.Second)})
	if err != nil || got == nil {
		t.Fatalf("second Begin=%+v,%v, want the running record", got, err)
	}
	if got.State != IdemRunning || got.RequestHash != "h1" || got.Scope != "publish:agt_a" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("running record=%+v, want state running, hash h1, created %v", got, t0)
	}
	// The same key in another workspace is independent.
	if got, err := s.BeginIdempotent(ctx, Idempotency{WorkspaceID: "ws_2", Key: "k1", RequestHash: "x", CreatedAt: t0}); err != nil || got != nil {
		t.Fatalf("Begin in another workspace=%+v,%v, want nil,nil", got, err)
	}

	// Finish, then replay returns the response.
	headers := map[string]string{"Location": "/agents/agt_a/versions/v1", "Content-Type": "application/json"}
	body := []byte(`{"id":"v1"}`)
	if err := s.FinishIdempotent(ctx, "ws_1", "k1", 201, headers, body); err != nil {
		t.Fatal(err)
	}
	got, err = s.BeginIdempotent(ctx, Idempotency{WorkspaceID: "ws_1", Key: "k1", RequestHash: "h1", CreatedAt: t0.Add(23 * time.Hour)})
	if err != nil || got == nil {
		t.Fatalf("replay Begin=%+v,%v, want the done record", got, err)
	}
	want := Idempotency{WorkspaceID: "ws_1", Key: "k1", Scope: "publish:agt_a", RequestHash: "h1", State: IdemDone,
		Status: 201, Body: body, Headers: headers, CreatedAt: t0}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("replayed=%+v, want %+v", *got, want)
	}

	// After 24 h the record is replaced by a new running claim.
	got, err = s.BeginIdempotent(ctx, Idempotency{WorkspaceID: "ws_1", Key: "k1", RequestHash: "h9", CreatedAt: t0.Add(IdempotencyTTL)})
	if err != nil || got != nil {
		t.Fatalf("Begin after expiry=%+v,%v, want nil,nil", got, err)
	}
	got, err = s.BeginIdempotent(ctx, Idempotency{WorkspaceID: "ws_1", Key: "k1", RequestHash: "h9", CreatedAt: t0.Add(IdempotencyTTL + time.Second)})
	if err != nil || got == nil || got.State != IdemRunning || got.RequestHash != "h9" {
		t.Fatalf("record after expiry=%+v,%v, want the new running claim h9", got, err)
	}

	// Finishing an unknown key is ErrNotFound.
	if err := s.FinishIdempotent(ctx, "ws_1", "nope", 200, nil, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Finish(unknown): err=%v, want ErrNotFound", err)
	}
}

func TestIdempotencyFinishInTx(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	if _, err := s.BeginIdempotent(ctx, Idempotency{WorkspaceID: "w", Key: "k", RequestHash: "h", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	// A rolled back transaction leaves the record running.
	boom := errors.New("boom")
	err := s.Write(ctx, func(tx Tx) error {
		if err := tx.FinishIdempotentTx(ctx, "w", "k", 201, nil, []byte("x")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write err=%v, want boom", err)
	}
	got, _ := s.BeginIdempotent(ctx, Idempotency{WorkspaceID: "w", Key: "k", CreatedAt: t0})
	if got == nil || got.State != IdemRunning {
		t.Fatalf("after rollback=%+v, want running", got)
	}
	mustWrite(t, s, func(tx Tx) error { return tx.FinishIdempotentTx(ctx, "w", "k", 201, nil, nil) })
	got, _ = s.BeginIdempotent(ctx, Idempotency{WorkspaceID: "w", Key: "k", CreatedAt: t0})
	if got == nil || got.State != IdemDone || got.Status != 201 || got.Headers == nil || len(got.Headers) != 0 || len(got.Body) != 0 {
		t.Fatalf("after commit=%+v, want done 201 with empty headers and body", got)
	}
}

func TestIdempotencyAbandonAndPrune(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	begin := func(key string, at time.Time) *Idempotency {
		t.Helper()
		got, err := s.BeginIdempotent(ctx, Idempotency{WorkspaceID: "w", Key: key, RequestHash: "h", CreatedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	begin("run", t0)
	if err := s.AbandonIdempotent(ctx, "w", "run"); err != nil {
		t.Fatal(err)
	}
	if got := begin("run", t0); got != nil {
		t.Fatalf("Begin after Abandon=%+v, want nil (claim again)", got)
	}
	// Abandon leaves done records alone.
	begin("done", t0)
	if err := s.FinishIdempotent(ctx, "w", "done", 200, nil, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	if err := s.AbandonIdempotent(ctx, "w", "done"); err != nil {
		t.Fatal(err)
	}
	if got := begin("done", t0); got == nil || got.State != IdemDone {
		t.Fatalf("done record after Abandon=%+v, want it kept", got)
	}
	if err := s.AbandonIdempotent(ctx, "w", "missing"); err != nil {
		t.Fatalf("Abandon(unknown)=%v, want nil", err)
	}

	begin("new", t0.Add(48*time.Hour))
	n, err := s.PruneIdempotency(ctx, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("pruned %d, want 2 (run, done)", n)
	}
	if got := begin("new", t0.Add(48*time.Hour)); got == nil {
		t.Fatal("the recent record was pruned, want it kept")
	}
}
