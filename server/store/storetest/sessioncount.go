package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store"
)

// testCreateSessionCountedConcurrent: many concurrent creations (which
// engines may commit together) each get their own outcome, and the
// counters add up to exactly the sessions stored.
func testCreateSessionCountedConcurrent(t *testing.T, open Opener) {
	s := open(t)
	ws, _ := sessionFixture(t, s)
	ctx := context.Background()

	// A session that exists before: reusing its id is a conflict.
	taken := store.Session{ID: store.NewSessionID(), WorkspaceID: ws, AgentID: "agt_a", Channel: "chat", Version: 1, Billable: true, CreatedAt: sessionT0}
	require.NoError(t, s.CreateSessionCounted(ctx, taken,
		&store.OutcomeDelta{AgentID: "agt_a", Version: 1, At: sessionT0, Sessions: 1}), "CreateSessionCounted(taken)")

	type call struct {
		ses store.Session
		d   *store.OutcomeDelta
	}
	const n = 200
	var calls []call
	for i := range n {
		at := sessionT0.Add(time.Duration(i) * time.Minute) // spread over 4 hours
		ses := store.Session{ID: store.NewSessionID(), WorkspaceID: ws, AgentID: "agt_a", Channel: "chat", CreatedAt: at, State: []byte(fmt.Sprintf(`{"i":%d}`, i))}
		var d *store.OutcomeDelta
		switch {
		case i%5 == 0:
			ses.DraftMode, ses.DraftRevision = true, "rev"
		case i%7 == 0:
			ses.AgentID, ses.Version, ses.Billable = "agt_b", 1, true
			d = &store.OutcomeDelta{AgentID: "agt_b", Version: 1, At: at, Sessions: 1, Messages: 2}
		default:
			ses.Version, ses.Billable = 1+i%2, true
			d = &store.OutcomeDelta{AgentID: "agt_a", Version: ses.Version, At: at, Sessions: 1}
		}
		calls = append(calls, call{ses, d})
	}
	twin := store.Session{ID: store.NewSessionID(), WorkspaceID: ws, AgentID: "agt_a", Channel: "chat", Version: 2, Billable: true, CreatedAt: sessionT0}
	twinDelta := &store.OutcomeDelta{AgentID: "agt_a", Version: 2, At: sessionT0, Sessions: 1}
	dupOfTaken := taken
	dupOfTaken.CreatedAt = sessionT0.Add(time.Minute)
	unknownAgent := store.Session{ID: store.NewSessionID(), WorkspaceID: ws, AgentID: "agt_nope", Channel: "chat", Version: 1, Billable: true, CreatedAt: sessionT0}
	invalid := store.Session{ID: store.NewSessionID(), WorkspaceID: ws, AgentID: "agt_a", Channel: "chat", Billable: true, CreatedAt: sessionT0} // no version
	odd := []call{
		{twin, twinDelta},
		{twin, twinDelta},
		{dupOfTaken, &store.OutcomeDelta{AgentID: "agt_a", Version: 1, At: sessionT0, Sessions: 1}},
		{unknownAgent, &store.OutcomeDelta{AgentID: "agt_nope", Version: 1, At: sessionT0, Sessions: 1}},
		{invalid, nil},
	}
	// The odd ones in the middle, so they are likely to share a batch.
	calls = append(calls[:n/2], append(odd, calls[n/2:]...)...)

	start := make(chan struct{})
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() {
			<-start
			errs[i] = s.CreateSessionCounted(ctx, c.ses, c.d)
		})
	}
	close(start)
	wg.Wait()

	twins := 0
	want := store.Usage{BillableSessions: 1, ByVersion: map[int]int{1: 1}} // taken
	wantA := map[int]int64{1: 1}
	var wantB store.Outcome
	hourA := map[int64]int64{store.HourOf(sessionT0): 1}
	for i, c := range calls {
		err := errs[i]
		switch c.ses.ID {
		case twin.ID:
			if err == nil {
				twins++
				continue
			}
			assert.ErrorIs(t, err, store.ErrConflict, "the second creation of one id")
			continue
		case taken.ID:
			assert.ErrorIs(t, err, store.ErrConflict, "an id already stored")
			continue
		case unknownAgent.ID:
			assert.Error(t, err, "a session of an unknown agent")
			assert.NotErrorIs(t, err, store.ErrConflict, "an unknown agent is no conflict")
			continue
		case invalid.ID:
			assert.Error(t, err, "a published session without a version")
			continue
		}
		require.NoError(t, err, "CreateSessionCounted(%s)", c.ses.ID)
		got, err := s.Session(ctx, ws, c.ses.ID)
		require.NoError(t, err, "Session(%s)", c.ses.ID)
		assert.Equal(t, c.ses, got, "stored session")
		if c.ses.DraftMode {
			want.DraftSessions++
			continue
		}
		want.BillableSessions++
		want.ByVersion[c.ses.Version]++
		if c.ses.AgentID == "agt_b" {
			wantB.Sessions++
			wantB.Messages += 2
			continue
		}
		wantA[c.ses.Version]++
		hourA[store.HourOf(c.ses.CreatedAt)]++
	}
	assert.Equal(t, 1, twins, "exactly one creation of a repeated id succeeds")
	want.BillableSessions++
	want.ByVersion[2]++ // the twin that won
	wantA[2]++
	hourA[store.HourOf(sessionT0)]++

	u, err := s.Usage(ctx, ws, "", time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, want, u, "Usage counts every session stored, and only those")
	_, err = s.Session(ctx, ws, unknownAgent.ID)
	assert.ErrorIs(t, err, store.ErrNotFound, "the session of an unknown agent is not stored")
	_, err = s.Session(ctx, ws, invalid.ID)
	assert.ErrorIs(t, err, store.ErrNotFound, "an invalid session is not stored")
	got, err := s.Session(ctx, ws, taken.ID)
	require.NoError(t, err)
	assert.True(t, sessionT0.Equal(got.CreatedAt), "a conflicting creation leaves the stored session as it was")

	out, err := s.Outcomes(ctx, "agt_a", []int{1, 2}, time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, wantA[1], out[0].Sessions, "agt_a v1 sessions counted")
	assert.Equal(t, wantA[2], out[1].Sessions, "agt_a v2 sessions counted")
	out, err = s.Outcomes(ctx, "agt_b", []int{1}, time.Time{}, time.Time{})
	require.NoError(t, err)
	wantB.Version = 1
	assert.Equal(t, wantB, out[0], "agt_b v1 counters (sessions and messages)")
	out, err = s.Outcomes(ctx, "agt_nope", []int{1}, time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Zero(t, out[0].Sessions, "a session not stored is not counted")
	for h, k := range hourA {
		from := time.Unix(h*3600, 0).UTC()
		out, err := s.Outcomes(ctx, "agt_a", []int{1, 2}, from, from.Add(time.Hour))
		require.NoError(t, err)
		assert.Equal(t, k, out[0].Sessions+out[1].Sessions, "agt_a sessions counted in the hour from %s", from)
	}
}

// testCreateSessionCountedCancelled: a creation whose context is already
// done stores and counts nothing.
func testCreateSessionCountedCancelled(t *testing.T, open Opener) {
	s := open(t)
	ws, _ := sessionFixture(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ses := store.Session{ID: store.NewSessionID(), WorkspaceID: ws, AgentID: "agt_a", Channel: "chat", Version: 1, Billable: true, CreatedAt: sessionT0}
	err := s.CreateSessionCounted(ctx, ses, &store.OutcomeDelta{AgentID: "agt_a", Version: 1, At: sessionT0, Sessions: 1})
	require.ErrorIs(t, err, context.Canceled)
	bg := context.Background()
	_, err = s.Session(bg, ws, ses.ID)
	assert.ErrorIs(t, err, store.ErrNotFound, "a cancelled creation stores nothing")
	out, err := s.Outcomes(bg, "agt_a", []int{1}, time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Zero(t, out[0].Sessions, "a cancelled creation counts nothing")

	// A bad delta is refused before anything is written.
	err = s.CreateSessionCounted(bg, ses, &store.OutcomeDelta{Version: 1, At: sessionT0, Sessions: 1})
	assert.Error(t, err, "a delta without an agent")
	_, err = s.Session(bg, ws, ses.ID)
	assert.ErrorIs(t, err, store.ErrNotFound, "a refused creation stores nothing")
}

// testCreateSessionCountedGivingUp: callers that give up while their
// creation waits are told so exactly when it was not stored; the others
// are told success exactly when it was, and only those are counted.
func testCreateSessionCountedGivingUp(t *testing.T, open Opener) {
	s := open(t)
	ws, _ := sessionFixture(t, s)
	const n = 300
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		ids[i] = store.NewSessionID()
		wg.Go(func() {
			// Deadlines from already past to some tens of milliseconds.
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%10)*3*time.Millisecond)
			defer cancel()
			ses := store.Session{ID: ids[i], WorkspaceID: ws, AgentID: "agt_a", Channel: "chat", Version: 1, Billable: true, CreatedAt: sessionT0}
			errs[i] = s.CreateSessionCounted(ctx, ses, &store.OutcomeDelta{AgentID: "agt_a", Version: 1, At: sessionT0, Sessions: 1})
		})
	}
	wg.Wait()
	ctx := context.Background()
	stored := 0
	for i, id := range ids {
		_, err := s.Session(ctx, ws, id)
		if errs[i] == nil {
			stored++
			assert.NoError(t, err, "a creation told success is stored")
			continue
		}
		assert.ErrorIs(t, errs[i], context.DeadlineExceeded, "the only failure here is giving up")
		assert.ErrorIs(t, err, store.ErrNotFound, "a creation told it failed is not stored")
	}
	t.Logf("%d of %d stored", stored, n)
	u, err := s.Usage(ctx, ws, "agt_a", time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, stored, u.ByVersion[1], "Usage counts the stored sessions")
	out, err := s.Outcomes(ctx, "agt_a", []int{1}, time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, int64(stored), out[0].Sessions, "the counters count the stored sessions")
}
