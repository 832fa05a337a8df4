package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flowyte/flowyte/server/store"
	"github.com/stretchr/testify/require"
)

func testEnsureWorkspace(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	_, err := s.WorkspaceByName(ctx, "default")
	require.ErrorIs(t, err, store.ErrNotFound, "WorkspaceByName before create: err=%v, want ErrNotFound", err)
	w1 := mustWorkspace(t, s, "default")
	require.Len(t, w1.ID, len("ws_")+16, "workspace=%+v, want ws_<16> named default created %v", w1, t0)
	require.Equal(t, "ws_", w1.ID[:3], "workspace=%+v, want ws_<16> named default created %v", w1, t0)
	require.Equal(t, "default", w1.Name, "workspace=%+v, want ws_<16> named default created %v", w1, t0)
	require.True(t, w1.CreatedAt.Equal(t0), "workspace=%+v, want ws_<16> named default created %v", w1, t0)
	w2 := mustWorkspace(t, s, "default")
	require.Equal(t, w1, w2, "second EnsureWorkspace=%+v, want the first %+v", w2, w1)
	other := mustWorkspace(t, s, "other")
	require.NotEqual(t, w1.ID, other.ID, "two workspaces share id %s", w1.ID)
	got, err := s.WorkspaceByName(ctx, "default")
	require.NoError(t, err)
	require.Equal(t, w1, got, "WorkspaceByName=%+v, want %+v", got, w1)
}

func testKeys(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "default")
	n, err := s.CountKeys(ctx)
	require.NoError(t, err, "CountKeys=%d,%v, want 0", n, err)
	require.EqualValues(t, 0, n, "CountKeys=%d,%v, want 0", n, err)
	k := store.Key{ID: "key_1", WorkspaceID: ws.ID, Name: "ci", Scopes: []string{"agents:write", "keys:write"}, CreatedAt: t0}
	hash := []byte("0123456789abcdef0123456789abcdef")
	mustWrite(t, s, func(tx store.Tx) error { return tx.CreateKey(ctx, k, hash) })

	got, err := s.KeyByHash(ctx, hash)
	require.NoError(t, err)
	want := k
	want.WorkspaceName = "default"
	require.Equal(t, want, got, "KeyByHash=%+v, want %+v", got, want)
	_, err = s.KeyByHash(ctx, []byte("nope"))
	require.ErrorIs(t, err, store.ErrNotFound, "KeyByHash(unknown): err=%v, want ErrNotFound", err)

	// Duplicate hash and duplicate id are conflicts.
	err = s.Write(ctx, func(tx store.Tx) error {
		return tx.CreateKey(ctx, store.Key{ID: "key_2", WorkspaceID: ws.ID, CreatedAt: t0}, hash)
	})
	require.ErrorIs(t, err, store.ErrConflict, "duplicate hash: err=%v, want ErrConflict", err)
	err = s.Write(ctx, func(tx store.Tx) error {
		return tx.CreateKey(ctx, store.Key{ID: "key_1", WorkspaceID: ws.ID, CreatedAt: t0}, []byte("other"))
	})
	require.ErrorIs(t, err, store.ErrConflict, "duplicate id: err=%v, want ErrConflict", err)
	err = s.Write(ctx, func(tx store.Tx) error {
		return tx.CreateKey(ctx, store.Key{ID: "key_3", WorkspaceID: ws.ID, Scopes: []string{"a b"}, CreatedAt: t0}, []byte("x"))
	})
	require.Error(t, err, "scope with a space: got nil error, want one")

	k2 := store.Key{ID: "key_2", WorkspaceID: ws.ID, Name: "second", CreatedAt: t0.Add(time.Second)}
	mustWrite(t, s, func(tx store.Tx) error { return tx.CreateKey(ctx, k2, []byte("hash2")) })
	keys, err := s.ListKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 2, "ListKeys=%+v, want key_1, key_2", keys)
	require.Equal(t, "key_1", keys[0].ID, "ListKeys=%+v, want key_1, key_2", keys)
	require.Equal(t, "key_2", keys[1].ID, "ListKeys=%+v, want key_1, key_2", keys)
	require.Nil(t, keys[1].Scopes, "no scopes read back as %#v, want nil", keys[1].Scopes)
	n, err = s.CountKeys(ctx)
	require.NoError(t, err, "CountKeys=%d,%v, want 2", n, err)
	require.EqualValues(t, 2, n, "CountKeys=%d,%v, want 2", n, err)

	// Revoke: sets revoked_at once; unknown id is ErrNotFound.
	revokedAt := t0.Add(time.Hour)
	require.NoError(t, s.RevokeKey(ctx, "key_1", revokedAt))
	require.NoError(t, s.RevokeKey(ctx, "key_1", revokedAt.Add(time.Hour)), "second revoke")
	got, err = s.KeyByHash(ctx, hash)
	require.NoError(t, err, "KeyByHash of a revoked key")
	require.NotNil(t, got.RevokedAt, "RevokedAt=%v, want %v", got.RevokedAt, revokedAt)
	require.True(t, got.RevokedAt.Equal(revokedAt), "RevokedAt=%v, want %v", got.RevokedAt, revokedAt)
	err = s.RevokeKey(ctx, "key_missing", revokedAt)
	require.ErrorIs(t, err, store.ErrNotFound, "RevokeKey(unknown): err=%v, want ErrNotFound", err)
	n, err = s.CountKeys(ctx)
	require.NoError(t, err, "CountKeys after revoke=%d,%v, want 2 (revoked keys count)", n, err)
	require.EqualValues(t, 2, n, "CountKeys after revoke=%d,%v, want 2 (revoked keys count)", n, err)
}

func testTouchKey(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "default")
	hash := []byte("h")
	mustWrite(t, s, func(tx store.Tx) error {
		return tx.CreateKey(ctx, store.Key{ID: "key_1", WorkspaceID: ws.ID, CreatedAt: t0}, hash)
	})
	lastUsed := func() *time.Time {
		t.Helper()
		k, err := s.KeyByHash(ctx, hash)
		require.NoError(t, err)
		return k.LastUsedAt
	}
	got := lastUsed()
	require.Nil(t, got, "LastUsedAt before touch=%v, want nil", got)
	steps := []struct {
		at   time.Time
		want time.Time
	}{
		{t0, t0},                       // first use recorded
		{t0.Add(30 * time.Second), t0}, // within a minute: skipped
		{t0.Add(61 * time.Second), t0.Add(61 * time.Second)}, // later: recorded
	}
	for i, st := range steps {
		require.NoError(t, s.TouchKey(ctx, "key_1", st.at), "step %d: TouchKey", i)
		got := lastUsed()
		require.NotNil(t, got, "step %d: LastUsedAt=%v, want %v", i, got, st.want)
		require.True(t, got.Equal(st.want), "step %d: LastUsedAt=%v, want %v", i, got, st.want)
	}
	require.NoError(t, s.TouchKey(ctx, "key_missing", t0), "TouchKey(unknown)")
}

func testKeysStampChangesOnEveryRevocation(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	seen := map[string]bool{s.KeysStamp(): true}
	for i := range 5 {
		k := store.Key{ID: fmt.Sprintf("key_stamp%d", i), Name: "k", Scopes: []string{"agents:read"}, CreatedAt: time.Now()}
		err := s.Write(ctx, func(tx store.Tx) error {
			ws, err := tx.EnsureWorkspace(ctx, "w", time.Now())
			if err != nil {
				return err
			}
			k.WorkspaceID = ws.ID
			return tx.CreateKey(ctx, k, []byte(k.ID))
		})
		require.NoError(t, err)
		require.NoError(t, s.RevokeKey(ctx, k.ID, time.Unix(1, 0))) // same content every time
		st := s.KeysStamp()
		require.False(t, seen[st], "revocation %d left the stamp at %q, seen before", i, st)
		seen[st] = true
	}
}
