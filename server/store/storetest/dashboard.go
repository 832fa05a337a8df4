package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store"
)

// dashSession is a session row of key keyID made at created.
func dashSession(token, keyID string, created time.Time) store.DashboardSession {
	h := sha256.Sum256([]byte(token))
	ref := sha256.Sum256([]byte("secret-of-" + keyID))
	return store.DashboardSession{
		TokenHash: h[:], KeyRef: hex.EncodeToString(ref[:]),
		KeyID: keyID, CreatedAt: created, LastSeen: created,
	}
}

func testDashboardSessions(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	d := dashSession("tok-1", "key_1", t0)
	d.KeyRef = "0a1b2c3d"

	_, err := s.DashboardSession(ctx, d.TokenHash)
	require.ErrorIs(t, err, store.ErrNotFound, "before create: err=%v, want ErrNotFound", err)
	require.NoError(t, s.CreateDashboardSession(ctx, d))
	got, err := s.DashboardSession(ctx, d.TokenHash)
	require.NoError(t, err)
	assert.Equal(t, d, got, "read back")
	err = s.CreateDashboardSession(ctx, d)
	assert.ErrorIs(t, err, store.ErrConflict, "same token hash twice: err=%v, want ErrConflict", err)

	// Bad rows are refused, not stored.
	for name, bad := range map[string]store.DashboardSession{
		"short hash": {TokenHash: []byte("short"), KeyRef: "r", KeyID: "key_1", CreatedAt: t0, LastSeen: t0},
		"no ref":     {TokenHash: d.TokenHash[:], KeyID: "key_1", CreatedAt: t0, LastSeen: t0},
		"no key id":  {TokenHash: d.TokenHash[:], KeyRef: "r", CreatedAt: t0, LastSeen: t0},
	} {
		assert.Error(t, s.CreateDashboardSession(ctx, bad), "%s: got nil error, want one", name)
	}

	// Touch moves LastSeen forward only.
	later := t0.Add(5 * time.Minute)
	require.NoError(t, s.TouchDashboardSession(ctx, d.TokenHash, later))
	require.NoError(t, s.TouchDashboardSession(ctx, d.TokenHash, t0.Add(time.Minute)), "an older touch")
	got, err = s.DashboardSession(ctx, d.TokenHash)
	require.NoError(t, err)
	assert.True(t, got.LastSeen.Equal(later), "LastSeen=%v, want %v (never moved back)", got.LastSeen, later)
	assert.True(t, got.CreatedAt.Equal(t0), "CreatedAt=%v, want %v", got.CreatedAt, t0)

	unknown := sha256.Sum256([]byte("unknown"))
	assert.ErrorIs(t, s.TouchDashboardSession(ctx, unknown[:], later), store.ErrNotFound, "touch unknown")
	assert.ErrorIs(t, s.DeleteDashboardSession(ctx, unknown[:]), store.ErrNotFound, "delete unknown")

	// A session survives a restart.
	s = reopen(t, s)
	got, err = s.DashboardSession(ctx, d.TokenHash)
	require.NoError(t, err, "after reopen")
	assert.Equal(t, "0a1b2c3d", got.KeyRef, "after reopen")

	require.NoError(t, s.DeleteDashboardSession(ctx, d.TokenHash))
	_, err = s.DashboardSession(ctx, d.TokenHash)
	assert.ErrorIs(t, err, store.ErrNotFound, "after delete: err=%v, want ErrNotFound", err)
	assert.ErrorIs(t, s.DeleteDashboardSession(ctx, d.TokenHash), store.ErrNotFound, "second delete")
}

func testDashboardSessionsPrune(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	fresh := dashSession("fresh", "key_1", t0.Add(-time.Hour))
	fresh.LastSeen = t0
	idle := dashSession("idle", "key_1", t0.Add(-2*time.Hour))
	old := dashSession("old", "key_1", t0.Add(-10*24*time.Hour))
	old.LastSeen = t0 // busy, but past its maximum age
	for _, d := range []store.DashboardSession{fresh, idle, old} {
		require.NoError(t, s.CreateDashboardSession(ctx, d))
	}
	n, err := s.PruneDashboardSessions(ctx, t0.Add(-90*time.Minute), t0.Add(-7*24*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 2, n, "pruned")
	_, err = s.DashboardSession(ctx, fresh.TokenHash)
	assert.NoError(t, err, "the fresh session was pruned")
	for name, d := range map[string]store.DashboardSession{"idle": idle, "old": old} {
		_, err = s.DashboardSession(ctx, d.TokenHash)
		assert.ErrorIs(t, err, store.ErrNotFound, "%s session kept: err=%v", name, err)
	}
	n, err = s.PruneDashboardSessions(ctx, t0.Add(-90*time.Minute), t0.Add(-7*24*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 0, n, "second prune")
}

func testDashboardSessionsEndWithTheirKey(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "default")
	for _, id := range []string{"key_1", "key_2"} {
		k := store.Key{ID: id, WorkspaceID: ws.ID, Name: id, CreatedAt: t0}
		mustWrite(t, s, func(tx store.Tx) error { return tx.CreateKey(ctx, k, []byte("hash-"+id)) })
	}
	a1, a2 := dashSession("a1", "key_1", t0), dashSession("a2", "key_1", t0)
	b := dashSession("b", "key_2", t0)
	for _, d := range []store.DashboardSession{a1, a2, b} {
		require.NoError(t, s.CreateDashboardSession(ctx, d))
	}
	require.NoError(t, s.RevokeKey(ctx, "key_1", t0.Add(time.Minute)))
	for name, d := range map[string]store.DashboardSession{"a1": a1, "a2": a2} {
		_, err := s.DashboardSession(ctx, d.TokenHash)
		assert.ErrorIs(t, err, store.ErrNotFound, "session %s of the revoked key: err=%v, want ErrNotFound", name, err)
	}
	_, err := s.DashboardSession(ctx, b.TokenHash)
	assert.NoError(t, err, "the other key's session")
}
