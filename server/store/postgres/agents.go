package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flowyte/flowyte/server/store"
)

const agentColumns = `id, workspace_id, name, description, created_at, draft_revision, draft_updated_at, published, latest, deleted_at`

func scanAgent(row pgx.Row) (store.Agent, error) {
	var (
		a                store.Agent
		created, updated int64
		deleted          *int64
	)
	if err := row.Scan(&a.ID, &a.WorkspaceID, &a.Name, &a.Description, &created,
		&a.DraftRevision, &updated, &a.Published, &a.Latest, &deleted); err != nil {
		return store.Agent{}, wrapError(err)
	}
	a.CreatedAt = fromNanos(created)
	a.DraftUpdatedAt = fromNanos(updated)
	a.DeletedAt = timePtr(deleted)
	return a, nil
}

// collectStrings reads a one-column result.
func collectStrings(rows pgx.Rows) ([]string, error) {
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return out, wrapError(err)
}

// CreateAgent inserts a. A duplicate id is ErrConflict (the transaction
// stays usable).
func (tx *pgTx) CreateAgent(ctx context.Context, a store.Agent) error {
	if a.ID == "" || a.WorkspaceID == "" {
		return errors.New("create agent: id and workspace are required")
	}
	tag, err := tx.tx.Exec(ctx,
		`INSERT INTO agents (`+agentColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
		a.ID, a.WorkspaceID, a.Name, a.Description, toNanos(a.CreatedAt), a.DraftRevision,
		toNanos(a.DraftUpdatedAt), a.Published, a.Latest, nullNanos(a.DeletedAt))
	if err == nil {
		err = conflictUnlessAffected(tag)
	}
	if err != nil {
		return fmt.Errorf("create agent %s: %w", a.ID, wrapError(err))
	}
	return nil
}

// Agent returns the live agent id of workspace workspaceID. A deleted agent
// or one of another workspace is ErrNotFound.
func (s *Store) Agent(ctx context.Context, workspaceID, id string) (store.Agent, error) {
	a, err := scanAgent(s.pool.QueryRow(ctx,
		`SELECT `+agentColumns+` FROM agents WHERE id = $1 AND workspace_id = $2 AND deleted_at IS NULL`,
		id, workspaceID))
	if err != nil {
		return store.Agent{}, fmt.Errorf("agent %s: %w", id, err)
	}
	return a, nil
}

// AgentByID returns the live agent id of any workspace, or ErrNotFound.
func (s *Store) AgentByID(ctx context.Context, id string) (store.Agent, error) {
	return agentByID(ctx, s.pool, id)
}

// AgentByID returns the live agent id of any workspace, or ErrNotFound, as
// seen inside the transaction.
func (tx *pgTx) AgentByID(ctx context.Context, id string) (store.Agent, error) {
	return agentByID(ctx, tx.tx, id)
}

// AgentDeleted reports whether the agent row id exists and is marked
// deleted (a deletion whose repository move did not finish).
func (s *Store) AgentDeleted(ctx context.Context, id string) (bool, error) {
	var deleted *int64
	err := s.pool.QueryRow(ctx, `SELECT deleted_at FROM agents WHERE id = $1`, id).Scan(&deleted)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrapError(err)
	}
	return deleted != nil, nil
}

func agentByID(ctx context.Context, q querier, id string) (store.Agent, error) {
	a, err := scanAgent(q.QueryRow(ctx,
		`SELECT `+agentColumns+` FROM agents WHERE id = $1 AND deleted_at IS NULL`, id))
	if err != nil {
		return store.Agent{}, fmt.Errorf("agent %s: %w", id, err)
	}
	return a, nil
}

// ListAgents returns up to limit live agents of the workspace ordered by
// (created_at, id), starting after cursor ("" = from the start), and the
// cursor of the next page ("" on the last page). A cursor that does not
// decode is ErrBadCursor.
func (s *Store) ListAgents(ctx context.Context, workspaceID, cursor string, limit int) ([]store.Agent, string, error) {
	if limit <= 0 {
		limit = store.DefaultPageSize
	}
	query := `SELECT ` + agentColumns + ` FROM agents WHERE workspace_id = $1 AND deleted_at IS NULL`
	args := []any{workspaceID}
	if cursor != "" {
		at, id, err := store.DecodeAgentCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		query += ` AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4`
		args = append(args, at, id, limit+1)
	} else {
		query += ` ORDER BY created_at, id LIMIT $2`
		args = append(args, limit+1)
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list agents: %w", err)
	}
	agents, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Agent, error) { return scanAgent(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list agents: %w", err)
	}
	next := ""
	if len(agents) > limit {
		agents = agents[:limit]
		last := agents[limit-1]
		next = store.EncodeAgentCursor(toNanos(last.CreatedAt), last.ID)
	}
	return agents, next, nil
}

// AllAgentIDs returns the ids of every live agent of every workspace, for
// startup reconciliation.
func (s *Store) AllAgentIDs(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM agents WHERE deleted_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("all agent ids: %w", err)
	}
	ids, err := collectStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("all agent ids: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return ids, nil
}

// updateLiveAgent runs an UPDATE on a live agent; no row is ErrNotFound.
// set uses placeholders from $2 on; $1 is the id.
func (tx *pgTx) updateLiveAgent(ctx context.Context, what, id, set string, args ...any) error {
	tag, err := tx.tx.Exec(ctx,
		`UPDATE agents SET `+set+` WHERE id = $1 AND deleted_at IS NULL`, append([]any{id}, args...)...)
	if err == nil {
		err = mustAffect(tag)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, id, wrapError(err))
	}
	return nil
}

// MarkAgentDeleted soft-deletes the agent at time at. An unknown or already
// deleted agent is ErrNotFound.
func (tx *pgTx) MarkAgentDeleted(ctx context.Context, id string, at time.Time) error {
	return tx.updateLiveAgent(ctx, "delete agent", id, `deleted_at = $2`, toNanos(at))
}

// SetDraft records the draft revision and when it changed.
func (tx *pgTx) SetDraft(ctx context.Context, id, revision string, at time.Time) error {
	return tx.updateLiveAgent(ctx, "set draft", id,
		`draft_revision = $2, draft_updated_at = $3`, revision, toNanos(at))
}

// SetPublished records the published and the latest version numbers
// (0 = none).
func (tx *pgTx) SetPublished(ctx context.Context, id string, published, latest int) error {
	if published < 0 || latest < 0 || published > latest {
		return fmt.Errorf("set published %s: bad numbers published=%d latest=%d", id, published, latest)
	}
	return tx.updateLiveAgent(ctx, "set published", id, `published = $2, latest = $3`, published, latest)
}

// UpdateAgentMeta sets the agent's name and description.
func (tx *pgTx) UpdateAgentMeta(ctx context.Context, id, name, description string) error {
	return tx.updateLiveAgent(ctx, "update agent", id, `name = $2, description = $3`, name, description)
}
