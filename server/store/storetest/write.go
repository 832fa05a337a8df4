package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/flowyte/flowyte/server/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testWrite(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	require.NoError(t, s.Ping(ctx))

	// An error rolls back every write of fn.
	boom := errors.New("boom")
	err := s.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.EnsureWorkspace(ctx, "rolled-back", t0); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	_, err = s.WorkspaceByName(ctx, "rolled-back")
	assert.ErrorIs(t, err, store.ErrNotFound, "a workspace of a failed write is visible")

	// A panic rolls back too and reaches the caller; the store still works.
	func() {
		defer func() { assert.NotNil(t, recover(), "Write swallowed the panic") }()
		_ = s.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.EnsureWorkspace(ctx, "panicked", t0); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	_, err = s.WorkspaceByName(ctx, "panicked")
	assert.ErrorIs(t, err, store.ErrNotFound, "a workspace of a panicked write is visible")
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	require.NoError(t, s.Write(wctx, func(tx store.Tx) error { return nil }), "Write after a panic")

	// A context already done runs nothing.
	done, cancelDone := context.WithCancel(ctx)
	cancelDone()
	ran := false
	err = s.Write(done, func(tx store.Tx) error { ran = true; return nil })
	assert.ErrorIs(t, err, context.Canceled)
	assert.False(t, ran, "fn ran under a cancelled context")

	// A caller going away mid-write (a client hanging up after git moved)
	// does not roll the write back.
	gone, leave := context.WithCancel(ctx)
	err = s.Write(gone, func(tx store.Tx) error {
		if _, err := tx.EnsureWorkspace(gone, "first", t0); err != nil {
			return err
		}
		leave()
		_, err := tx.EnsureWorkspace(gone, "second", t0)
		return err
	})
	require.NoError(t, err, "Write whose caller went away")
	for _, name := range []string{"first", "second"} {
		_, err := s.WorkspaceByName(ctx, name)
		assert.NoError(t, err, "workspace %s written by a departed caller", name)
	}

	// Times come back in UTC with their nanoseconds.
	ws := mustWorkspace(t, s, "w")
	loc := time.FixedZone("UTC+5:30", 5*3600+1800)
	local := time.Date(2026, 3, 1, 12, 0, 0, 987654321, loc)
	mustAgent(t, s, ws.ID, "agt_t", local)
	a, err := s.AgentByID(ctx, "agt_t")
	require.NoError(t, err)
	assert.True(t, a.CreatedAt.Equal(local), "CreatedAt=%v, want %v", a.CreatedAt, local.UTC())
	assert.Equal(t, time.UTC, a.CreatedAt.Location())
	assert.Equal(t, 987654321, a.CreatedAt.Nanosecond())

	// Concurrent writers all commit.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			errs <- s.Write(ctx, func(tx store.Tx) error {
				_, err := tx.EnsureWorkspace(ctx, "concurrent", t0.Add(time.Duration(i)))
				return err
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err, "concurrent EnsureWorkspace")
	}
}

func testMigrations(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "default")
	first, err := s.AppliedMigrations(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, first)
	assert.IsIncreasing(t, first, "migrations applied out of name order")
	s = reopen(t, s) // would fail on "table already exists" if re-applied
	again, err := s.AppliedMigrations(ctx)
	require.NoError(t, err)
	assert.Equal(t, first, again, "applied after reopen")
	got, err := s.WorkspaceByName(ctx, "default")
	require.NoError(t, err)
	assert.Equal(t, ws, got, "workspace after reopen")
}

// testEventConflictKeepsTxUsable: a recovery records an event that may
// already exist, takes the ErrConflict and goes on in the same transaction.
func testEventConflictKeepsTxUsable(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "w")
	mustAgent(t, s, ws.ID, "agt_a", t0)
	e := store.Event{ID: store.NewID("evt_"), WorkspaceID: ws.ID, AgentID: "agt_a", Type: "version.published",
		Payload: []byte(`{}`), CreatedAt: t0, Dedupe: "version.published:agt_a:v1"}
	mustWrite(t, s, func(tx store.Tx) error { return tx.InsertEvent(ctx, e) })

	dup := e
	dup.ID = store.NewID("evt_")
	mustWrite(t, s, func(tx store.Tx) error {
		if err := tx.InsertEvent(ctx, dup); !errors.Is(err, store.ErrConflict) {
			return errors.New("duplicate dedupe did not conflict")
		}
		// The transaction is still usable after the conflict.
		return tx.SetDraft(ctx, "agt_a", "after-conflict", t0)
	})
	a, err := s.AgentByID(ctx, "agt_a")
	require.NoError(t, err)
	assert.Equal(t, "after-conflict", a.DraftRevision, "write after a conflict inside the transaction was lost")

	// Every insert that may collide reports ErrConflict and leaves the
	// transaction usable.
	mustWrite(t, s, func(tx store.Tx) error {
		return tx.InsertVersion(ctx, store.Version{AgentID: "agt_a", Number: 1, CreatedAt: t0})
	})
	mustWrite(t, s, func(tx store.Tx) error {
		checks := []struct {
			name string
			err  error
		}{
			{"agent", tx.CreateAgent(ctx, store.Agent{ID: "agt_a", WorkspaceID: ws.ID, CreatedAt: t0, DraftUpdatedAt: t0})},
			{"version", tx.InsertVersion(ctx, store.Version{AgentID: "agt_a", Number: 1, CreatedAt: t0})},
			{"event id", tx.InsertEvent(ctx, store.Event{ID: e.ID, Type: "x", CreatedAt: t0})},
		}
		for _, c := range checks {
			assert.ErrorIs(t, c.err, store.ErrConflict, c.name)
		}
		return tx.SetDraft(ctx, "agt_a", "after-conflicts", t0)
	})
	a, err = s.AgentByID(ctx, "agt_a")
	require.NoError(t, err)
	assert.Equal(t, "after-conflicts", a.DraftRevision)
	v, err := s.Version(ctx, "agt_a", 1)
	require.NoError(t, err)
	assert.Equal(t, 1, v.Number)
}

// testIdempotencyRace: many requests with one key at once; exactly one
// claims it.
func testIdempotencyRace(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	const n = 16
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		claimed int
	)
	for range n {
		wg.Go(func() {
			old, err := s.BeginIdempotent(ctx, store.Idempotency{
				WorkspaceID: "ws", Key: "race", Scope: "publish:agt_a", RequestHash: "h", CreatedAt: t0,
			})
			if !assert.NoError(t, err) {
				return
			}
			if old == nil {
				mu.Lock()
				claimed++
				mu.Unlock()
			} else {
				assert.Equal(t, store.IdemRunning, old.State)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 1, claimed, "claims of one idempotency key")
}

// testWebhookClaim: claimed messages are leased to one dispatcher and fall
// due again when the lease ends without a recorded attempt.
func testWebhookClaim(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	ws := whWorkspace(t, s, "ws")
	w := whCreate(t, s, ws, "", "version.published")
	var events []string
	for range 5 {
		events = append(events, whEvent(t, s, ws, "agt_a", "version.published"))
	}
	whFanOutAll(t, s, 10)

	lease := time.Minute
	first, err := s.ClaimWebhookMessages(ctx, w.ID, whT0, lease, 3)
	require.NoError(t, err)
	require.Equal(t, events[:3], eventIDs(first), "first claim")
	assert.Equal(t, `{"type":"version.published"}`, string(first[0].Payload))
	second, err := s.ClaimWebhookMessages(ctx, w.ID, whT0, lease, 10)
	require.NoError(t, err)
	require.Equal(t, events[3:], eventIDs(second), "second claim skips the leased messages")
	none, err := s.ClaimWebhookMessages(ctx, w.ID, whT0.Add(lease-time.Nanosecond), lease, 10)
	require.NoError(t, err)
	assert.Empty(t, none, "claim inside the lease")
	due, err := s.DueWebhookMessages(ctx, w.ID, whT0, 10)
	require.NoError(t, err)
	assert.Empty(t, due, "leased messages are not due")

	// One attempt recorded: that message is done; the others fall due when
	// the lease ends (their dispatcher died).
	m := first[0]
	require.NoError(t, s.RecordWebhookAttempts(ctx, []store.WebhookAttempt{{
		Delivery: store.Delivery{WebhookID: w.ID, EventID: m.EventID, Type: m.EventType, Attempt: 1,
			Status: store.DeliverySucceeded, ResponseCode: 200, At: whT0},
		Rev: m.Rev, MessageStatus: "succeeded",
	}}))
	again, err := s.ClaimWebhookMessages(ctx, w.ID, whT0.Add(lease), lease, 10)
	require.NoError(t, err)
	assert.Equal(t, events[1:], eventIDs(again), "claim after the lease ended")

	// Concurrent claimers never get the same message.
	w2 := whCreate(t, s, ws, "", "draft.updated")
	for range 20 {
		whEvent(t, s, ws, "agt_a", "draft.updated")
	}
	whFanOutAll(t, s, 100)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]int{}
	)
	for range 4 {
		wg.Go(func() {
			for {
				ms, err := s.ClaimWebhookMessages(ctx, w2.ID, whT0, time.Hour, 3)
				if !assert.NoError(t, err) || len(ms) == 0 {
					return
				}
				mu.Lock()
				for _, m := range ms {
					seen[m.EventID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	assert.Len(t, seen, 20, "messages claimed")
	for id, n := range seen {
		assert.Equal(t, 1, n, "message %s claimed %d times", id, n)
	}
}
