package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/flowyte/flowyte/server/store"
	"github.com/stretchr/testify/require"
)

func testEvents(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	es, last, err := s.EventsAfter(ctx, 0, 10)
	require.NoError(t, err, "EventsAfter on empty", es, last)
	require.Len(t, es, 0, "EventsAfter on empty=%v,%d,%v, want none, 0", es, last, err)
	require.EqualValues(t, 0, last, "EventsAfter on empty=%v,%d,%v, want none, 0", es, last, err)
	var in []store.Event
	mustWrite(t, s, func(tx store.Tx) error {
		for i := range 5 {
			e := store.Event{
				ID: store.NewID("evt_"), WorkspaceID: "ws_1", AgentID: "agt_a", Type: "version.published",
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
	mustWrite(t, s, func(tx store.Tx) error {
		e := store.Event{ID: store.NewID("evt_"), WorkspaceID: "ws_1", Type: "draft.updated", Payload: []byte(`{}`), CreatedAt: t0}
		in = append(in, e)
		return tx.InsertEvent(ctx, e)
	})
	err = s.Write(ctx, func(tx store.Tx) error {
		return tx.InsertEvent(ctx, store.Event{ID: store.NewID("evt_"), Type: "x", Dedupe: in[0].Dedupe})
	})
	require.ErrorIs(t, err, store.ErrConflict, "duplicate dedupe: err=%v, want ErrConflict", err)
	err = s.Write(ctx, func(tx store.Tx) error { return tx.InsertEvent(ctx, store.Event{ID: in[1].ID, Type: "x"}) })
	require.ErrorIs(t, err, store.ErrConflict, "duplicate id: err=%v, want ErrConflict", err)

	// All events, in insertion order, with increasing seq.
	var all []store.Event
	var after int64
	for {
		page, last, err := s.EventsAfter(ctx, after, 4)
		require.NoError(t, err)
		if len(page) == 0 {
			require.Equal(t, after, last, "empty page last=%d, want %d", last, after)
			break
		}
		require.Equal(t, page[len(page)-1].Seq, last, "last=%d, want the last event's seq %d", last, page[len(page)-1].Seq)
		all = append(all, page...)
		after = last
	}
	require.Len(t, all, len(in), "got %d events, want %d", len(all), len(in))
	for i, e := range all {
		if i > 0 {
			require.Greater(t, e.Seq, all[i-1].Seq, "seq not increasing")
		}
		want := in[i]
		want.Seq = e.Seq
		require.Equal(t, want, e, "event %d=%+v, want %+v", i, e, want)
	}

	got, err := s.EventByID(ctx, in[2].ID)
	require.NoError(t, err)
	require.Equal(t, in[2].ID, got.ID, "EventByID=%+v, want %+v", got, all[2])
	require.Equal(t, string(in[2].Payload), string(got.Payload), "EventByID=%+v, want %+v", got, all[2])
	require.Equal(t, all[2].Seq, got.Seq, "EventByID=%+v, want %+v", got, all[2])
	_, err = s.EventByID(ctx, "evt_missing")
	require.ErrorIs(t, err, store.ErrNotFound, "EventByID(unknown): err=%v, want ErrNotFound", err)
}

// TestEventsRollback checks the outbox shares the caller's transaction: an
// event written in a failed write is never seen.
func testEventsRollback(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	boom := errors.New("boom")
	err := s.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertEvent(ctx, store.Event{ID: "evt_1", Type: "version.published", Payload: []byte("{}")}); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom, "Write err=%v, want boom", err)
	es, _, err := s.EventsAfter(ctx, 0, 10)
	require.NoError(t, err, "EventsAfter", es)
	require.Len(t, es, 0, "EventsAfter=%v,%v, want no events after rollback", es, err)
}
