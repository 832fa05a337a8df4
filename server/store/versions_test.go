package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// mustVersions inserts versions 1..n of agent id in one transaction.
func mustVersions(tb testing.TB, s *Store, agentID string, n int) {
	tb.Helper()
	ctx := context.Background()
	mustWrite(tb, s, func(tx Tx) error {
		for i := 1; i <= n; i++ {
			if err := tx.InsertVersion(ctx, testVersion(agentID, i)); err != nil {
				return err
			}
		}
		return nil
	})
}

func testVersion(agentID string, n int) Version {
	return Version{
		AgentID: agentID, Number: n, Commit: fmt.Sprintf("c%039d", n), DraftRevision: fmt.Sprintf("d%039d", n),
		Digest: "sha256:" + strings.Repeat("ab", 32), Notes: fmt.Sprintf("notes %d", n), PublishedBy: "key_1",
		CreatedAt: t0.Add(time.Duration(n) * time.Second),
	}
}

func TestListVersionsUsesPrimaryKey(t *testing.T) {
	s := mustOpen(t)
	rows, err := s.db.QueryContext(context.Background(),
		`EXPLAIN QUERY PLAN SELECT `+versionColumns+` FROM versions WHERE agent_id = ? AND number < ? ORDER BY number DESC LIMIT ?`,
		"agt_a", 10, 10)
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &notused, &detail))
		plan = append(plan, detail)
	}
	joined := strings.Join(plan, "; ")
	require.True(t, strings.Contains(joined, "SEARCH versions USING PRIMARY KEY"), "plan=%q, want a primary key range search without a sort", joined)
	require.NotContains(t, joined, "TEMP B-TREE", "plan=%q, want a primary key range search without a sort", joined)
}

// benchmarkListVersions measures one newest-first page of 10 versions of an
// agent that has n versions (10 rows either way, so only the history length
// differs).
func benchmarkListVersions(b *testing.B, n int) {
	s := mustOpen(b, WithSynchronous("OFF")) // setup speed only; reads are unaffected
	ws := mustWorkspace(b, s, "default")
	mustAgent(b, s, ws.ID, "agt_a", t0)
	mustVersions(b, s, "agt_a", n)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		vs, err := s.ListVersions(ctx, "agt_a", 0, 10)
		if err != nil {
			b.Fatal(err)
		}
		if len(vs) != 10 || vs[0].Number != n {
			b.Fatalf("got %d versions starting at %d, want 10 starting at %d", len(vs), vs[0].Number, n)
		}
	}
}

// BenchmarkListVersions10 lists the newest page of an agent with 10 versions.
func BenchmarkListVersions10(b *testing.B) { benchmarkListVersions(b, 10) }

// BenchmarkListVersions10000 lists the newest page of an agent with 10,000
// versions; it should cost about as much as BenchmarkListVersions10.
func BenchmarkListVersions10000(b *testing.B) { benchmarkListVersions(b, 10000) }

// BenchmarkListVersions10000Deep lists a 10-version page deep in the history (before
// v100), still one range scan.
func BenchmarkListVersions10000Deep(b *testing.B) {
	s := mustOpen(b, WithSynchronous("OFF"))
	ws := mustWorkspace(b, s, "default")
	mustAgent(b, s, ws.ID, "agt_a", t0)
	mustVersions(b, s, "agt_a", 10000)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		vs, err := s.ListVersions(ctx, "agt_a", 100, 10)
		if err != nil || len(vs) != 10 || vs[0].Number != 99 {
			b.Fatalf("got %d versions, err=%v; want 10 from v99", len(vs), err)
		}
	}
}
