package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store"
	"github.com/flowyte/flowyte/server/store/pgtest"
)

// TestStoredAsAsked: after a retried batch, a taken id counts as this
// batch's own only when the stored row is exactly the session asked for.
func TestStoredAsAsked(t *testing.T) {
	s, err := Open(context.Background(), pgtest.Start(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	at := time.Date(2026, 11, 28, 9, 30, 0, 123456789, time.UTC)
	var ws store.Workspace
	require.NoError(t, s.Write(ctx, func(tx store.Tx) error {
		if ws, err = tx.EnsureWorkspace(ctx, "w", at); err != nil {
			return err
		}
		return tx.CreateAgent(ctx, store.Agent{ID: "agt_a", WorkspaceID: ws.ID, Name: "a", CreatedAt: at, DraftUpdatedAt: at})
	}))
	ses := store.Session{ID: store.NewSessionID(), WorkspaceID: ws.ID, AgentID: "agt_a", Channel: "chat", Version: 1, Billable: true, CreatedAt: at, State: []byte(`{}`)}
	require.NoError(t, s.CreateSessionCounted(ctx, ses, nil))

	check := func(asked store.Session) []string {
		t.Helper()
		got, err := s.storedAsAsked(ctx, []*sessionReq{{s: asked}})
		require.NoError(t, err)
		return got
	}
	assert.Equal(t, []string{ses.ID}, check(ses), "the very row asked for")
	other := ses
	other.CreatedAt = at.Add(time.Nanosecond)
	assert.Empty(t, check(other), "another creation time")
	other = ses
	other.State = nil
	assert.Empty(t, check(other), "no state where the row has {}")
	other = ses
	other.Channel = "phone"
	assert.Empty(t, check(other), "another channel")
	other = ses
	other.ID = store.NewSessionID()
	assert.Empty(t, check(other), "an id not stored")
}
