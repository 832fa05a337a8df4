package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowyte/flowyte/server/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var whT0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// whWorkspace creates the workspace name and returns its id.
func whWorkspace(tb testing.TB, s Engine, name string) string {
	tb.Helper()
	var id string
	err := s.Write(context.Background(), func(tx store.Tx) error {
		w, err := tx.EnsureWorkspace(context.Background(), name, whT0)
		id = w.ID
		return err
	})
	require.NoError(tb, err, "EnsureWorkspace")
	return id
}

// whCreate registers a webhook and returns it.
func whCreate(tb testing.TB, s Engine, ws, agent string, events ...string) store.Webhook {
	tb.Helper()
	w := store.Webhook{
		ID: store.NewID("wh_"), WorkspaceID: ws, URL: "https://hooks.example.com/x", Events: events,
		AgentID: agent, Description: "d", Secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", CreatedAt: whT0,
	}
	require.NoError(tb, s.Write(context.Background(), func(tx store.Tx) error { return tx.CreateWebhook(context.Background(), w) }), "CreateWebhook")
	return w
}

// whEvent appends an event to the outbox and returns its id.
func whEvent(tb testing.TB, s Engine, ws, agent, typ string) string {
	tb.Helper()
	id := store.NewID("evt_")
	err := s.Write(context.Background(), func(tx store.Tx) error {
		return tx.InsertEvent(context.Background(), store.Event{
			ID: id, WorkspaceID: ws, AgentID: agent, Type: typ, Payload: []byte(`{"type":"` + typ + `"}`), CreatedAt: whT0,
		})
	})
	require.NoError(tb, err, "InsertEvent")
	return id
}

// whFanOutAll runs the fan-out until the outbox is drained and returns the
// total number of events consumed and the webhooks touched.
func whFanOutAll(tb testing.TB, s Engine, limit int) (int, []string) {
	tb.Helper()
	total := 0
	var hooks []string
	for {
		f, err := s.FanOutWebhookEvents(context.Background(), whT0, limit)
		require.NoError(tb, err, "FanOutWebhookEvents")
		total += f.Events
		for _, h := range f.Webhooks {
			if !slices.Contains(hooks, h) {
				hooks = append(hooks, h)
			}
		}
		if f.Events < limit {
			return total, hooks
		}
	}
}

func whDue(tb testing.TB, s Engine, webhookID string) []store.WebhookMessage {
	tb.Helper()
	ms, err := s.DueWebhookMessages(context.Background(), webhookID, whT0.Add(time.Hour), 1000)
	require.NoError(tb, err, "DueWebhookMessages")
	return ms
}

func eventIDs(ms []store.WebhookMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.EventID
	}
	return out
}

func testWebhookCRUD(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	ws, other := whWorkspace(t, s, "ws"), whWorkspace(t, s, "other")
	w := whCreate(t, s, ws, "agt_1", "version.published", "draft.updated")

	got, err := s.Webhook(ctx, ws, w.ID)
	require.NoError(t, err, "Webhook")
	assert.Equal(t, w.URL, got.URL)
	assert.Equal(t, w.Events, got.Events)
	assert.Equal(t, "agt_1", got.AgentID)
	assert.Equal(t, w.Secret, got.Secret)
	assert.True(t, got.CreatedAt.Equal(whT0), "CreatedAt=%v, want %v", got.CreatedAt, whT0)
	assert.Nil(t, got.DisabledAt)
	assert.Equal(t, "d", got.Description)
	_, err = s.Webhook(ctx, other, w.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "Webhook(other workspace) err = %v, want ErrNotFound", err)
	err = s.Write(ctx, func(tx store.Tx) error { return tx.CreateWebhook(ctx, w) })
	require.ErrorIs(t, err, store.ErrConflict, "duplicate CreateWebhook err = %v, want ErrConflict", err)
	err = s.Write(ctx, func(tx store.Tx) error { return tx.CreateWebhook(ctx, store.Webhook{ID: "wh_x", WorkspaceID: ws}) })
	require.Error(t, err, "CreateWebhook without url/secret/events: got nil error, want one")
	w2 := whCreate(t, s, ws, "", "version.published")
	list, err := s.ListWebhooks(ctx, ws)
	require.NoError(t, err, "ListWebhooks")
	require.Len(t, list, 2, "ListWebhooks = %d webhooks, want 2", len(list))
	list, _ = s.ListWebhooks(ctx, other)
	require.Len(t, list, 0, "ListWebhooks(other) = %d webhooks, want 0", len(list))
	err = s.DeleteWebhook(ctx, other, w.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "DeleteWebhook(other workspace) err = %v, want ErrNotFound", err)
	require.NoError(t, s.DeleteWebhook(ctx, ws, w.ID), "DeleteWebhook")
	_, err = s.Webhook(ctx, ws, w.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "Webhook after delete err = %v, want ErrNotFound", err)
	_, err = s.WebhookByID(ctx, w2.ID)
	require.NoError(t, err, "WebhookByID")
}

func testWebhookFanOutMatching(t *testing.T, open Opener) {
	s := open(t)
	ws, other := whWorkspace(t, s, "ws"), whWorkspace(t, s, "other")

	before := whEvent(t, s, ws, "agt_a", "version.published") // before any webhook: never delivered
	all := whCreate(t, s, ws, "", "version.published", "version.rolled_back")
	onlyA := whCreate(t, s, ws, "agt_a", "version.published")
	drafts := whCreate(t, s, ws, "", "draft.updated")
	foreign := whCreate(t, s, other, "", "version.published")

	e1 := whEvent(t, s, ws, "agt_a", "version.published")
	e2 := whEvent(t, s, ws, "agt_b", "version.published")
	e3 := whEvent(t, s, ws, "agt_a", "version.rolled_back")
	e4 := whEvent(t, s, ws, "agt_b", "draft.updated")
	e5 := whEvent(t, s, other, "agt_z", "version.published")

	n, hooks := whFanOutAll(t, s, 2) // several batches
	require.EqualValues(t, 6, n, "fan-out consumed %d events, want 6", n)
	require.Len(t, hooks, 4, "fan-out touched %d webhooks, want 4", len(hooks))
	for _, c := range []struct {
		hook store.Webhook
		want []string
	}{
		{all, []string{e1, e2, e3}},
		{onlyA, []string{e1}},
		{drafts, []string{e4}},
		{foreign, []string{e5}},
	} {
		got := eventIDs(whDue(t, s, c.hook.ID))
		assert.Equal(t, c.want, got, "messages of %s = %v, want %v", c.hook.Events, got, c.want)
	}
	_, err := s.WebhookMessage(context.Background(), all.ID, before)
	assert.ErrorIs(t, err, store.ErrNotFound, "event before the webhook existed: err = %v, want ErrNotFound", err)

	// The cursor is durable: after a reopen nothing is fanned out twice.
	s = reopen(t, s)
	n, _ = whFanOutAll(t, s, 10)
	require.EqualValues(t, 0, n, "fan-out after reopen consumed %d events, want 0", n)
	e6 := whEvent(t, s, ws, "agt_a", "version.published")
	n, _ = whFanOutAll(t, s, 10)
	require.EqualValues(t, 1, n, "fan-out of one new event consumed %d, want 1", n)
	got, want := eventIDs(whDue(t, s, all.ID)), []string{e1, e2, e3, e6}
	require.Equal(t, want, got, "messages after reopen = %v, want %v", got, want)
}

func testWebhookAttemptsAndDeliveryLog(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	ws := whWorkspace(t, s, "ws")
	w := whCreate(t, s, ws, "", "version.published")
	e1 := whEvent(t, s, ws, "a", "version.published")
	e2 := whEvent(t, s, ws, "a", "version.published")
	whFanOutAll(t, s, 10)

	m, err := s.WebhookMessage(ctx, w.ID, e1)
	require.NoError(t, err, "WebhookMessage")
	retryAt := whT0.Add(5 * time.Second)
	err = s.RecordWebhookAttempts(ctx, []store.WebhookAttempt{
		{Delivery: store.Delivery{WebhookID: w.ID, EventID: e1, Type: "version.published", Attempt: 1, Status: store.DeliveryPending,
			ResponseCode: 500, Error: "status 500", At: whT0, DurationMs: 3}, Rev: m.Rev, MessageStatus: "pending", Step: 1, NextAt: retryAt},
		{Delivery: store.Delivery{WebhookID: w.ID, EventID: e2, Type: "version.published", Attempt: 1, Status: store.DeliverySucceeded,
			ResponseCode: 204, At: whT0.Add(time.Millisecond), DurationMs: 2}, MessageStatus: "succeeded"},
	})
	require.NoError(t, err, "RecordWebhookAttempts")
	due, _ := s.DueWebhookMessages(ctx, w.ID, whT0.Add(time.Second), 10)
	require.Len(t, due, 0, "due before retry time = %v, want none", eventIDs(due))
	next, ok, err := s.NextWebhookMessageAt(ctx, w.ID, time.Time{})
	require.NoError(t, err, "NextWebhookMessageAt = %v, %v, %v; want %v, true, nil", next, ok, err, retryAt)
	require.True(t, ok, "NextWebhookMessageAt = %v, %v, %v; want %v, true, nil", next, ok, err, retryAt)
	require.True(t, next.Equal(retryAt), "NextWebhookMessageAt = %v, %v, %v; want %v, true, nil", next, ok, err, retryAt)
	pending, err := s.PendingWebhooks(ctx)
	require.NoError(t, err, "PendingWebhooks = %v, %v; want {%s: %v}", pending, err, w.ID, retryAt)
	require.Len(t, pending, 1, "PendingWebhooks = %v, %v; want {%s: %v}", pending, err, w.ID, retryAt)
	require.True(t, pending[w.ID].Equal(retryAt), "PendingWebhooks = %v, %v; want {%s: %v}", pending, err, w.ID, retryAt)
	m, _ = s.WebhookMessage(ctx, w.ID, e1)
	require.EqualValues(t, 1, m.Attempts, "message after one failure: attempts=%d step=%d, want 1 and 1", m.Attempts, m.Step)
	require.EqualValues(t, 1, m.Step, "message after one failure: attempts=%d step=%d, want 1 and 1", m.Attempts, m.Step)

	// Third row, then page through newest first.
	err = s.RecordWebhookAttempts(ctx, []store.WebhookAttempt{{Delivery: store.Delivery{WebhookID: w.ID, EventID: e1,
		Type: "version.published", Attempt: 2, Status: store.DeliverySucceeded, ResponseCode: 200, At: retryAt},
		Rev: m.Rev, MessageStatus: "succeeded", Step: 1}})
	require.NoError(t, err, "RecordWebhookAttempts")
	page1, cursor, err := s.ListDeliveries(ctx, w.ID, "", 2)
	require.NoError(t, err, "ListDeliveries")
	require.Len(t, page1, 2, "page 1: %d rows, cursor %q; want 2 rows and a cursor", len(page1), cursor)
	require.NotEqual(t, "", cursor, "page 1: %d rows, cursor %q; want 2 rows and a cursor", len(page1), cursor)
	require.Equal(t, e1, page1[0].EventID, "page 1 = %+v, want e1 attempt 2 then e2", page1)
	require.EqualValues(t, 2, page1[0].Attempt, "page 1 = %+v, want e1 attempt 2 then e2", page1)
	require.Equal(t, store.DeliverySucceeded, page1[0].Status, "page 1 = %+v, want e1 attempt 2 then e2", page1)
	require.Equal(t, e2, page1[1].EventID, "page 1 = %+v, want e1 attempt 2 then e2", page1)
	require.True(t, page1[0].At.Equal(retryAt), "row = %+v, want at %v and a dlv_ id", page1[0], retryAt)
	require.True(t, strings.HasPrefix(page1[0].ID, "dlv_"), "row = %+v, want at %v and a dlv_ id", page1[0], retryAt)
	page2, cursor2, err := s.ListDeliveries(ctx, w.ID, cursor, 2)
	require.NoError(t, err, "ListDeliveries page 2")
	require.Len(t, page2, 1, "page 2")
	assert.Empty(t, cursor2, "cursor after the last page")
	assert.Equal(t, 500, page2[0].ResponseCode)
	assert.Equal(t, "status 500", page2[0].Error)
	assert.Equal(t, store.DeliveryPending, page2[0].Status)
	assert.EqualValues(t, 3, page2[0].DurationMs)
	_, _, err = s.ListDeliveries(ctx, w.ID, "!!", 2)
	require.ErrorIs(t, err, store.ErrBadCursor, "bad cursor err = %v, want ErrBadCursor", err)
}

func testWebhookDisableCancelsRetries(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	ws := whWorkspace(t, s, "ws")
	w := whCreate(t, s, ws, "", "version.published")
	e1 := whEvent(t, s, ws, "a", "version.published")
	e2 := whEvent(t, s, ws, "a", "version.published")
	whFanOutAll(t, s, 10)

	err := s.RecordWebhookAttempts(ctx, []store.WebhookAttempt{{Delivery: store.Delivery{WebhookID: w.ID, EventID: e1,
		Type: "version.published", Attempt: 1, Status: store.DeliveryFailed, ResponseCode: 410, At: whT0},
		MessageStatus: "failed", Disable: "endpoint answered 410 Gone"}})
	require.NoError(t, err, "RecordWebhookAttempts")
	got, _ := s.Webhook(ctx, ws, w.ID)
	require.NotNil(t, got.DisabledAt, "webhook after 410: disabledAt=%v reason=%q, want set", got.DisabledAt, got.DisabledReason)
	require.Equal(t, "endpoint answered 410 Gone", got.DisabledReason, "webhook after 410: disabledAt=%v reason=%q, want set", got.DisabledAt, got.DisabledReason)
	due := whDue(t, s, w.ID)
	require.Len(t, due, 0, "due after disable = %v, want none (e2 canceled)", eventIDs(due))
	whEvent(t, s, ws, "a", "version.published")
	whFanOutAll(t, s, 10)
	due = whDue(t, s, w.ID)
	require.Len(t, due, 0, "disabled webhook got new messages %v, want none", eventIDs(due))
	// An attempt that was in flight when the 410 arrived cannot revive a
	// canceled message.
	err = s.RecordWebhookAttempts(ctx, []store.WebhookAttempt{{Delivery: store.Delivery{WebhookID: w.ID, EventID: e2,
		Type: "version.published", Attempt: 1, Status: store.DeliveryPending, ResponseCode: 500, At: whT0},
		MessageStatus: "pending", Step: 1, NextAt: whT0}})
	require.NoError(t, err, "RecordWebhookAttempts")
	due = whDue(t, s, w.ID)
	require.Len(t, due, 0, "due after a late in-flight result = %v, want none (stays canceled)", eventIDs(due))
	// A redelivery still works on a disabled webhook, as a one-off.
	require.NoError(t, s.RequeueWebhookMessage(ctx, ws, w.ID, e2, whT0), "RequeueWebhookMessage")
	due = whDue(t, s, w.ID)
	require.Len(t, due, 1, "due after redeliver")
	assert.Equal(t, e2, due[0].EventID)
	assert.True(t, due[0].Manual, "a redelivery of a finished message is manual")
	assert.False(t, due[0].EventMissing)
	assert.Equal(t, `{"type":"version.published"}`, string(due[0].Payload))
	// An event gone from the outbox is reported, not dropped silently.
	d, ok := s.(EventDeleter)
	if !ok {
		t.Log("engine cannot delete events: event-missing case not run")
		return
	}
	require.NoError(t, d.DeleteEvent(ctx, e2), "delete event")
	due = whDue(t, s, w.ID)
	require.Len(t, due, 1, "due with its event deleted = %+v, want EventMissing", due)
	require.True(t, due[0].EventMissing, "due with its event deleted = %+v, want EventMissing", due)
	require.Nil(t, due[0].Payload, "due with its event deleted = %+v, want EventMissing", due)
}

func testWebhookRequeue(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	ws, other := whWorkspace(t, s, "ws"), whWorkspace(t, s, "other")
	w := whCreate(t, s, ws, "", "version.published")
	e1 := whEvent(t, s, ws, "a", "version.published")
	untargeted := whEvent(t, s, ws, "a", "draft.updated")
	whFanOutAll(t, s, 10)

	for _, c := range []struct{ name, ws, hook, event string }{
		{"unknown event", ws, w.ID, "evt_nope"},
		{"event never targeted", ws, w.ID, untargeted},
		{"other workspace", other, w.ID, e1},
		{"unknown webhook", ws, "wh_nope", e1},
	} {
		err := s.RequeueWebhookMessage(ctx, c.ws, c.hook, c.event, whT0)
		assert.ErrorIs(t, err, store.ErrNotFound, "%s: err = %v, want ErrNotFound", c.name, err)
	}

	m, _ := s.WebhookMessage(ctx, w.ID, e1)
	// Succeeded, then redelivered: pending again, one-off.
	require.NoError(t, s.RecordWebhookAttempts(ctx, []store.WebhookAttempt{{Delivery: store.Delivery{WebhookID: w.ID, EventID: e1,
		Type: "version.published", Attempt: 1, Status: store.DeliverySucceeded, ResponseCode: 200, At: whT0},
		Rev: m.Rev, MessageStatus: "succeeded"}}), "RecordWebhookAttempts")
	later := whT0.Add(time.Minute)
	require.NoError(t, s.RequeueWebhookMessage(ctx, ws, w.ID, e1, later), "RequeueWebhookMessage")
	m2, _ := s.WebhookMessage(ctx, w.ID, e1)
	require.True(t, m2.Manual, "requeued message = %+v, want manual, rev+1, next %v, attempts 1", m2, later)
	require.Equal(t, m.Rev+1, m2.Rev, "requeued message = %+v, want manual, rev+1, next %v, attempts 1", m2, later)
	require.True(t, m2.NextAt.Equal(later), "requeued message = %+v, want manual, rev+1, next %v, attempts 1", m2, later)
	require.EqualValues(t, 1, m2.Attempts, "requeued message = %+v, want manual, rev+1, next %v, attempts 1", m2, later)
	// An attempt made for the old revision cannot finish the redelivery.
	require.NoError(t, s.RecordWebhookAttempts(ctx, []store.WebhookAttempt{{Delivery: store.Delivery{WebhookID: w.ID, EventID: e1,
		Type: "version.published", Attempt: 2, Status: store.DeliverySucceeded, ResponseCode: 200, At: later},
		Rev: m.Rev, MessageStatus: "succeeded"}}), "RecordWebhookAttempts")
	due := whDue(t, s, w.ID)
	require.Len(t, due, 1, "due after stale result = %+v, want e1 still pending with attempts 2", due)
	require.EqualValues(t, 2, due[0].Attempts, "due after stale result = %+v, want e1 still pending with attempts 2", due)
}

func testWebhookPruneDeliveries(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	ws := whWorkspace(t, s, "ws")
	w := whCreate(t, s, ws, "", "version.published")
	old := whEvent(t, s, ws, "a", "version.published")
	fresh := whEvent(t, s, ws, "a", "version.published")
	whFanOutAll(t, s, 10)
	err := s.RecordWebhookAttempts(ctx, []store.WebhookAttempt{
		{Delivery: store.Delivery{WebhookID: w.ID, EventID: old, Type: "t", Attempt: 1, Status: store.DeliverySucceeded, At: whT0},
			MessageStatus: "succeeded"},
		{Delivery: store.Delivery{WebhookID: w.ID, EventID: fresh, Type: "t", Attempt: 1, Status: store.DeliveryPending,
			At: whT0.Add(40 * 24 * time.Hour)}, MessageStatus: "pending", NextAt: whT0.Add(41 * 24 * time.Hour)},
	})
	require.NoError(t, err, "RecordWebhookAttempts")
	n, err := s.PruneDeliveries(ctx, whT0.Add(10*24*time.Hour))
	require.NoError(t, err, "PruneDeliveries = %d, %v; want 1, nil", n, err)
	require.EqualValues(t, 1, n, "PruneDeliveries = %d, %v; want 1, nil", n, err)
	rows, _, _ := s.ListDeliveries(ctx, w.ID, "", 10)
	require.Len(t, rows, 1, "deliveries after prune = %+v, want only the fresh one", rows)
	require.Equal(t, fresh, rows[0].EventID, "deliveries after prune = %+v, want only the fresh one", rows)
	_, err = s.WebhookMessage(ctx, w.ID, old)
	require.ErrorIs(t, err, store.ErrNotFound, "finished old message after prune: err = %v, want ErrNotFound", err)
	_, err = s.WebhookMessage(ctx, w.ID, fresh)
	require.NoError(t, err, "pending message after prune: %v, want kept", err)
	// Deleting the webhook takes its log and queue with it.
	require.NoError(t, s.DeleteWebhook(ctx, ws, w.ID), "DeleteWebhook")
	rows, _, _ = s.ListDeliveries(ctx, w.ID, "", 10)
	require.Len(t, rows, 0, "deliveries after delete = %d, want 0", len(rows))
	p, _ := s.PendingWebhooks(ctx)
	require.Len(t, p, 0, "pending after delete = %v, want none", p)
	// Recording an attempt for a deleted webhook is a no-op, not an error.
	require.NoError(t, s.RecordWebhookAttempts(ctx, []store.WebhookAttempt{{Delivery: store.Delivery{WebhookID: w.ID, EventID: fresh,
		Type: "t", Attempt: 2, Status: store.DeliverySucceeded, At: whT0}, MessageStatus: "succeeded"}}), "RecordWebhookAttempts for a deleted webhook")
}
