package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store"
)

// testTraffic: channel modes, channel deployments and outcome counters.
func testTraffic(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "traffic")
	mustAgent(t, s, ws.ID, "agt_t", t0)

	chans, err := s.Channels(ctx, "agt_t")
	require.NoError(t, err)
	assert.Empty(t, chans, "every channel follows at first")
	split := []store.SplitEntry{{Version: 1, Weight: 90}, {Version: 2, Weight: 10}}
	mustWrite(t, s, func(tx store.Tx) error {
		if err := tx.SetChannel(ctx, store.ChannelMode{AgentID: "agt_t", Channel: "phone", Mode: store.ModeSplit, Split: split, UpdatedAt: t0, UpdatedBy: "k"}); err != nil {
			return err
		}
		_, err := tx.InsertDeployment(ctx, store.Deployment{AgentID: "agt_t", At: t0, By: "k", Kind: store.DeploySplit, From: 1, To: 1, Channel: "phone", Split: split})
		return err
	})
	chans, err = s.Channels(ctx, "agt_t")
	require.NoError(t, err)
	require.Len(t, chans, 1)
	assert.Equal(t, split, chans[0].Split)
	assert.Equal(t, store.ModeSplit, chans[0].Mode)
	assert.True(t, t0.Equal(chans[0].UpdatedAt))
	ds, err := s.ListDeployments(ctx, "agt_t", 0, 10)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	assert.Equal(t, "phone", ds[0].Channel)
	assert.Equal(t, split, ds[0].Split)
	err = s.Write(ctx, func(tx store.Tx) error {
		_, err := tx.InsertDeployment(ctx, store.Deployment{AgentID: "agt_t", At: t0, Kind: store.DeployPin, To: 1})
		return err
	})
	assert.Error(t, err, "a pin deployment names its channel")
	mustWrite(t, s, func(tx store.Tx) error { return tx.FollowChannel(ctx, "agt_t", "phone") })
	chans, err = s.Channels(ctx, "agt_t")
	require.NoError(t, err)
	assert.Empty(t, chans)

	hour := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	mustWrite(t, s, func(tx store.Tx) error {
		if err := tx.AddOutcomes(ctx, store.OutcomeDelta{AgentID: "agt_t", Version: 1, At: hour.Add(5 * time.Minute), Sessions: 1, Messages: 2}); err != nil {
			return err
		}
		if err := tx.AddOutcomes(ctx, store.OutcomeDelta{AgentID: "agt_t", Version: 1, At: hour.Add(50 * time.Minute), Messages: 1, Fallbacks: 1}); err != nil {
			return err
		}
		return tx.AddOutcomes(ctx, store.OutcomeDelta{AgentID: "agt_t", Version: 2, At: hour.Add(2 * time.Hour), Sessions: 1, Handoffs: 1})
	})
	out, err := s.Outcomes(ctx, "agt_t", []int{2, 1, 3}, time.Time{}, time.Time{})
	require.NoError(t, err)
	require.Len(t, out, 3)
	assert.Equal(t, store.Outcome{Version: 2, Sessions: 1, Handoffs: 1}, out[0])
	assert.Equal(t, store.Outcome{Version: 1, Sessions: 1, Messages: 3, Fallbacks: 1}, out[1])
	assert.Equal(t, store.Outcome{Version: 3}, out[2])
	out, err = s.Outcomes(ctx, "agt_t", []int{1, 2}, hour.Add(time.Hour), time.Time{})
	require.NoError(t, err)
	assert.Equal(t, int64(0), out[0].Messages, "v1's hour is before from")
	assert.Equal(t, int64(1), out[1].Sessions)
}

// testTestRuns: stored test runs and version test totals.
func testTestRuns(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "runs")
	mustAgent(t, s, ws.ID, "agt_r", t0)
	for i := range 3 {
		mustWrite(t, s, func(tx store.Tx) error {
			return tx.InsertTestRun(ctx, store.TestRun{ID: "run_" + string(rune('a'+i)), AgentID: "agt_r", Target: "draft",
				DraftRevision: "rev", Status: "passed", Total: 2, Passed: 2, DurationMs: 3, CreatedAt: t0, Cases: []byte(`[{"test":"x"}]`)})
		})
	}
	err := s.Write(ctx, func(tx store.Tx) error {
		return tx.InsertTestRun(ctx, store.TestRun{ID: "run_a", AgentID: "agt_r", Target: "draft", Status: "passed", CreatedAt: t0})
	})
	assert.ErrorIs(t, err, store.ErrConflict)
	page, next, err := s.ListTestRuns(ctx, "agt_r", "", 2)
	require.NoError(t, err)
	require.Len(t, page, 2)
	assert.Equal(t, "run_c", page[0].ID, "newest first")
	assert.Nil(t, page[0].Cases, "lists leave the cases out")
	require.NotEmpty(t, next)
	page, next, err = s.ListTestRuns(ctx, "agt_r", next, 2)
	require.NoError(t, err)
	require.Len(t, page, 1)
	assert.Equal(t, "run_a", page[0].ID)
	assert.Empty(t, next)
	r, err := s.TestRun(ctx, "agt_r", "run_b")
	require.NoError(t, err)
	assert.JSONEq(t, `[{"test":"x"}]`, string(r.Cases))
	_, err = s.TestRun(ctx, "agt_other", "run_b")
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, _, err = s.ListTestRuns(ctx, "agt_r", "garbage!", 2)
	assert.ErrorIs(t, err, store.ErrBadCursor)

	mustWrite(t, s, func(tx store.Tx) error {
		if err := tx.InsertVersion(ctx, store.Version{AgentID: "agt_r", Number: 1, Commit: "c1", DraftRevision: "d1", Digest: "sha256:1", CreatedAt: t0}); err != nil {
			return err
		}
		return tx.InsertVersion(ctx, store.Version{AgentID: "agt_r", Number: 2, Commit: "c2", DraftRevision: "d2", Digest: "sha256:2", CreatedAt: t0,
			Tests: &store.TestTotals{Total: 9, Passed: 8, Failed: 1}})
	})
	v1, err := s.Version(ctx, "agt_r", 1)
	require.NoError(t, err)
	assert.Nil(t, v1.Tests)
	v2, err := s.Version(ctx, "agt_r", 2)
	require.NoError(t, err)
	assert.Equal(t, &store.TestTotals{Total: 9, Passed: 8, Failed: 1}, v2.Tests)
}
