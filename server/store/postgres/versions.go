package postgres

import (
	"context"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/flowyte/flowyte/server/store"
)

const versionColumns = `agent_id, number, commit_hash, draft_revision, digest, notes, published_by, created_at, tests_total, tests_passed, tests_failed`

func scanVersion(row pgx.Row) (store.Version, error) {
	var (
		v                     store.Version
		ns                    int64
		total, passed, failed *int64
	)
	if err := row.Scan(&v.AgentID, &v.Number, &v.Commit, &v.DraftRevision, &v.Digest,
		&v.Notes, &v.PublishedBy, &ns, &total, &passed, &failed); err != nil {
		return store.Version{}, wrapError(err)
	}
	v.CreatedAt = fromNanos(ns)
	if total != nil && passed != nil && failed != nil {
		v.Tests = &store.TestTotals{Total: int(*total), Passed: int(*passed), Failed: int(*failed)}
	}
	return v, nil
}

// InsertVersion inserts v; an existing (agent, number) is ErrConflict.
func (tx *pgTx) InsertVersion(ctx context.Context, v store.Version) error {
	if v.AgentID == "" || v.Number <= 0 {
		return fmt.Errorf("insert version: bad agent %q or number %d", v.AgentID, v.Number)
	}
	var total, passed, failed *int64
	if t := v.Tests; t != nil {
		a, b, c := int64(t.Total), int64(t.Passed), int64(t.Failed)
		total, passed, failed = &a, &b, &c
	}
	tag, err := tx.tx.Exec(ctx,
		`INSERT INTO versions (`+versionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING`,
		v.AgentID, v.Number, v.Commit, v.DraftRevision, v.Digest, v.Notes, v.PublishedBy, toNanos(v.CreatedAt),
		total, passed, failed)
	if err == nil {
		err = conflictUnlessAffected(tag)
	}
	if err != nil {
		return fmt.Errorf("insert version %s v%d: %w", v.AgentID, v.Number, wrapError(err))
	}
	return nil
}

// Version returns version n of the agent, or ErrNotFound.
func (s *Store) Version(ctx context.Context, agentID string, n int) (store.Version, error) {
	return version(ctx, s.pool, agentID, n)
}

// Version returns version n of the agent as seen inside the transaction.
func (tx *pgTx) Version(ctx context.Context, agentID string, n int) (store.Version, error) {
	return version(ctx, tx.tx, agentID, n)
}

func version(ctx context.Context, q querier, agentID string, n int) (store.Version, error) {
	v, err := scanVersion(q.QueryRow(ctx,
		`SELECT `+versionColumns+` FROM versions WHERE agent_id = $1 AND number = $2`, agentID, n))
	if err != nil {
		return store.Version{}, fmt.Errorf("version %s v%d: %w", agentID, n, err)
	}
	return v, nil
}

// ListVersions returns up to limit versions of the agent numbered below
// before (0 = from the newest), newest first.
func (s *Store) ListVersions(ctx context.Context, agentID string, before int, limit int) ([]store.Version, error) {
	if limit <= 0 {
		limit = store.DefaultPageSize
	}
	if before <= 0 {
		before = math.MaxInt32
	}
	rows, err := s.pool.Query(ctx,
		`SELECT `+versionColumns+` FROM versions WHERE agent_id = $1 AND number < $2 ORDER BY number DESC LIMIT $3`,
		agentID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("list versions %s: %w", agentID, err)
	}
	vs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Version, error) { return scanVersion(r) })
	if err != nil {
		return nil, fmt.Errorf("list versions %s: %w", agentID, err)
	}
	return vs, nil
}

// VersionNumbers returns every version number of the agent, ascending.
func (s *Store) VersionNumbers(ctx context.Context, agentID string) ([]int, error) {
	return versionNumbers(ctx, s.pool, agentID)
}

// VersionNumbers returns every version number of the agent, ascending, as
// seen inside the transaction.
func (tx *pgTx) VersionNumbers(ctx context.Context, agentID string) ([]int, error) {
	return versionNumbers(ctx, tx.tx, agentID)
}

func versionNumbers(ctx context.Context, q querier, agentID string) ([]int, error) {
	rows, err := q.Query(ctx, `SELECT number FROM versions WHERE agent_id = $1 ORDER BY number`, agentID)
	if err != nil {
		return nil, fmt.Errorf("version numbers %s: %w", agentID, err)
	}
	ns, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("version numbers %s: %w", agentID, err)
	}
	if len(ns) == 0 {
		return nil, nil
	}
	return ns, nil
}

const deploymentColumns = `id, agent_id, at, actor, kind, from_version, to_version, channel, split`

func scanDeployment(row pgx.Row) (store.Deployment, error) {
	var (
		d     store.Deployment
		ns    int64
		split *string
	)
	if err := row.Scan(&d.ID, &d.AgentID, &ns, &d.By, &d.Kind, &d.From, &d.To, &d.Channel, &split); err != nil {
		return store.Deployment{}, wrapError(err)
	}
	d.At = fromNanos(ns)
	if split != nil {
		var err error
		if d.Split, err = store.DecodeSplit(*split); err != nil {
			return store.Deployment{}, err
		}
	}
	return d, nil
}

// InsertDeployment records d and returns its id (d.ID is ignored); ids grow
// and are never reused.
func (tx *pgTx) InsertDeployment(ctx context.Context, d store.Deployment) (int64, error) {
	if err := store.CheckDeployment(d); err != nil {
		return 0, err
	}
	var split *string
	if d.Split != nil {
		s := store.EncodeSplit(d.Split)
		split = &s
	}
	var id int64
	err := tx.tx.QueryRow(ctx,
		`INSERT INTO deployments (agent_id, at, actor, kind, from_version, to_version, channel, split)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		d.AgentID, toNanos(d.At), d.By, d.Kind, d.From, d.To, d.Channel, split).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert deployment %s: %w", d.AgentID, wrapError(err))
	}
	return id, nil
}

// ListDeployments returns up to limit deployments of the agent with id
// below before (0 = from the newest), newest first.
func (s *Store) ListDeployments(ctx context.Context, agentID string, before int64, limit int) ([]store.Deployment, error) {
	if limit <= 0 {
		limit = store.DefaultPageSize
	}
	if before <= 0 {
		before = math.MaxInt64
	}
	rows, err := s.pool.Query(ctx,
		`SELECT `+deploymentColumns+` FROM deployments WHERE agent_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`,
		agentID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("list deployments %s: %w", agentID, err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Deployment, error) { return scanDeployment(r) })
	if err != nil {
		return nil, fmt.Errorf("list deployments %s: %w", agentID, err)
	}
	return ds, nil
}

// LastDeployment returns the agent's newest deployment, or ErrNotFound.
func (s *Store) LastDeployment(ctx context.Context, agentID string) (store.Deployment, error) {
	return lastDeployment(ctx, s.pool, agentID)
}

// LastDeployment returns the agent's newest deployment as seen inside the
// transaction, or ErrNotFound.
func (tx *pgTx) LastDeployment(ctx context.Context, agentID string) (store.Deployment, error) {
	return lastDeployment(ctx, tx.tx, agentID)
}

func lastDeployment(ctx context.Context, q querier, agentID string) (store.Deployment, error) {
	d, err := scanDeployment(q.QueryRow(ctx,
		`SELECT `+deploymentColumns+` FROM deployments WHERE agent_id = $1 ORDER BY id DESC LIMIT 1`, agentID))
	if err != nil {
		return store.Deployment{}, fmt.Errorf("last deployment %s: %w", agentID, err)
	}
	return d, nil
}
