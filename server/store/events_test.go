package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestEvents(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	if es, last, err := s.EventsAfter(ctx, 0, 10); err != nil || len(es) != 0 || last != 0 {
		t.Fatalf("EventsAfter on empty=%v,%d,%v, want none, 0", es, last, err)
	}
	var in []Event
	mustWrite(t, s, func(tx Tx) error {
		for i := range 5 {
			e := Event{
				ID: NewID("evt_"), WorkspaceID: "ws_1", AgentID: "agt_a", Type: "version.published",
				Payload: []byte(fmt.Sprintf(`{"n":%d}`, i)), CreatedAt: t0.Add(time.Duration(i) * time.Second),
				Dedupe: fmt.Sprintf("version.published:agt_a:v%d", i+1),
			}
			if i == 4 {
				e.Dedupe = "" // no dedupe key
			}
			if err := tx.InsertEvent(ctx, e); err != nil {
				return err
			}
			in = append(in, e)
		}
		return nil
	})
	// A second event without dedupe is fine; a duplicate dedupe or id is not.
	mustWrite(t, s, func(tx Tx) error {
		e := Event{ID: NewID("evt_"), WorkspaceID: "ws_1", Type: "draft.updated", Payload: []byte(`{}`), CreatedAt: t0}
		in = append(in, e)
		return tx.InsertEvent(ctx, e)
	})
	err := s.Write(ctx, func(tx Tx) error {
		return tx.InsertEvent(ctx, Event{ID: NewID("evt_"), Type: "x", Dedupe: in[0].Dedupe})
	})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate dedupe: err=%v, want ErrConflict", err)
	}
	err = s.Write(ctx, func(tx Tx) error { return tx.InsertEvent(ctx, Event{ID: in[1].ID, Type: "x"}) })
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate id: err=%v, want ErrConflict", err)
	}

	// All events, in insertion order, with increasing seq.
	var all []Event
	var after int64
	for {
		page, last, err := s.EventsAfter(ctx, after, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			if last != after {
				t.Fatalf("empty page last=%d, want %d", last, after)
			}
			break
		}
		if last != page[len(page)-1].Seq {
			t.Fatalf("last=%d, want the last event's seq %d", last, page[len(page)-1].Seq)
		}
		all = append(all, page...)
		after = last
	}
	if len(all) != len(in) {
		t.Fatalf("got %d events, want %d", len(all), len(in))
	}
	for i, e := range all {
		if i > 0 && e.Seq <= all[i-1].Seq {
			t.Fatalf("seq %d after %d, want increasing", e.Seq, all[i-1].Seq)
		}
		want := in[i]
		want.Seq = e.Seq
		if !reflect.DeepEqual(e, want) {
			t.Fatalf("event %d=%+v, want %+v", i, e, want)
		}
	}

	got, err := s.EventByID(ctx, in[2].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != in[2].ID || string(got.Payload) != string(in[2].Payload) || got.Seq != all[2].Seq {
		t.Fatalf("EventByID=%+v, want %+v", got, all[2])
	}
	if _, err := s.EventByID(ctx, "evt_missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("EventByID(unknown): err=%v, want ErrNotFound", err)
	}
}

// TestEventsRollback checks the outbox shares the caller's transaction: an
// event written in a failed write is never seen.
func TestEventsRollback(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	boom := errors.New("boom")
	err := s.Write(ctx, func(tx Tx) error {
		if err := tx.InsertEvent(ctx, Event{ID: "evt_1", Type: "version.published", Payload: []byte("{}")}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write err=%v, want boom", err)
	}
	if es, _, err := s.EventsAfter(ctx, 0, 10); err != nil || len(es) != 0 {
		t.Fatalf("EventsAfter=%v,%v, want no events after rollback", es, err)
	}
}
