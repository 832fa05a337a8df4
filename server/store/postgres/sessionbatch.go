package postgres

import (
	"bytes"
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/flowyte/flowyte/server/store"
)

// Session creations share transactions (group commit): while one batch
// commits, the creations that arrive queue up, and the next caller to
// lead inserts up to maxSessionBatch of them with one statement in one
// transaction: one WAL flush for the lot, and one update of each outcome
// counter row they touch instead of one per session, so concurrent
// creations on one version no longer queue on that row's lock for a
// commit each.

// maxSessionBatch bounds how many session creations share a transaction.
const maxSessionBatch = 128

// sessionReq is one queued session creation.
type sessionReq struct {
	ctx context.Context
	s   store.Session
	d   *store.OutcomeDelta
}

// newSessionQueue returns the group-commit queue of CreateSessionCounted:
// batches of distinct ids (the statement must never see one id twice).
func (s *Store) newSessionQueue() *store.GroupCommit[*sessionReq, error] {
	return store.NewGroupCommit(maxSessionBatch, func(r *sessionReq) string { return r.s.ID }, s.runSessionBatch)
}

// CreateSessionCounted creates s and, when d is not nil, adds d to the
// outcome counters in the same transaction: a session is counted exactly
// when it is stored. A duplicate id is ErrConflict and counts nothing.
//
// Concurrent calls share transactions: queued creations are inserted by
// one statement (one round trip, one commit), and the counters they add to
// are updated once per row. Each caller is still told its own outcome: an
// invalid session fails before it is queued, a duplicate id fails only its
// caller, and a batch the server rejects (say, an unknown agent) is run
// again one creation per transaction so only the culprit fails. A batch
// that cannot be committed (the database unreachable) fails all its
// callers; nobody is told success before the commit. ctx bounds the wait
// in the queue; once a creation is in a batch, it is committed or not with
// the others whatever happens to ctx.
func (s *Store) CreateSessionCounted(ctx context.Context, ses store.Session, d *store.OutcomeDelta) error {
	if err := store.CheckSession(ses); err != nil {
		return err
	}
	if d != nil && (d.AgentID == "" || d.Version <= 0) {
		return fmt.Errorf("create session %s: add outcomes: bad agent %q or version %d", ses.ID, d.AgentID, d.Version)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err, ok := s.sessions.Do(ctx, &sessionReq{ctx: ctx, s: ses, d: d})
	if !ok {
		return ctx.Err()
	}
	return err
}

// runSessionBatch inserts batch in one transaction and returns each
// caller's outcome.
func (s *Store) runSessionBatch(batch []*sessionReq) []error {
	errs := make([]error, len(batch))
	inserted, err := s.insertSessions(batch)
	switch {
	case err == nil:
		for i, r := range batch {
			if _, ok := inserted[r.s.ID]; !ok {
				errs[i] = fmt.Errorf("create session %s: %w", r.s.ID, store.ErrConflict)
			}
		}
	case len(batch) > 1 && !unreachable(err):
		// The server refused the batch for what one row holds (an agent
		// or workspace that does not exist, say), and rolled it all back:
		// each creation again on its own, so each caller gets the outcome
		// of its own row.
		for i, r := range batch {
			errs[i] = s.createSessionAlone(r)
		}
	default:
		for i, r := range batch {
			errs[i] = fmt.Errorf("create session %s: %w", r.s.ID, err)
		}
	}
	return errs
}

// createSessionAlone runs one creation in a transaction of its own.
func (s *Store) createSessionAlone(r *sessionReq) error {
	ctx := context.WithoutCancel(r.ctx)
	return s.write(ctx, func(tx *pgTx) error {
		if err := tx.CreateSession(ctx, r.s); err != nil {
			return err
		}
		if r.d == nil {
			return nil
		}
		return tx.AddOutcomes(ctx, *r.d)
	})
}

// createSessionsSQL inserts the sessions of a batch (the arrays $1..$10,
// one element per session) and adds the outcome deltas ($11..$19; an empty
// agent means none) of the rows actually inserted, summed per counter row
// and applied in key order, so two batches never wait on each other's
// rows in opposite orders. It returns the ids inserted: an id missing was
// already taken. The sums are cast back to bigint explicitly (sum of
// bigint is numeric), as engines stricter about assignment casts than
// PostgreSQL (CockroachDB) want.
const createSessionsSQL = `WITH input AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::integer[], $6::integer[],
		$7::text[], $8::integer[], $9::bigint[], $10::bytea[], $11::text[], $12::integer[], $13::bigint[],
		$14::bigint[], $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[])
	AS t (id, workspace_id, agent_id, channel, draft_mode, version, draft_revision, billable, created_at, state,
		d_agent, d_version, d_hour, d_sessions, d_messages, d_fallbacks, d_guardrail_blocks, d_playbooks_completed, d_handoffs)
), ins AS (
	INSERT INTO sessions (` + sessionColumns + `)
	SELECT id, workspace_id, agent_id, channel, draft_mode, version, draft_revision, billable, created_at, state, 0
	FROM input
	ON CONFLICT DO NOTHING
	RETURNING id
), counted AS (
	INSERT INTO outcome_counters AS o (agent_id, version, hour, sessions, messages, fallbacks, guardrail_blocks, playbooks_completed, handoffs)
	SELECT i.d_agent, i.d_version, i.d_hour, sum(i.d_sessions)::bigint, sum(i.d_messages)::bigint,
		sum(i.d_fallbacks)::bigint, sum(i.d_guardrail_blocks)::bigint, sum(i.d_playbooks_completed)::bigint,
		sum(i.d_handoffs)::bigint
	FROM input i JOIN ins ON ins.id = i.id
	WHERE i.d_agent <> ''
	GROUP BY i.d_agent, i.d_version, i.d_hour
	ORDER BY i.d_agent, i.d_version, i.d_hour
	ON CONFLICT (agent_id, version, hour) DO UPDATE SET
	sessions = o.sessions + excluded.sessions, messages = o.messages + excluded.messages,
	fallbacks = o.fallbacks + excluded.fallbacks, guardrail_blocks = o.guardrail_blocks + excluded.guardrail_blocks,
	playbooks_completed = o.playbooks_completed + excluded.playbooks_completed, handoffs = o.handoffs + excluded.handoffs
)
SELECT id FROM ins`

// insertSessions runs createSessionsSQL for batch and returns the ids it
// inserted. The statement is its own transaction: one round trip, and the
// counter rows it updates are locked only until its commit, not for a
// round trip more. A connection found dead (see staleConn) is retried once
// on a fresh one; since the first attempt may have committed before its
// connection died, a session the retry finds taken by a row identical to
// the one asked for counts as inserted (ids are random: no other caller
// makes that row), and its counters were added with it, once.
func (s *Store) insertSessions(batch []*sessionReq) (map[string]struct{}, error) {
	n := len(batch)
	var (
		ids, workspaces, agents, channels, revisions = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		drafts, versions, billables                  = make([]int32, n), make([]int32, n), make([]int32, n)
		createdAt                                    = make([]int64, n)
		states                                       = make([][]byte, n)
		dAgents                                      = make([]string, n)
		dVersions                                    = make([]int32, n)
		dHours, dSessions, dMessages, dFallbacks     = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		dGuardrails, dPlaybooks, dHandoffs           = make([]int64, n), make([]int64, n), make([]int64, n)
	)
	for i, r := range batch {
		ses := r.s
		ids[i], workspaces[i], agents[i], channels[i], revisions[i] = ses.ID, ses.WorkspaceID, ses.AgentID, ses.Channel, ses.DraftRevision
		drafts[i], versions[i], billables[i] = int32(boolInt(ses.DraftMode)), int32(ses.Version), int32(boolInt(ses.Billable))
		createdAt[i], states[i] = toNanos(ses.CreatedAt), ses.State
		if d := r.d; d != nil {
			dAgents[i], dVersions[i], dHours[i] = d.AgentID, int32(d.Version), store.HourOf(d.At)
			dSessions[i], dMessages[i], dFallbacks[i] = int64(d.Sessions), int64(d.Messages), int64(d.Fallbacks)
			dGuardrails[i], dPlaybooks[i], dHandoffs[i] = int64(d.GuardrailBlocks), int64(d.PlaybooksCompleted), int64(d.Handoffs)
		}
	}
	// Not a caller's context: one caller going away must not roll back
	// the others' sessions.
	ctx := context.Background()
	insert := func() (map[string]struct{}, error) {
		rows, err := s.pool.Query(ctx, createSessionsSQL, ids, workspaces, agents, channels, drafts, versions,
			revisions, billables, createdAt, states, dAgents, dVersions, dHours,
			dSessions, dMessages, dFallbacks, dGuardrails, dPlaybooks, dHandoffs)
		if err != nil {
			return nil, err
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, err
		}
		inserted := make(map[string]struct{}, len(got))
		for _, id := range got {
			inserted[id] = struct{}{}
		}
		return inserted, nil
	}
	inserted, err := insert()
	if !staleConn(err) {
		return inserted, wrapError(err)
	}
	s.pool.Reset() // idle connections close now, busy ones when released
	if inserted, err = insert(); err != nil {
		return nil, wrapError(err)
	}
	var taken []*sessionReq
	for _, r := range batch {
		if _, ok := inserted[r.s.ID]; !ok {
			taken = append(taken, r)
		}
	}
	if len(taken) == 0 {
		return inserted, nil
	}
	mine, err := s.storedAsAsked(ctx, taken)
	if err != nil {
		return nil, err
	}
	for _, id := range mine {
		inserted[id] = struct{}{}
	}
	return inserted, nil
}

// storedAsAsked returns the ids of batch whose stored row is exactly the
// session asked for.
func (s *Store) storedAsAsked(ctx context.Context, batch []*sessionReq) ([]string, error) {
	ids := make([]string, len(batch))
	want := make(map[string]store.Session, len(batch))
	for i, r := range batch {
		ids[i] = r.s.ID
		want[r.s.ID] = r.s
	}
	rows, err := s.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, wrapError(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Session, error) { return scanSession(r) })
	if err != nil {
		return nil, err
	}
	var mine []string
	for _, g := range got {
		w := want[g.ID]
		if g.ID == w.ID && g.WorkspaceID == w.WorkspaceID && g.AgentID == w.AgentID && g.Channel == w.Channel &&
			g.DraftMode == w.DraftMode && g.Version == w.Version && g.DraftRevision == w.DraftRevision &&
			g.Billable == w.Billable && toNanos(g.CreatedAt) == toNanos(w.CreatedAt) && bytes.Equal(g.State, w.State) &&
			(g.State == nil) == (w.State == nil) {
			mine = append(mine, g.ID)
		}
	}
	return mine, nil
}
