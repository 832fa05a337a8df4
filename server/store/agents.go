package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Agent is the database summary of one agent; git holds its content.
type Agent struct {
	ID             string
	WorkspaceID    string
	Name           string
	Description    string
	CreatedAt      time.Time
	DraftRevision  string
	DraftUpdatedAt time.Time
	Published      int // published version number, 0 = none
	Latest         int // highest version number, 0 = none
	DeletedAt      *time.Time
}

// DefaultPageSize is the page size used when a list call gets limit <= 0.
const DefaultPageSize = 50

const agentColumns = `id, workspace_id, name, description, created_at, draft_revision, draft_updated_at, published, latest, deleted_at`

func scanAgent(sc scanner) (Agent, error) {
	var (
		a                Agent
		created, updated int64
		deleted          sql.NullInt64
	)
	if err := sc.Scan(&a.ID, &a.WorkspaceID, &a.Name, &a.Description, &created,
		&a.DraftRevision, &updated, &a.Published, &a.Latest, &deleted); err != nil {
		return Agent{}, wrapError(err)
	}
	a.CreatedAt = fromNanos(created)
	a.DraftUpdatedAt = fromNanos(updated)
	a.DeletedAt = timePtr(deleted)
	return a, nil
}

// CreateAgent inserts a. A duplicate id is ErrConflict.
func (tx *sqliteTx) CreateAgent(ctx context.Context, a Agent) error {
	if a.ID == "" || a.WorkspaceID == "" {
		return errors.New("create agent: id and workspace are required")
	}
	_, err := tx.q.ExecContext(ctx,
		`INSERT INTO agents (`+agentColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.WorkspaceID, a.Name, a.Description, toNanos(a.CreatedAt), a.DraftRevision,
		toNanos(a.DraftUpdatedAt), a.Published, a.Latest, nullNanos(a.DeletedAt))
	if err != nil {
		return fmt.Errorf("create agent %s: %w", a.ID, wrapError(err))
	}
	return nil
}

// Agent returns the live agent id of workspace workspaceID. A deleted agent
// or one of another workspace is ErrNotFound.
func (s *Store) Agent(ctx context.Context, workspaceID, id string) (Agent, error) {
	a, err := scanAgent(s.rdb.QueryRowContext(ctx,
		`SELECT `+agentColumns+` FROM agents WHERE id = ? AND workspace_id = ? AND deleted_at IS NULL`,
		id, workspaceID))
	if err != nil {
		return Agent{}, fmt.Errorf("agent %s: %w", id, err)
	}
	return a, nil
}

// AgentByID returns the live agent id of any workspace, or ErrNotFound.
func (s *Store) AgentByID(ctx context.Context, id string) (Agent, error) {
	return agentByID(ctx, s.rdb, id)
}

// AgentByID returns the live agent id of any workspace, or ErrNotFound, as
// seen inside the transaction.
func (tx *sqliteTx) AgentByID(ctx context.Context, id string) (Agent, error) {
	return agentByID(ctx, tx.q, id)
}

func agentByID(ctx context.Context, q querier, id string) (Agent, error) {
	a, err := scanAgent(q.QueryRowContext(ctx,
		`SELECT `+agentColumns+` FROM agents WHERE id = ? AND deleted_at IS NULL`, id))
	if err != nil {
		return Agent{}, fmt.Errorf("agent %s: %w", id, err)
	}
	return a, nil
}

// ListAgents returns up to limit live agents of the workspace ordered by
// (created_at, id), starting after cursor ("" = from the start), and the
// cursor of the next page ("" when this is the last page). A cursor that
// does not decode is ErrBadCursor.
func (s *Store) ListAgents(ctx context.Context, workspaceID, cursor string, limit int) ([]Agent, string, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	query := `SELECT ` + agentColumns + ` FROM agents WHERE workspace_id = ? AND deleted_at IS NULL`
	args := []any{workspaceID}
	if cursor != "" {
		at, id, err := DecodeAgentCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		query += ` AND (created_at, id) > (?, ?)`
		args = append(args, at, id)
	}
	query += ` ORDER BY created_at, id LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list agents: %w", err)
	}
	defer rows.Close()
	agents := make([]Agent, 0, min(limit, 256))
	more := false
	for rows.Next() {
		if len(agents) == limit {
			more = true
			break
		}
		a, err := scanAgent(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list agents: %w", err)
		}
		agents = append(agents, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list agents: %w", err)
	}
	next := ""
	if more {
		last := agents[len(agents)-1]
		next = EncodeAgentCursor(toNanos(last.CreatedAt), last.ID)
	}
	return agents, next, nil
}

// AllAgentIDs returns the ids of every live agent of every workspace, for
// startup reconciliation.
func (s *Store) AllAgentIDs(ctx context.Context) ([]string, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id FROM agents WHERE deleted_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("all agent ids: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("all agent ids: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("all agent ids: %w", err)
	}
	return ids, nil
}

// updateLiveAgent runs an UPDATE on a live agent; no row is ErrNotFound.
func (tx *sqliteTx) updateLiveAgent(ctx context.Context, what, id, set string, args ...any) error {
	res, err := tx.q.ExecContext(ctx,
		`UPDATE agents SET `+set+` WHERE id = ? AND deleted_at IS NULL`, append(args, id)...)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, id, wrapError(err))
	}
	return nil
}

// MarkAgentDeleted soft-deletes the agent at time at. Its versions and
// deployments stay. An unknown or already deleted agent is ErrNotFound.
func (tx *sqliteTx) MarkAgentDeleted(ctx context.Context, id string, at time.Time) error {
	return tx.updateLiveAgent(ctx, "delete agent", id, `deleted_at = ?`, toNanos(at))
}

// SetDraft records the draft revision (commit id of refs/heads/draft) and
// when it changed.
func (tx *sqliteTx) SetDraft(ctx context.Context, id, revision string, at time.Time) error {
	return tx.updateLiveAgent(ctx, "set draft", id,
		`draft_revision = ?, draft_updated_at = ?`, revision, toNanos(at))
}

// SetPublished records the published and the latest version numbers
// (0 = none).
func (tx *sqliteTx) SetPublished(ctx context.Context, id string, published, latest int) error {
	if published < 0 || latest < 0 || published > latest {
		return fmt.Errorf("set published %s: bad numbers published=%d latest=%d", id, published, latest)
	}
	return tx.updateLiveAgent(ctx, "set published", id, `published = ?, latest = ?`, published, latest)
}

// UpdateAgentMeta sets the agent's name and description.
func (tx *sqliteTx) UpdateAgentMeta(ctx context.Context, id, name, description string) error {
	return tx.updateLiveAgent(ctx, "update agent", id, `name = ?, description = ?`, name, description)
}
