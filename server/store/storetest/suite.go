package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/flowyte/flowyte/server/store"
	"github.com/stretchr/testify/require"
)

// Opener opens a fresh, empty store for one test; the store is closed when
// the test ends (by the opener's own t.Cleanup).
type Opener func(t *testing.T) Engine

// Reopener is implemented by engines (or their test wrappers) that can
// open their database again, as a restarted daemon would. The suite uses
// it to check what survives a restart; it closes e first.
type Reopener interface {
	Reopen(t *testing.T) Engine
}

// EventDeleter is implemented by test wrappers that can delete an outbox
// event behind the store's back (as pruning would), to check how a queued
// message of a missing event is reported.
type EventDeleter interface {
	DeleteEvent(ctx context.Context, id string) error
}

// Run runs the whole conformance suite against the engine open opens.
func Run(t *testing.T, open Opener) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"Write", testWrite},
		{"EmptyResults", testEmptyResults},
		{"Migrations", testMigrations},
		{"EnsureWorkspace", testEnsureWorkspace},
		{"Keys", testKeys},
		{"TouchKey", testTouchKey},
		{"KeysStampChangesOnEveryRevocation", testKeysStampChangesOnEveryRevocation},
		{"AgentCRUD", testAgentCRUD},
		{"ListAgentsPagination", testListAgentsPagination},
		{"ListAgentsBadCursor", testListAgentsBadCursor},
		{"Versions", testVersions},
		{"Deployments", testDeployments},
		{"Events", testEvents},
		{"EventsRollback", testEventsRollback},
		{"EventConflictKeepsTxUsable", testEventConflictKeepsTxUsable},
		{"Idempotency", testIdempotency},
		{"IdempotencyFinishInTx", testIdempotencyFinishInTx},
		{"IdempotencyAbandonAndPrune", testIdempotencyAbandonAndPrune},
		{"IdempotencyRace", testIdempotencyRace},
		{"IdempotencyAbandonStale", testIdempotencyAbandonStale},
		{"SessionCreateGet", testSessionCreateGet},
		{"CreateSessionRejectsInconsistentPinning", testCreateSessionRejectsInconsistentPinning},
		{"CreateSessionCountedConcurrent", testCreateSessionCountedConcurrent},
		{"CreateSessionCountedCancelled", testCreateSessionCountedCancelled},
		{"CreateSessionCountedGivingUp", testCreateSessionCountedGivingUp},
		{"AppendTurnOrderingAndRestart", testAppendTurnOrderingAndRestart},
		{"AppendTurnErrors", testAppendTurnErrors},
		{"AppendTurnConcurrent", testAppendTurnConcurrent},
		{"Usage", testUsage},
		{"WebhookCRUD", testWebhookCRUD},
		{"WebhookFanOutMatching", testWebhookFanOutMatching},
		{"WebhookAttemptsAndDeliveryLog", testWebhookAttemptsAndDeliveryLog},
		{"WebhookDisableCancelsRetries", testWebhookDisableCancelsRetries},
		{"WebhookRequeue", testWebhookRequeue},
		{"WebhookPruneDeliveries", testWebhookPruneDeliveries},
		{"WebhookClaim", testWebhookClaim},
		{"Traffic", testTraffic},
		{"TestRuns", testTestRuns},
		{"DashboardSessions", testDashboardSessions},
		{"DashboardSessionsPrune", testDashboardSessionsPrune},
		{"DashboardSessionsEndWithTheirKey", testDashboardSessionsEndWithTheirKey},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open) })
	}
}

// reopen closes s and opens its database again when the engine can;
// otherwise it returns s (the restart part of a test then checks nothing
// more than the same store).
func reopen(t *testing.T, s Engine) Engine {
	t.Helper()
	r, ok := s.(Reopener)
	if !ok {
		t.Log("engine cannot reopen its database: restart not checked")
		return s
	}
	return r.Reopen(t)
}

// t0 is a fixed clock reading with nanoseconds, for deterministic rows.
var t0 = time.Date(2026, 11, 28, 9, 30, 0, 123456789, time.UTC)

// mustWrite runs fn in a write transaction and fails the test on error.
func mustWrite(tb testing.TB, s Engine, fn func(tx store.Tx) error) {
	tb.Helper()
	require.NoError(tb, s.Write(context.Background(), fn), "Write")
}

// mustWorkspace creates (or finds) the workspace called name.
func mustWorkspace(tb testing.TB, s Engine, name string) store.Workspace {
	tb.Helper()
	var w store.Workspace
	mustWrite(tb, s, func(tx store.Tx) error {
		var err error
		w, err = tx.EnsureWorkspace(context.Background(), name, t0)
		return err
	})
	return w
}

// mustAgent creates a live agent in workspace ws created at the given time.
func mustAgent(tb testing.TB, s Engine, ws, id string, created time.Time) store.Agent {
	tb.Helper()
	a := store.Agent{
		ID: id, WorkspaceID: ws, Name: "name-" + id, Description: "desc",
		CreatedAt: created, DraftRevision: "rev0", DraftUpdatedAt: created,
	}
	mustWrite(tb, s, func(tx store.Tx) error { return tx.CreateAgent(context.Background(), a) })
	return a
}
