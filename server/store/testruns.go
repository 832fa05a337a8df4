package store

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TestRun is one stored run of an agent's conversation tests.
type TestRun struct {
	ID            string // "run_..." (see NewTestRunID)
	AgentID       string
	Target        string // "draft", "published" or "v<n>", as asked
	DraftRevision string // the draft commit run, "" for a version target
	Version       int    // the version run, 0 for the draft
	Status        string // passed | failed
	Total         int
	Passed        int
	Failed        int
	DurationMs    int64
	CreatedAt     time.Time
	// Cases is the JSON array of the run's cases; ListTestRuns leaves it
	// nil.
	Cases []byte
}

// NewTestRunID returns a new test run id: "run_" and 16 random base32
// characters.
func NewTestRunID() string { return NewID("run_") }

const testRunColumns = `id, agent_id, target, draft_revision, version, status, total, passed, failed, duration_ms, created_at`

func scanTestRun(sc scanner, r *TestRun, extra ...any) error {
	var at int64
	dest := append([]any{&r.ID, &r.AgentID, &r.Target, &r.DraftRevision, &r.Version, &r.Status,
		&r.Total, &r.Passed, &r.Failed, &r.DurationMs, &at}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return wrapError(err)
	}
	r.CreatedAt = fromNanos(at)
	return nil
}

// InsertTestRun stores r; an existing id is ErrConflict.
func (tx *sqliteTx) InsertTestRun(ctx context.Context, r TestRun) error {
	if r.ID == "" || r.AgentID == "" {
		return fmt.Errorf("insert test run: bad id %q or agent %q", r.ID, r.AgentID)
	}
	cases := r.Cases
	if cases == nil {
		cases = []byte("[]")
	}
	_, err := tx.q.ExecContext(ctx,
		`INSERT INTO test_runs (`+testRunColumns+`, cases) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.AgentID, r.Target, r.DraftRevision, r.Version, r.Status, r.Total, r.Passed, r.Failed,
		r.DurationMs, toNanos(r.CreatedAt), cases)
	if err != nil {
		return fmt.Errorf("insert test run %s: %w", r.ID, wrapError(err))
	}
	return nil
}

// TestRun returns run id of the agent with its cases, or ErrNotFound.
func (s *Store) TestRun(ctx context.Context, agentID, id string) (TestRun, error) {
	var r TestRun
	err := scanTestRun(s.rdb.QueryRowContext(ctx,
		`SELECT `+testRunColumns+`, cases FROM test_runs WHERE id = ? AND agent_id = ?`, id, agentID), &r, &r.Cases)
	if err != nil {
		return TestRun{}, fmt.Errorf("test run %s: %w", id, err)
	}
	return r, nil
}

// ListTestRuns returns up to limit runs of the agent, newest first,
// without their cases, and the cursor of the next page ("" at the end).
// cursor is a value ListTestRuns returned, or "" for the first page; a
// malformed one is ErrBadCursor.
func (s *Store) ListTestRuns(ctx context.Context, agentID, cursor string, limit int) ([]TestRun, string, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	before, err := DecodeTestRunCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.rdb.QueryContext(ctx,
		`SELECT `+testRunColumns+`, seq FROM test_runs WHERE agent_id = ? AND seq < ?
		 ORDER BY seq DESC LIMIT ?`, agentID, before, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list test runs: %w", err)
	}
	defer rows.Close()
	out := make([]TestRun, 0, min(limit, 256))
	var seq int64
	more := false
	for rows.Next() {
		if len(out) == limit {
			more = true
			break
		}
		var r TestRun
		if err := scanTestRun(rows, &r, &seq); err != nil {
			return nil, "", fmt.Errorf("list test runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list test runs: %w", err)
	}
	next := ""
	if more {
		next = EncodeTestRunCursor(seq)
	}
	return out, next, nil
}

// EncodeTestRunCursor is the page cursor after the run with sequence seq,
// the same on every engine.
func EncodeTestRunCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("run." + strconv.FormatInt(seq, 10)))
}

// DecodeTestRunCursor returns the sequence a cursor lists below (the
// largest one for ""), or ErrBadCursor.
func DecodeTestRunCursor(cursor string) (int64, error) {
	if cursor == "" {
		return 1<<63 - 1, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || !strings.HasPrefix(string(b), "run.") {
		return 0, ErrBadCursor
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(string(b), "run."), 10, 64)
	if err != nil || n <= 0 {
		return 0, ErrBadCursor
	}
	return n, nil
}
