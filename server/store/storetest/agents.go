package storetest

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/flowyte/flowyte/server/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testAgentCRUD(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "default")
	other := mustWorkspace(t, s, "other")
	a := mustAgent(t, s, ws.ID, "agt_a", t0)

	got, err := s.Agent(ctx, ws.ID, "agt_a")
	require.NoError(t, err)
	require.Equal(t, a, got, "Agent=%+v, want %+v", got, a)
	_, err = s.Agent(ctx, other.ID, "agt_a")
	require.ErrorIs(t, err, store.ErrNotFound, "Agent from another workspace: err=%v, want ErrNotFound", err)
	_, err = s.Agent(ctx, ws.ID, "agt_missing")
	require.ErrorIs(t, err, store.ErrNotFound, "Agent(unknown): err=%v, want ErrNotFound", err)
	got, err = s.AgentByID(ctx, "agt_a")
	require.NoError(t, err, "AgentByID=%+v,%v, want agt_a", got, err)
	require.Equal(t, "agt_a", got.ID, "AgentByID=%+v,%v, want agt_a", got, err)

	// Duplicate id.
	err = s.Write(ctx, func(tx store.Tx) error { return tx.CreateAgent(ctx, a) })
	require.ErrorIs(t, err, store.ErrConflict, "duplicate agent: err=%v, want ErrConflict", err)

	// Draft, publish state and metadata.
	at := t0.Add(time.Minute)
	mustWrite(t, s, func(tx store.Tx) error {
		if err := tx.SetDraft(ctx, "agt_a", "rev1", at); err != nil {
			return err
		}
		if err := tx.SetPublished(ctx, "agt_a", 2, 3); err != nil {
			return err
		}
		if err := tx.UpdateAgentMeta(ctx, "agt_a", "renamed", "new desc"); err != nil {
			return err
		}
		// Reads inside the write see the uncommitted changes.
		in, err := tx.AgentByID(ctx, "agt_a")
		if err != nil {
			return err
		}
		if in.DraftRevision != "rev1" {
			return fmt.Errorf("tx.AgentByID draft=%q, want rev1", in.DraftRevision)
		}
		return nil
	})
	got, err = s.AgentByID(ctx, "agt_a")
	require.NoError(t, err)
	want := a
	want.DraftRevision, want.DraftUpdatedAt = "rev1", at
	want.Published, want.Latest = 2, 3
	want.Name, want.Description = "renamed", "new desc"
	require.Equal(t, want, got, "after updates=%+v, want %+v", got, want)
	err = s.Write(ctx, func(tx store.Tx) error { return tx.SetPublished(ctx, "agt_a", 4, 3) })
	require.Error(t, err, "SetPublished(published > latest): got nil error, want one")

	// Updates of an unknown agent are ErrNotFound.
	for name, fn := range map[string]func(tx store.Tx) error{
		"SetDraft":         func(tx store.Tx) error { return tx.SetDraft(ctx, "agt_missing", "r", at) },
		"SetPublished":     func(tx store.Tx) error { return tx.SetPublished(ctx, "agt_missing", 1, 1) },
		"UpdateAgentMeta":  func(tx store.Tx) error { return tx.UpdateAgentMeta(ctx, "agt_missing", "n", "d") },
		"MarkAgentDeleted": func(tx store.Tx) error { return tx.MarkAgentDeleted(ctx, "agt_missing", at) },
	} {
		err := s.Write(ctx, fn)
		assert.ErrorIs(t, err, store.ErrNotFound, "%s(unknown): err=%v, want ErrNotFound", name, err)
	}

	// Delete hides the agent everywhere.
	mustAgent(t, s, ws.ID, "agt_b", t0.Add(time.Second))
	mustWrite(t, s, func(tx store.Tx) error { return tx.MarkAgentDeleted(ctx, "agt_a", at) })
	_, err = s.Agent(ctx, ws.ID, "agt_a")
	require.ErrorIs(t, err, store.ErrNotFound, "Agent after delete: err=%v, want ErrNotFound", err)
	_, err = s.AgentByID(ctx, "agt_a")
	require.ErrorIs(t, err, store.ErrNotFound, "AgentByID after delete: err=%v, want ErrNotFound", err)
	err = s.Write(ctx, func(tx store.Tx) error { return tx.MarkAgentDeleted(ctx, "agt_a", at) })
	require.ErrorIs(t, err, store.ErrNotFound, "second delete: err=%v, want ErrNotFound", err)
	err = s.Write(ctx, func(tx store.Tx) error { return tx.SetDraft(ctx, "agt_a", "r", at) })
	require.ErrorIs(t, err, store.ErrNotFound, "SetDraft after delete: err=%v, want ErrNotFound", err)
	ids, err := s.AllAgentIDs(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"agt_b"}, ids, "AllAgentIDs=%v, want [agt_b]", ids)
	deleted, err := s.AgentDeleted(ctx, "agt_a")
	require.NoError(t, err)
	assert.True(t, deleted, "agt_a is marked deleted")
	deleted, err = s.AgentDeleted(ctx, "agt_b")
	require.NoError(t, err)
	assert.False(t, deleted, "agt_b is live")
	deleted, err = s.AgentDeleted(ctx, "agt_never")
	require.NoError(t, err)
	assert.False(t, deleted, "an unknown id is not deleted")
	list, _, err := s.ListAgents(ctx, ws.ID, "", 10)
	require.NoError(t, err)
	require.Len(t, list, 1, "ListAgents after delete=%v, want only agt_b", list)
	require.Equal(t, "agt_b", list[0].ID, "ListAgents after delete=%v, want only agt_b", list)
}

func testListAgentsPagination(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "default")
	other := mustWorkspace(t, s, "other")
	mustAgent(t, s, other.ID, "agt_other", t0)

	// 120 agents; every third pair shares a created_at, so the id breaks ties.
	want := make([]string, 0, 120)
	mustWrite(t, s, func(tx store.Tx) error {
		for i := range 120 {
			id := fmt.Sprintf("agt_%03d", 119-i) // ids run against time order
			at := t0.Add(time.Duration(i/3) * time.Millisecond)
			if err := tx.CreateAgent(ctx, store.Agent{ID: id, WorkspaceID: ws.ID, CreatedAt: at, DraftUpdatedAt: at}); err != nil {
				return err
			}
		}
		return nil
	})
	// Expected order: by created_at, then id.
	for g := range 40 {
		for j := 2; j >= 0; j-- {
			want = append(want, fmt.Sprintf("agt_%03d", 119-(3*g+j)))
		}
	}
	var (
		got    []string
		cursor string
		pages  int
	)
	for {
		page, next, err := s.ListAgents(ctx, ws.ID, cursor, 50)
		require.NoError(t, err)
		pages++
		require.LessOrEqual(t, len(page), 50, "page %d has %d agents, want <= 50", pages, len(page))
		for _, a := range page {
			got = append(got, a.ID)
		}
		if next == "" {
			break
		}
		require.LessOrEqual(t, pages, 10, "pagination does not end")
		cursor = next
	}
	assert.EqualValues(t, 3, pages, "pages=%d, want 3", pages)
	require.Equal(t, want, got, "paged ids=%v, want %v", got, want)

	// Exactly one page: no next cursor.
	page, next, err := s.ListAgents(ctx, other.ID, "", 1)
	require.NoError(t, err, "single page: %d agents, next=%q, err=%v; want 1, \"\", nil", len(page), next, err)
	require.Len(t, page, 1, "single page: %d agents, next=%q, err=%v; want 1, \"\", nil", len(page), next, err)
	require.Equal(t, "", next, "single page: %d agents, next=%q, err=%v; want 1, \"\", nil", len(page), next, err)
	// Default limit.
	page, _, err = s.ListAgents(ctx, ws.ID, "", 0)
	require.NoError(t, err, "limit 0: %d agents, err=%v; want %d", len(page), err, store.DefaultPageSize)
	require.Len(t, page, store.DefaultPageSize, "limit 0: %d agents, err=%v; want %d", len(page), err, store.DefaultPageSize)
}

func testListAgentsBadCursor(t *testing.T, open Opener) {
	s := open(t)
	ws := mustWorkspace(t, s, "default")
	for _, c := range []string{
		"!!!",
		base64.RawURLEncoding.EncodeToString([]byte("no-dot")),
		base64.RawURLEncoding.EncodeToString([]byte("abc.agt_x")),
		base64.RawURLEncoding.EncodeToString([]byte("123.")),
	} {
		_, _, err := s.ListAgents(context.Background(), ws.ID, c, 10)
		assert.ErrorIs(t, err, store.ErrBadCursor, "cursor %q: err=%v, want ErrBadCursor", c, err)
	}
}
