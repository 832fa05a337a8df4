package postgres_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/store/pgtest"
	"github.com/flowyte/flowyte/server/store/postgres"
	"github.com/flowyte/flowyte/server/store/storetest"
)

// fillSQLite writes one of every kind of row into a SQLite store, pruning
// some so its sequences run past its rows, and returns the workspace id.
func fillSQLite(t *testing.T, s *store.Store) string {
	t.Helper()
	ctx := context.Background()
	var ws string
	require.NoError(t, s.Write(ctx, func(tx store.Tx) error {
		w, err := tx.EnsureWorkspace(ctx, "default", t0)
		if err != nil {
			return err
		}
		ws = w.ID
		if err := tx.CreateKey(ctx, store.Key{ID: "key_1", WorkspaceID: ws, Name: "k", Scopes: []string{"agents:read", "agents:write"}, CreatedAt: t0}, []byte("hash1")); err != nil {
			return err
		}
		if err := tx.CreateAgent(ctx, store.Agent{ID: "agt_a", WorkspaceID: ws, Name: "a", Description: "d", CreatedAt: t0, DraftRevision: "r1", DraftUpdatedAt: t0.Add(time.Second)}); err != nil {
			return err
		}
		for n := 1; n <= 3; n++ {
			if err := tx.InsertVersion(ctx, store.Version{AgentID: "agt_a", Number: n, Commit: "c", DraftRevision: "r", Digest: "sha256:x", Notes: "n", PublishedBy: "key_1", CreatedAt: t0}); err != nil {
				return err
			}
			if _, err := tx.InsertDeployment(ctx, store.Deployment{AgentID: "agt_a", At: t0, By: "key_1", Kind: store.DeployPublish, From: n - 1, To: n}); err != nil {
				return err
			}
		}
		if err := tx.SetPublished(ctx, "agt_a", 3, 3); err != nil {
			return err
		}
		if err := tx.CreateWebhook(ctx, store.Webhook{ID: "wh_1", WorkspaceID: ws, URL: "https://x", Events: []string{"version.published"}, Secret: "whsec_x", CreatedAt: t0}); err != nil {
			return err
		}
		for i, id := range []string{"evt_1", "evt_2"} {
			if err := tx.InsertEvent(ctx, store.Event{ID: id, WorkspaceID: ws, AgentID: "agt_a", Type: "version.published", Payload: []byte(`{"n":1}`), CreatedAt: t0.Add(time.Duration(i)), Dedupe: "d:" + id}); err != nil {
				return err
			}
		}
		return tx.CreateSession(ctx, store.Session{ID: "ses_1", WorkspaceID: ws, AgentID: "agt_a", Channel: "chat", Version: 3, Billable: true, CreatedAt: t0, State: []byte(`{}`)})
	}))
	require.NoError(t, s.AppendTurn(ctx, "ses_1", store.Message{Text: "hi", At: t0}, store.Message{Text: "hello", Trace: []byte(`{"t":1}`), At: t0}, []byte(`{"s":1}`)))
	_, err := s.BeginIdempotent(ctx, store.Idempotency{WorkspaceID: ws, Key: "idem", Scope: "publish:agt_a", RequestHash: "h", CreatedAt: t0})
	require.NoError(t, err)
	require.NoError(t, s.FinishIdempotent(ctx, ws, "idem", 201, map[string]string{"Location": "/x"}, []byte(`{"ok":true}`)))
	_, err = s.FanOutWebhookEvents(ctx, t0, 10)
	require.NoError(t, err)
	require.NoError(t, s.RecordWebhookAttempts(ctx, []store.WebhookAttempt{{
		Delivery:      store.Delivery{WebhookID: "wh_1", EventID: "evt_1", Type: "version.published", Attempt: 1, Status: store.DeliveryPending, ResponseCode: 500, Error: "status 500", At: t0, DurationMs: 3},
		MessageStatus: "pending", Step: 1, NextAt: t0.Add(time.Minute),
	}}))
	require.NoError(t, s.RevokeKey(ctx, "key_1", t0))
	return ws
}

func TestImportSQLite(t *testing.T) {
	ctx := context.Background()
	src, err := store.Open(filepath.Join(t.TempDir(), "flowyte.db"), store.WithSynchronous("NORMAL"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = src.Close() })
	ws := fillSQLite(t, src)
	dst := open(t, pgtest.Start(t))

	counts, err := postgres.ImportSQLite(ctx, src, dst)
	require.NoError(t, err)
	assert.EqualValues(t, 3, counts["versions"])
	assert.EqualValues(t, 2, counts["events"])
	assert.EqualValues(t, 2, counts["session_messages"])

	// Every read agrees between the engines.
	same := func(name string, read func(e storetest.Engine) (any, error)) {
		t.Helper()
		want, err := read(src)
		require.NoError(t, err, "%s on sqlite", name)
		got, err := read(dst)
		require.NoError(t, err, "%s on postgres", name)
		assert.Equal(t, want, got, name)
	}
	same("ListKeys", func(e storetest.Engine) (any, error) { return e.ListKeys(ctx) })
	same("Agent", func(e storetest.Engine) (any, error) { return e.Agent(ctx, ws, "agt_a") })
	same("ListVersions", func(e storetest.Engine) (any, error) { return e.ListVersions(ctx, "agt_a", 0, 10) })
	same("ListDeployments", func(e storetest.Engine) (any, error) { return e.ListDeployments(ctx, "agt_a", 0, 10) })
	same("EventsAfter", func(e storetest.Engine) (any, error) { es, _, err := e.EventsAfter(ctx, 0, 10); return es, err })
	same("ListWebhooks", func(e storetest.Engine) (any, error) { return e.ListWebhooks(ctx, ws) })
	same("WebhookMessage", func(e storetest.Engine) (any, error) { return e.WebhookMessage(ctx, "wh_1", "evt_1") })
	same("PendingWebhooks", func(e storetest.Engine) (any, error) { return e.PendingWebhooks(ctx) })
	same("ListDeliveries", func(e storetest.Engine) (any, error) {
		ds, _, err := e.ListDeliveries(ctx, "wh_1", "", 10)
		return ds, err
	})
	same("Session", func(e storetest.Engine) (any, error) { return e.Session(ctx, ws, "ses_1") })
	same("Messages", func(e storetest.Engine) (any, error) { return e.Messages(ctx, "ses_1") })
	same("Usage", func(e storetest.Engine) (any, error) { return e.Usage(ctx, ws, "", time.Time{}, time.Time{}) })
	same("Idempotency", func(e storetest.Engine) (any, error) {
		return e.BeginIdempotent(ctx, store.Idempotency{WorkspaceID: ws, Key: "idem", Scope: "publish:agt_a", RequestHash: "h", CreatedAt: t0})
	})

	// Counters carry on past the copied rows.
	var depID int64
	require.NoError(t, dst.Write(ctx, func(tx store.Tx) error {
		var err error
		depID, err = tx.InsertDeployment(ctx, store.Deployment{AgentID: "agt_a", At: t0, Kind: store.DeployRollback, From: 3, To: 2})
		if err != nil {
			return err
		}
		return tx.InsertEvent(ctx, store.Event{ID: "evt_3", WorkspaceID: ws, AgentID: "agt_a", Type: "version.published", Payload: []byte(`{}`), CreatedAt: t0})
	}))
	assert.EqualValues(t, 4, depID, "deployment id after import")
	e3, err := dst.EventByID(ctx, "evt_3")
	require.NoError(t, err)
	assert.EqualValues(t, 3, e3.Seq, "event seq after import")
	fo, err := dst.FanOutWebhookEvents(ctx, t0, 10)
	require.NoError(t, err)
	assert.Equal(t, 1, fo.Events, "fan-out after import takes only the new event")

	// A second import refuses the non-empty destination.
	_, err = postgres.ImportSQLite(ctx, src, dst)
	assert.ErrorIs(t, err, postgres.ErrNotEmpty)
}
