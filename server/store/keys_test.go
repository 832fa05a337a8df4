package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestEnsureWorkspace(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	if _, err := s.WorkspaceByName(ctx, "default"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("WorkspaceByName before create: err=%v, want ErrNotFound", err)
	}
	w1 := mustWorkspace(t, s, "default")
	if len(w1.ID) != len("ws_")+16 || w1.ID[:3] != "ws_" || w1.Name != "default" || !w1.CreatedAt.Equal(t0) {
		t.Fatalf("workspace=%+v, want ws_<16> named default created %v", w1, t0)
	}
	w2 := mustWorkspace(t, s, "default")
	if w2 != w1 {
		t.Fatalf("second EnsureWorkspace=%+v, want the first %+v", w2, w1)
	}
	other := mustWorkspace(t, s, "other")
	if other.ID == w1.ID {
		t.Fatalf("two workspaces share id %s", w1.ID)
	}
	got, err := s.WorkspaceByName(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	if got != w1 {
		t.Fatalf("WorkspaceByName=%+v, want %+v", got, w1)
	}
}

func TestKeys(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "default")
	if n, err := s.CountKeys(ctx); err != nil || n != 0 {
		t.Fatalf("CountKeys=%d,%v, want 0", n, err)
	}
	k := Key{ID: "key_1", WorkspaceID: ws.ID, Name: "ci", Scopes: []string{"agents:write", "keys:write"}, CreatedAt: t0}
	hash := []byte("0123456789abcdef0123456789abcdef")
	mustWrite(t, s, func(tx Tx) error { return tx.CreateKey(ctx, k, hash) })

	got, err := s.KeyByHash(ctx, hash)
	if err != nil {
		t.Fatal(err)
	}
	want := k
	want.WorkspaceName = "default"
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("KeyByHash=%+v, want %+v", got, want)
	}
	if _, err := s.KeyByHash(ctx, []byte("nope")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("KeyByHash(unknown): err=%v, want ErrNotFound", err)
	}

	// Duplicate hash and duplicate id are conflicts.
	err = s.Write(ctx, func(tx Tx) error {
		return tx.CreateKey(ctx, Key{ID: "key_2", WorkspaceID: ws.ID, CreatedAt: t0}, hash)
	})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate hash: err=%v, want ErrConflict", err)
	}
	err = s.Write(ctx, func(tx Tx) error {
		return tx.CreateKey(ctx, Key{ID: "key_1", WorkspaceID: ws.ID, CreatedAt: t0}, []byte("other"))
	})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate id: err=%v, want ErrConflict", err)
	}
	err = s.Write(ctx, func(tx Tx) error {
		return tx.CreateKey(ctx, Key{ID: "key_3", WorkspaceID: ws.ID, Scopes: []string{"a b"}, CreatedAt: t0}, []byte("x"))
	})
	if err == nil {
		t.Fatal("scope with a space: got nil error, want one")
	}

	k2 := Key{ID: "key_2", WorkspaceID: ws.ID, Name: "second", CreatedAt: t0.Add(time.Second)}
	mustWrite(t, s, func(tx Tx) error { return tx.CreateKey(ctx, k2, []byte("hash2")) })
	keys, err := s.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].ID != "key_1" || keys[1].ID != "key_2" {
		t.Fatalf("ListKeys=%+v, want key_1, key_2", keys)
	}
	if keys[1].Scopes != nil {
		t.Fatalf("no scopes read back as %#v, want nil", keys[1].Scopes)
	}
	if n, err := s.CountKeys(ctx); err != nil || n != 2 {
		t.Fatalf("CountKeys=%d,%v, want 2", n, err)
	}

	// Revoke: sets revoked_at once; unknown id is ErrNotFound.
	revokedAt := t0.Add(time.Hour)
	if err := s.RevokeKey(ctx, "key_1", revokedAt); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeKey(ctx, "key_1", revokedAt.Add(time.Hour)); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	got, err = s.KeyByHash(ctx, hash)
	if err != nil {
		t.Fatalf("KeyByHash of a revoked key: %v", err)
	}
	if got.RevokedAt == nil || !got.RevokedAt.Equal(revokedAt) {
		t.Fatalf("RevokedAt=%v, want %v", got.RevokedAt, revokedAt)
	}
	if err := s.RevokeKey(ctx, "key_missing", revokedAt); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RevokeKey(unknown): err=%v, want ErrNotFound", err)
	}
	if n, err := s.CountKeys(ctx); err != nil || n != 2 {
		t.Fatalf("CountKeys after revoke=%d,%v, want 2 (revoked keys count)", n, err)
	}
}

func TestTouchKey(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "default")
	hash := []byte("h")
	mustWrite(t, s, func(tx Tx) error {
		return tx.CreateKey(ctx, Key{ID: "key_1", WorkspaceID: ws.ID, CreatedAt: t0}, hash)
	})
	lastUsed := func() *time.Time {
		t.Helper()
		k, err := s.KeyByHash(ctx, hash)
		if err != nil {
			t.Fatal(err)
		}
		return k.LastUsedAt
	}
	if got := lastUsed(); got != nil {
		t.Fatalf("LastUsedAt before touch=%v, want nil", got)
	}
	steps := []struct {
		at   time.Time
		want time.Time
	}{
		{t0, t0},                       // first use recorded
		{t0.Add(30 * time.Second), t0}, // within a minute: skipped
		{t0.Add(61 * time.Second), t0.Add(61 * time.Second)}, // later: recorded
	}
	for i, st := range steps {
		if err := s.TouchKey(ctx, "key_1", st.at); err != nil {
			t.Fatalf("step %d: TouchKey: %v", i, err)
		}
		if got := lastUsed(); got == nil || !got.Equal(st.want) {
			t.Fatalf("step %d: LastUsedAt=%v, want %v", i, got, st.want)
		}
	}
	if err := s.TouchKey(ctx, "key_missing", t0); err != nil {
		t.Fatalf("TouchKey(unknown)=%v, want nil (best effort)", err)
	}
}

func TestKeysStampChangesOnEveryRevocation(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	seen := map[string]bool{s.KeysStamp(): true}
	for i := range 5 {
		k := Key{ID: fmt.Sprintf("key_stamp%d", i), Name: "k", Scopes: []string{"agents:read"}, CreatedAt: time.Now()}
		if err := s.Write(ctx, func(tx Tx) error {
			ws, err := tx.EnsureWorkspace(ctx, "w", time.Now())
			if err != nil {
				return err
			}
			k.WorkspaceID = ws.ID
			return tx.CreateKey(ctx, k, []byte(k.ID))
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeKey(ctx, k.ID, time.Unix(1, 0)); err != nil { // same content every time
			t.Fatal(err)
		}
		st := s.KeysStamp()
		if seen[st] {
			t.Fatalf("revocation %d left the stamp at %q, seen before", i, st)
		}
		seen[st] = true
	}
}
