package storetest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowyte/flowyte/server/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mustVersions inserts versions 1..n of agent id in one transaction.
func mustVersions(tb testing.TB, s Engine, agentID string, n int) {
	tb.Helper()
	ctx := context.Background()
	mustWrite(tb, s, func(tx store.Tx) error {
		for i := 1; i <= n; i++ {
			if err := tx.InsertVersion(ctx, testVersion(agentID, i)); err != nil {
				return err
			}
		}
		return nil
	})
}

func testVersion(agentID string, n int) store.Version {
	return store.Version{
		AgentID: agentID, Number: n, Commit: fmt.Sprintf("c%039d", n), DraftRevision: fmt.Sprintf("d%039d", n),
		Digest: "sha256:" + strings.Repeat("ab", 32), Notes: fmt.Sprintf("notes %d", n), PublishedBy: "key_1",
		CreatedAt: t0.Add(time.Duration(n) * time.Second),
	}
}

func testVersions(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "default")
	mustAgent(t, s, ws.ID, "agt_a", t0)
	mustAgent(t, s, ws.ID, "agt_b", t0)
	mustVersions(t, s, "agt_a", 7)
	mustVersions(t, s, "agt_b", 2)

	got, err := s.Version(ctx, "agt_a", 3)
	require.NoError(t, err)
	want := testVersion("agt_a", 3)
	require.Equal(t, want, got, "Version=%+v, want %+v", got, want)
	_, err = s.Version(ctx, "agt_a", 8)
	require.ErrorIs(t, err, store.ErrNotFound, "Version(8): err=%v, want ErrNotFound", err)
	err = s.Write(ctx, func(tx store.Tx) error { return tx.InsertVersion(ctx, testVersion("agt_a", 3)) })
	require.ErrorIs(t, err, store.ErrConflict, "duplicate version: err=%v, want ErrConflict", err)
	mustWrite(t, s, func(tx store.Tx) error {
		v, err := tx.Version(ctx, "agt_b", 2)
		if err != nil || v.Number != 2 {
			return fmt.Errorf("tx.Version=%+v,%v, want v2", v, err)
		}
		ns, err := tx.VersionNumbers(ctx, "agt_b")
		if err != nil || !reflect.DeepEqual(ns, []int{1, 2}) {
			return fmt.Errorf("tx.VersionNumbers=%v,%v, want [1 2]", ns, err)
		}
		return nil
	})

	numbers := func(vs []store.Version) []int {
		out := []int{}
		for _, v := range vs {
			out = append(out, v.Number)
		}
		return out
	}
	pages := []struct {
		before, limit int
		want          []int
	}{
		{0, 3, []int{7, 6, 5}},
		{5, 3, []int{4, 3, 2}},
		{2, 3, []int{1}},
		{1, 3, []int{}},
		{0, 0, []int{7, 6, 5, 4, 3, 2, 1}},
	}
	for _, p := range pages {
		vs, err := s.ListVersions(ctx, "agt_a", p.before, p.limit)
		require.NoError(t, err)
		got := numbers(vs)
		assert.Equal(t, p.want, got, "ListVersions(before=%d, limit=%d)=%v, want %v", p.before, p.limit, got, p.want)
	}
	ns, err := s.VersionNumbers(ctx, "agt_a")
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 3, 4, 5, 6, 7}, ns, "VersionNumbers=%v, want 1..7", ns)
	ns, err = s.VersionNumbers(ctx, "agt_none")
	require.NoError(t, err, "VersionNumbers(no versions)", ns)
	require.Len(t, ns, 0, "VersionNumbers(no versions)=%v,%v, want empty", ns, err)
}

func testDeployments(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	ws := mustWorkspace(t, s, "default")
	mustAgent(t, s, ws.ID, "agt_a", t0)
	mustAgent(t, s, ws.ID, "agt_b", t0)
	_, err := s.LastDeployment(ctx, "agt_a")
	require.ErrorIs(t, err, store.ErrNotFound, "LastDeployment with none: err=%v, want ErrNotFound", err)
	in := []store.Deployment{
		{AgentID: "agt_a", At: t0, By: "key_1", Kind: store.DeployPublish, From: 0, To: 1},
		{AgentID: "agt_b", At: t0, By: "key_1", Kind: store.DeployPublish, From: 0, To: 1},
		{AgentID: "agt_a", At: t0.Add(time.Second), By: "key_1", Kind: store.DeployPublish, From: 1, To: 2},
		{AgentID: "agt_a", At: t0.Add(2 * time.Second), By: "key_2", Kind: store.DeployRollback, From: 2, To: 1},
		{AgentID: "agt_a", At: t0.Add(3 * time.Second), By: "system", Kind: store.DeployRecovered, From: 1, To: 2},
	}
	var ids []int64
	mustWrite(t, s, func(tx store.Tx) error {
		for i := range in {
			id, err := tx.InsertDeployment(ctx, in[i])
			if err != nil {
				return err
			}
			in[i].ID = id
			ids = append(ids, id)
		}
		return nil
	})
	for i := 1; i < len(ids); i++ {
		require.Greater(t, ids[i], ids[i-1], "deployment ids %v not increasing", ids)
	}
	err = s.Write(ctx, func(tx store.Tx) error {
		_, err := tx.InsertDeployment(ctx, store.Deployment{AgentID: "agt_a", Kind: "teleport", To: 1})
		return err
	})
	require.Error(t, err, "bad kind: got nil error, want one")

	last, err := s.LastDeployment(ctx, "agt_a")
	require.NoError(t, err)
	require.Equal(t, in[4], last, "LastDeployment=%+v, want %+v", last, in[4])
	mustWrite(t, s, func(tx store.Tx) error {
		d, err := tx.LastDeployment(ctx, "agt_b")
		if err != nil || d.ID != in[1].ID {
			return fmt.Errorf("tx.LastDeployment=%+v,%v, want id %d", d, err, in[1].ID)
		}
		return nil
	})

	page1, err := s.ListDeployments(ctx, "agt_a", 0, 2)
	require.NoError(t, err)
	require.Equal(t, []store.Deployment{in[4], in[3]}, page1, "page 1=%+v, want the two newest", page1)
	page2, err := s.ListDeployments(ctx, "agt_a", page1[1].ID, 2)
	require.NoError(t, err)
	require.Equal(t, []store.Deployment{in[2], in[0]}, page2, "page 2=%+v, want the two oldest of agt_a", page2)
	page3, err := s.ListDeployments(ctx, "agt_a", page2[1].ID, 2)
	require.NoError(t, err, "page 3=%+v,%v, want empty", page3, err)
	require.Len(t, page3, 0, "page 3=%+v,%v, want empty", page3, err)
}
