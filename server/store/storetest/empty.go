package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store"
)

// testEmptyResults pins which list methods return an empty slice and which
// nil when nothing matches: callers render them to JSON, where [] and null
// differ, so every engine must agree.
func testEmptyResults(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "w")
	mustAgent(t, s, ws.ID, "agt_a", t0)
	require.NoError(t, s.Write(ctx, func(tx store.Tx) error {
		return tx.CreateSession(ctx, store.Session{ID: "ses_1", WorkspaceID: ws.ID, AgentID: "agt_a", Channel: "chat",
			DraftMode: true, CreatedAt: t0})
	}))

	agents, next, err := s.ListAgents(ctx, "ws_none", "", 10)
	require.NoError(t, err)
	assert.Equal(t, []store.Agent{}, agents, "ListAgents")
	assert.Empty(t, next)
	versions, err := s.ListVersions(ctx, "agt_a", 0, 10)
	require.NoError(t, err)
	assert.Equal(t, []store.Version{}, versions, "ListVersions")
	deployments, err := s.ListDeployments(ctx, "agt_a", 0, 10)
	require.NoError(t, err)
	assert.Equal(t, []store.Deployment{}, deployments, "ListDeployments")
	webhooks, err := s.ListWebhooks(ctx, ws.ID)
	require.NoError(t, err)
	assert.Equal(t, []store.Webhook{}, webhooks, "ListWebhooks")
	deliveries, _, err := s.ListDeliveries(ctx, "wh_none", "", 10)
	require.NoError(t, err)
	assert.Equal(t, []store.Delivery{}, deliveries, "ListDeliveries")
	msgs, err := s.Messages(ctx, "ses_1")
	require.NoError(t, err)
	assert.Equal(t, []store.Message{}, msgs, "Messages")
	counts, err := s.CountSessionsByAgent(ctx, "ws_none")
	require.NoError(t, err)
	assert.Equal(t, map[string]int{}, counts, "CountSessionsByAgent")
	pending, err := s.PendingWebhooks(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[string]time.Time{}, pending, "PendingWebhooks")

	ns, err := s.VersionNumbers(ctx, "agt_a")
	require.NoError(t, err)
	assert.Nil(t, ns, "VersionNumbers")
	keys, err := s.ListKeys(ctx)
	require.NoError(t, err)
	assert.Nil(t, keys, "ListKeys")
	events, last, err := s.EventsAfter(ctx, 0, 10)
	require.NoError(t, err)
	assert.Nil(t, events, "EventsAfter")
	assert.Zero(t, last)
	due, err := s.DueWebhookMessages(ctx, "wh_none", t0, 10)
	require.NoError(t, err)
	assert.Nil(t, due, "DueWebhookMessages")
	fo, err := s.FanOutWebhookEvents(ctx, t0, 10)
	require.NoError(t, err)
	assert.Equal(t, store.WebhookFanOut{}, fo, "FanOutWebhookEvents")
	require.NoError(t, s.Write(ctx, func(tx store.Tx) error { return tx.MarkAgentDeleted(ctx, "agt_a", t0) }))
	ids, err := s.AllAgentIDs(ctx)
	require.NoError(t, err)
	assert.Nil(t, ids, "AllAgentIDs")
}
