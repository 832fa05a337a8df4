package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTestRuns(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "default")
	mustAgent(t, s, ws.ID, "agt_a", t0)
	mustAgent(t, s, ws.ID, "agt_b", t0)
	var ids []string
	mustWrite(t, s, func(tx Tx) error {
		for i := range 5 {
			r := TestRun{ID: NewTestRunID(), AgentID: "agt_a", Target: "draft", DraftRevision: "d1", Status: "passed",
				Total: 2, Passed: 2, DurationMs: int64(i), CreatedAt: t0.Add(time.Duration(i) * time.Second),
				Cases: []byte(`[{"test":"x"}]`)}
			if i == 4 {
				r.Target, r.DraftRevision, r.Version, r.Status, r.Passed, r.Failed = "v3", "", 3, "failed", 1, 1
			}
			if err := tx.InsertTestRun(ctx, r); err != nil {
				return err
			}
			ids = append(ids, r.ID)
		}
		return tx.InsertTestRun(ctx, TestRun{ID: NewTestRunID(), AgentID: "agt_b", Target: "draft", Status: "passed", CreatedAt: t0})
	})

	got, err := s.TestRun(ctx, "agt_a", ids[4])
	require.NoError(t, err)
	assert.Equal(t, TestRun{ID: ids[4], AgentID: "agt_a", Target: "v3", Version: 3, Status: "failed", Total: 2, Passed: 1, Failed: 1,
		DurationMs: 4, CreatedAt: t0.Add(4 * time.Second), Cases: []byte(`[{"test":"x"}]`)}, got)
	_, err = s.TestRun(ctx, "agt_b", ids[4])
	assert.ErrorIs(t, err, ErrNotFound, "another agent's run")

	page, next, err := s.ListTestRuns(ctx, "agt_a", "", 3)
	require.NoError(t, err)
	require.Len(t, page, 3)
	assert.Equal(t, []string{ids[4], ids[3], ids[2]}, []string{page[0].ID, page[1].ID, page[2].ID}, "newest first")
	assert.Nil(t, page[0].Cases, "listed without cases")
	require.NotEmpty(t, next)
	page, next, err = s.ListTestRuns(ctx, "agt_a", next, 3)
	require.NoError(t, err)
	require.Len(t, page, 2)
	assert.Equal(t, ids[0], page[1].ID)
	assert.Empty(t, next)

	for _, bad := range []string{"x", "cnVuLg", "ZGx2LjE"} {
		_, _, err = s.ListTestRuns(ctx, "agt_a", bad, 3)
		assert.ErrorIs(t, err, ErrBadCursor, bad)
	}
	err = s.Write(ctx, func(tx Tx) error { return tx.InsertTestRun(ctx, TestRun{ID: ids[0], AgentID: "agt_a", CreatedAt: t0}) })
	assert.ErrorIs(t, err, ErrConflict)
}

func TestVersionTests(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "default")
	mustAgent(t, s, ws.ID, "agt_a", t0)
	v1, v2 := testVersion("agt_a", 1), testVersion("agt_a", 2)
	v2.Tests = &TestTotals{Total: 5, Passed: 4, Failed: 1}
	mustWrite(t, s, func(tx Tx) error {
		if err := tx.InsertVersion(ctx, v1); err != nil {
			return err
		}
		return tx.InsertVersion(ctx, v2)
	})
	got, err := s.Version(ctx, "agt_a", 1)
	require.NoError(t, err)
	assert.Nil(t, got.Tests, "no tests: NULL")
	got, err = s.Version(ctx, "agt_a", 2)
	require.NoError(t, err)
	assert.Equal(t, &TestTotals{Total: 5, Passed: 4, Failed: 1}, got.Tests)
	vs, err := s.ListVersions(ctx, "agt_a", 0, 10)
	require.NoError(t, err)
	require.Len(t, vs, 2)
	assert.Equal(t, v2.Tests, vs[0].Tests)
}
