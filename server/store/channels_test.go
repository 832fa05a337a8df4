package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestChannelModes(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "default")
	mustAgent(t, s, ws.ID, "agt_a", t0)
	mustAgent(t, s, ws.ID, "agt_b", t0)

	got, err := s.Channels(ctx, "agt_a")
	require.NoError(t, err)
	assert.Empty(t, got, "every channel follows at first")

	pin := ChannelMode{AgentID: "agt_a", Channel: "phone", Mode: ModePin, Split: []SplitEntry{{Version: 2, Weight: 100}}, UpdatedAt: t0, UpdatedBy: "k"}
	spl := ChannelMode{AgentID: "agt_a", Channel: "chat", Mode: ModeSplit, Split: []SplitEntry{{1, 90}, {2, 10}}, UpdatedAt: t0, UpdatedBy: "k"}
	mustWrite(t, s, func(tx Tx) error {
		if err := tx.SetChannel(ctx, pin); err != nil {
			return err
		}
		return tx.SetChannel(ctx, spl)
	})
	got, err = s.Channels(ctx, "agt_a")
	require.NoError(t, err)
	assert.Equal(t, []ChannelMode{spl, pin}, got)
	other, err := s.Channels(ctx, "agt_b")
	require.NoError(t, err)
	assert.Empty(t, other, "another agent's channels")

	spl.Split = []SplitEntry{{1, 50}, {2, 50}}
	mustWrite(t, s, func(tx Tx) error {
		if err := tx.SetChannel(ctx, spl); err != nil {
			return err
		}
		return tx.FollowChannel(ctx, "agt_a", "phone")
	})
	got, err = s.Channels(ctx, "agt_a")
	require.NoError(t, err)
	assert.Equal(t, []ChannelMode{spl}, got, "the split replaced, the pin gone")

	for _, bad := range []ChannelMode{
		{AgentID: "agt_a", Channel: "chat", Mode: ModePin, Split: []SplitEntry{{1, 50}, {2, 50}}, UpdatedAt: t0},
		{AgentID: "agt_a", Channel: "chat", Mode: ModeSplit, Split: []SplitEntry{{1, 100}}, UpdatedAt: t0},
		{AgentID: "agt_a", Channel: "chat", Mode: ModeFollow, UpdatedAt: t0},
		{AgentID: "agt_a", Channel: "sms", Mode: ModePin, Split: []SplitEntry{{1, 100}}, UpdatedAt: t0},
	} {
		err := s.Write(ctx, func(tx Tx) error { return tx.SetChannel(ctx, bad) })
		assert.Error(t, err, "%+v", bad)
	}
}

func TestChannelDeployments(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "default")
	mustAgent(t, s, ws.ID, "agt_a", t0)
	in := []Deployment{
		{AgentID: "agt_a", At: t0, By: "k", Kind: DeployPublish, To: 1},
		{AgentID: "agt_a", At: t0, By: "k", Kind: DeploySplit, From: 1, To: 1, Channel: "chat", Split: []SplitEntry{{1, 60}, {2, 40}}},
		{AgentID: "agt_a", At: t0, By: "k", Kind: DeployPin, From: 1, To: 2, Channel: "phone"},
		{AgentID: "agt_a", At: t0, By: "k", Kind: DeployFollow, From: 2, To: 1, Channel: "phone"},
	}
	mustWrite(t, s, func(tx Tx) error {
		for i := range in {
			id, err := tx.InsertDeployment(ctx, in[i])
			if err != nil {
				return err
			}
			in[i].ID = id
		}
		return nil
	})
	got, err := s.ListDeployments(ctx, "agt_a", 0, 10)
	require.NoError(t, err)
	assert.Equal(t, []Deployment{in[3], in[2], in[1], in[0]}, got)

	for _, bad := range []Deployment{
		{AgentID: "agt_a", Kind: DeployPin, To: 1},                                           // no channel
		{AgentID: "agt_a", Kind: DeploySplit, To: 1, Channel: "chat"},                        // no split
		{AgentID: "agt_a", Kind: DeployPin, To: 1, Channel: "chat", Split: []SplitEntry{{}}}, // a split on a pin
		{AgentID: "agt_a", Kind: DeployPublish, To: 1, Channel: "chat"},                      // a channel on a publish
	} {
		err := s.Write(ctx, func(tx Tx) error { _, err := tx.InsertDeployment(ctx, bad); return err })
		assert.Error(t, err, "%+v", bad)
	}
}

// TestTrafficMigrationKeepsDeploymentIDs applies the migrations before
// 0006 by hand, records deployments (one deleted, so the AUTOINCREMENT
// high-water mark is above the largest id), then opens the store: the
// rebuilt table keeps every id and never reuses the deleted one.
func TestTrafficMigrationKeepsDeploymentIDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flowyte.db")
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT`)
	require.NoError(t, err)
	ms, err := migrations()
	require.NoError(t, err)
	for _, m := range ms {
		if m.Name >= "0006" {
			break
		}
		_, err := db.ExecContext(ctx, m.SQL)
		require.NoError(t, err, m.Name)
		_, err = db.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (?, 0)`, m.Name)
		require.NoError(t, err)
	}
	for _, q := range []string{
		`INSERT INTO workspaces VALUES ('ws', 'default', 0)`,
		`INSERT INTO agents (id, workspace_id, name, created_at, draft_updated_at) VALUES ('agt_a', 'ws', 'a', 0, 0)`,
		`INSERT INTO deployments (agent_id, at, actor, kind, to_version) VALUES ('agt_a', 1, 'k', 'publish', 1)`,
		`INSERT INTO deployments (agent_id, at, actor, kind, from_version, to_version) VALUES ('agt_a', 2, 'k', 'publish', 1, 2)`,
		`INSERT INTO deployments (agent_id, at, actor, kind, from_version, to_version) VALUES ('agt_a', 3, 'k', 'rollback', 2, 1)`,
		`DELETE FROM deployments WHERE id = 3`,
	} {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	require.NoError(t, db.Close())

	s := mustOpenPath(t, path)
	got, err := s.ListDeployments(ctx, "agt_a", 0, 10)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, []int64{2, 1}, []int64{got[0].ID, got[1].ID})
	assert.Equal(t, DeployPublish, got[0].Kind)
	assert.Equal(t, 2, got[0].To)
	var id int64
	mustWrite(t, s, func(tx Tx) error {
		var err error
		id, err = tx.InsertDeployment(ctx, Deployment{AgentID: "agt_a", At: t0, Kind: DeployFollow, To: 1, Channel: "chat"})
		return err
	})
	assert.Equal(t, int64(4), id, "the deleted id 3 is not reused")
}

func TestOutcomeCounters(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "default")
	mustAgent(t, s, ws.ID, "agt_a", t0)
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	mustWrite(t, s, func(tx Tx) error {
		for _, d := range []OutcomeDelta{
			{AgentID: "agt_a", Version: 1, At: base.Add(5 * time.Minute), Sessions: 1},
			{AgentID: "agt_a", Version: 1, At: base.Add(10 * time.Minute), Messages: 1, Fallbacks: 1},
			{AgentID: "agt_a", Version: 1, At: base.Add(70 * time.Minute), Messages: 1, GuardrailBlocks: 1},
			{AgentID: "agt_a", Version: 2, At: base.Add(3 * time.Hour), Sessions: 1, Messages: 2, PlaybooksCompleted: 1, Handoffs: 1},
			{AgentID: "agt_b", Version: 1, At: base, Sessions: 7},
		} {
			if err := tx.AddOutcomes(ctx, d); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     []Outcome
	}{
		{"all time", time.Time{}, time.Time{}, []Outcome{
			{Version: 2, Sessions: 1, Messages: 2, PlaybooksCompleted: 1, Handoffs: 1},
			{Version: 1, Sessions: 1, Messages: 2, Fallbacks: 1, GuardrailBlocks: 1},
			{Version: 3},
		}},
		{"first hour, widened", base.Add(30 * time.Minute), base.Add(50 * time.Minute), []Outcome{
			{Version: 2}, {Version: 1, Sessions: 1, Messages: 1, Fallbacks: 1}, {Version: 3},
		}},
		{"to on the hour excludes that hour", base, base.Add(time.Hour), []Outcome{
			{Version: 2}, {Version: 1, Sessions: 1, Messages: 1, Fallbacks: 1}, {Version: 3},
		}},
		{"from the second hour", base.Add(time.Hour), time.Time{}, []Outcome{
			{Version: 2, Sessions: 1, Messages: 2, PlaybooksCompleted: 1, Handoffs: 1},
			{Version: 1, Messages: 1, GuardrailBlocks: 1}, {Version: 3},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Outcomes(ctx, "agt_a", []int{2, 1, 3}, tc.from, tc.to)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	err := s.Write(ctx, func(tx Tx) error { return tx.AddOutcomes(ctx, OutcomeDelta{AgentID: "agt_a"}) })
	assert.Error(t, err, "version 0 is refused")
}

// TestAppendTurnCountedIsAtomic: a turn refused for a stale lastSeq
// counts nothing; a stored one counts once.
func TestAppendTurnCountedIsAtomic(t *testing.T) {
	s := mustOpen(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "default")
	mustAgent(t, s, ws.ID, "agt_a", t0)
	mustWrite(t, s, func(tx Tx) error {
		return tx.CreateSession(ctx, Session{ID: "ses_1", WorkspaceID: ws.ID, AgentID: "agt_a", Channel: "chat", Version: 1, Billable: true, CreatedAt: t0})
	})
	d := OutcomeDelta{AgentID: "agt_a", Version: 1, At: t0, Messages: 1, Fallbacks: 1}
	require.NoError(t, s.AppendTurnCounted(ctx, "ses_1", 0, Message{Text: "hi"}, Message{Text: "hello"}, nil, d))
	err := s.AppendTurnCounted(ctx, "ses_1", 0, Message{Text: "hi"}, Message{Text: "hello"}, nil, d)
	assert.True(t, errors.Is(err, ErrConflict), "stale lastSeq: %v", err)
	got, err := s.Outcomes(ctx, "agt_a", []int{1}, time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, []Outcome{{Version: 1, Messages: 1, Fallbacks: 1}}, got)
}
