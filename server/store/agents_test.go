package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestAgentCRUD(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "default")
	other := mustWorkspace(t, s, "other")
	a := mustAgent(t, s, ws.ID, "agt_a", t0)

	got, err := s.Agent(ctx, ws.ID, "agt_a")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("Agent=%+v, want %+v", got, a)
	}
	if _, err := s.Agent(ctx, other.ID, "agt_a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Agent from another workspace: err=%v, want ErrNotFound", err)
	}
	if _, err := s.Agent(ctx, ws.ID, "agt_missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Agent(unknown): err=%v, want ErrNotFound", err)
	}
	if got, err := s.AgentByID(ctx, "agt_a"); err != nil || got.ID != "agt_a" {
		t.Fatalf("AgentByID=%+v,%v, want agt_a", got, err)
	}

	// Duplicate id.
	err = s.Write(ctx, func(tx Tx) error { return tx.CreateAgent(ctx, a) })
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate agent: err=%v, want ErrConflict", err)
	}

	// Draft, publish state and metadata.
	at := t0.Add(time.Minute)
	mustWrite(t, s, func(tx Tx) error {
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
	if err != nil {
		t.Fatal(err)
	}
	want := a
	want.DraftRevision, want.DraftUpdatedAt = "rev1", at
	want.Published, want.Latest = 2, 3
	want.Name, want.Description = "renamed", "new desc"
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after updates=%+v, want %+v", got, want)
	}
	err = s.Write(ctx, func(tx Tx) error { return tx.SetPublished(ctx, "agt_a", 4, 3) })
	if err == nil {
		t.Fatal("SetPublished(published > latest): got nil error, want one")
	}

	// Updates of an unknown agent are ErrNotFound.
	for name, fn := range map[string]func(tx Tx) error{
		"SetDraft":         func(tx Tx) error { return tx.SetDraft(ctx, "agt_missing", "r", at) },
		"SetPublished":     func(tx Tx) error { return tx.SetPublished(ctx, "agt_missing", 1, 1) },
		"UpdateAgentMeta":  func(tx Tx) error { return tx.UpdateAgentMeta(ctx, "agt_missing", "n", "d") },
		"MarkAgentDeleted": func(tx Tx) error { return tx.MarkAgentDeleted(ctx, "agt_missing", at) },
	} {
		if err := s.Write(ctx, fn); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s(unknown): err=%v, want ErrNotFound", name, err)
		}
	}

	// Delete hides the agent everywhere.
	mustAgent(t, s, ws.ID, "agt_b", t0.Add(time.Second))
	mustWrite(t, s, func(tx Tx) error { return tx.MarkAgentDeleted(ctx, "agt_a", at) })
	if _, err := s.Agent(ctx, ws.ID, "agt_a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Agent after delete: err=%v, want ErrNotFound", err)
	}
	if _, err := s.AgentByID(ctx, "agt_a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("AgentByID after delete: err=%v, want ErrNotFound", err)
	}
	err = s.Write(ctx, func(tx Tx) error { return tx.MarkAgentDeleted(ctx, "agt_a", at) })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: err=%v, want ErrNotFound", err)
	}
	err = s.Write(ctx, func(tx Tx) error { return tx.SetDraft(ctx, "agt_a", "r", at) })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetDraft after delete: err=%v, want ErrNotFound", err)
	}
	ids, err := s.AllAgentIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ids, []string{"agt_b"}) {
		t.Fatalf("AllAgentIDs=%v, want [agt_b]", ids)
	}
	list, _, err := s.ListAgents(ctx, ws.ID, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != "agt_b" {
		t.Fatalf("ListAgents after delete=%v, want only agt_b", list)
	}
}

func TestListAgentsPagination(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "default")
	other := mustWorkspace(t, s, "other")
	mustAgent(t, s, other.ID, "agt_other", t0)

	// 120 agents; every third pair shares a created_at, so the id breaks ties.
	want := make([]string, 0, 120)
	mustWrite(t, s, func(tx Tx) error {
		for i := range 120 {
			id := fmt.Sprintf("agt_%03d", 119-i) // ids run against time order
			at := t0.Add(time.Duration(i/3) * time.Millisecond)
			if err := tx.CreateAgent(ctx, Agent{ID: id, WorkspaceID: ws.ID, CreatedAt: at, DraftUpdatedAt: at}); err != nil {
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
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page) > 50 {
			t.Fatalf("page %d has %d agents, want <= 50", pages, len(page))
		}
		for _, a := range page {
			got = append(got, a.ID)
		}
		if next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		cursor = next
	}
	if pages != 3 {
		t.Errorf("pages=%d, want 3", pages)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("paged ids=%v, want %v", got, want)
	}

	// Exactly one page: no next cursor.
	page, next, err := s.ListAgents(ctx, other.ID, "", 1)
	if err != nil || len(page) != 1 || next != "" {
		t.Fatalf("single page: %d agents, next=%q, err=%v; want 1, \"\", nil", len(page), next, err)
	}
	// Default limit.
	page, _, err = s.ListAgents(ctx, ws.ID, "", 0)
	if err != nil || len(page) != DefaultPageSize {
		t.Fatalf("limit 0: %d agents, err=%v; want %d", len(page), err, DefaultPageSize)
	}
}

func TestListAgentsBadCursor(t *testing.T) {
	s := mustOpen(t)
	ws := mustWorkspace(t, s, "default")
	for _, c := range []string{
		"!!!",
		base64.RawURLEncoding.EncodeToString([]byte("no-dot")),
		base64.RawURLEncoding.EncodeToString([]byte("abc.agt_x")),
		base64.RawURLEncoding.EncodeToString([]byte("123.")),
	} {
		_, _, err := s.ListAgents(context.Background(), ws.ID, c, 10)
		if !errors.Is(err, ErrBadCursor) {
			t.Errorf("cursor %q: err=%v, want ErrBadCursor", c, err)
		}
	}
}
