package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"
)

// Version is the index row of one published version (tag v<Number>).
type Version struct {
	AgentID       string
	Number        int
	Commit        string // release commit id
	DraftRevision string // draft commit the version was built from
	Digest        string // "sha256:<hex>" of the compiled artifact
	Notes         string
	PublishedBy   string
	CreatedAt     time.Time
	// Tests are the totals of the test run the version was published
	// with; nil when its draft had no tests.
	Tests *TestTotals
}

// TestTotals counts the tests of one run.
type TestTotals struct {
	Total, Passed, Failed int
}

const versionColumns = `agent_id, number, commit_hash, draft_revision, digest, notes, published_by, created_at, tests_total, tests_passed, tests_failed`

func scanVersion(sc scanner) (Version, error) {
	var (
		v                     Version
		ns                    int64
		total, passed, failed sql.NullInt64
	)
	if err := sc.Scan(&v.AgentID, &v.Number, &v.Commit, &v.DraftRevision, &v.Digest,
		&v.Notes, &v.PublishedBy, &ns, &total, &passed, &failed); err != nil {
		return Version{}, wrapError(err)
	}
	v.CreatedAt = fromNanos(ns)
	if total.Valid {
		v.Tests = &TestTotals{Total: int(total.Int64), Passed: int(passed.Int64), Failed: int(failed.Int64)}
	}
	return v, nil
}

// InsertVersion inserts v; an existing (agent, number) is ErrConflict.
func (tx *sqliteTx) InsertVersion(ctx context.Context, v Version) error {
	if v.AgentID == "" || v.Number <= 0 {
		return fmt.Errorf("insert version: bad agent %q or number %d", v.AgentID, v.Number)
	}
	var total, passed, failed sql.NullInt64
	if t := v.Tests; t != nil {
		total = sql.NullInt64{Int64: int64(t.Total), Valid: true}
		passed = sql.NullInt64{Int64: int64(t.Passed), Valid: true}
		failed = sql.NullInt64{Int64: int64(t.Failed), Valid: true}
	}
	_, err := tx.q.ExecContext(ctx,
		`INSERT INTO versions (`+versionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.AgentID, v.Number, v.Commit, v.DraftRevision, v.Digest, v.Notes, v.PublishedBy, toNanos(v.CreatedAt),
		total, passed, failed)
	if err != nil {
		return fmt.Errorf("insert version %s v%d: %w", v.AgentID, v.Number, wrapError(err))
	}
	return nil
}

// Version returns version n of the agent, or ErrNotFound.
func (s *Store) Version(ctx context.Context, agentID string, n int) (Version, error) {
	return version(ctx, s.rdb, agentID, n)
}

// Version returns version n of the agent as seen inside the transaction.
func (tx *sqliteTx) Version(ctx context.Context, agentID string, n int) (Version, error) {
	return version(ctx, tx.q, agentID, n)
}

func version(ctx context.Context, q querier, agentID string, n int) (Version, error) {
	v, err := scanVersion(q.QueryRowContext(ctx,
		`SELECT `+versionColumns+` FROM versions WHERE agent_id = ? AND number = ?`, agentID, n))
	if err != nil {
		return Version{}, fmt.Errorf("version %s v%d: %w", agentID, n, err)
	}
	return v, nil
}

// ListVersions returns up to limit versions of the agent numbered below
// before (0 = from the newest), newest first. It is one range scan of the
// primary key, so its cost does not depend on how many versions exist.
func (s *Store) ListVersions(ctx context.Context, agentID string, before int, limit int) ([]Version, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	if before <= 0 {
		before = math.MaxInt32
	}
	rows, err := s.rdb.QueryContext(ctx,
		`SELECT `+versionColumns+` FROM versions WHERE agent_id = ? AND number < ? ORDER BY number DESC LIMIT ?`,
		agentID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("list versions %s: %w", agentID, err)
	}
	defer rows.Close()
	vs := make([]Version, 0, min(limit, 256))
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, fmt.Errorf("list versions %s: %w", agentID, err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list versions %s: %w", agentID, err)
	}
	return vs, nil
}

// VersionNumbers returns every version number of the agent, ascending.
func (s *Store) VersionNumbers(ctx context.Context, agentID string) ([]int, error) {
	return versionNumbers(ctx, s.rdb, agentID)
}

// VersionNumbers returns every version number of the agent, ascending, as
// seen inside the transaction.
func (tx *sqliteTx) VersionNumbers(ctx context.Context, agentID string) ([]int, error) {
	return versionNumbers(ctx, tx.q, agentID)
}

func versionNumbers(ctx context.Context, q querier, agentID string) ([]int, error) {
	rows, err := q.QueryContext(ctx, `SELECT number FROM versions WHERE agent_id = ? ORDER BY number`, agentID)
	if err != nil {
		return nil, fmt.Errorf("version numbers %s: %w", agentID, err)
	}
	defer rows.Close()
	var ns []int
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("version numbers %s: %w", agentID, err)
		}
		ns = append(ns, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("version numbers %s: %w", agentID, err)
	}
	return ns, nil
}

// Deployment kinds.
const (
	DeployPublish   = "publish"   // a publish moved the pointer to a new version
	DeployRollback  = "rollback"  // a rollback moved it to an existing version
	DeployRecovered = "recovered" // startup recovery found a move the database missed
	DeployPin       = "pin"       // a channel was pinned to a version
	DeploySplit     = "split"     // a channel was split over versions
	DeployFollow    = "follow"    // a channel went back to following the published version
)

// Deployment is one move of an agent's published pointer.
type Deployment struct {
	ID      int64
	AgentID string
	At      time.Time
	By      string // key id or "system"
	Kind    string // DeployPublish, DeployRollback, DeployRecovered, or a channel kind
	From    int    // previous published number (or what the channel served), 0 = none
	To      int
	// Channel is the channel a pin, split or follow changed ("" for moves
	// of the published pointer).
	Channel string
	// Split is the split of a DeploySplit (nil otherwise).
	Split []SplitEntry
}

const deploymentColumns = `id, agent_id, at, actor, kind, from_version, to_version, channel, split`

func scanDeployment(sc scanner) (Deployment, error) {
	var (
		d     Deployment
		ns    int64
		split sql.NullString
	)
	if err := sc.Scan(&d.ID, &d.AgentID, &ns, &d.By, &d.Kind, &d.From, &d.To, &d.Channel, &split); err != nil {
		return Deployment{}, wrapError(err)
	}
	d.At = fromNanos(ns)
	if split.Valid {
		var err error
		if d.Split, err = decodeSplit(split.String); err != nil {
			return Deployment{}, err
		}
	}
	return d, nil
}

// CheckDeployment reports why d cannot be recorded, or nil (shared by
// engines).
func CheckDeployment(d Deployment) error {
	switch d.Kind {
	case DeployPublish, DeployRollback, DeployRecovered:
		if d.To <= 0 {
			return errors.New("insert deployment: target version must be > 0")
		}
		if d.Channel != "" || d.Split != nil {
			return fmt.Errorf("insert deployment %s: a %s has no channel or split", d.AgentID, d.Kind)
		}
	case DeployPin, DeploySplit, DeployFollow:
		if d.Channel == "" {
			return fmt.Errorf("insert deployment %s: a %s needs its channel", d.AgentID, d.Kind)
		}
		if (d.Kind == DeploySplit) != (d.Split != nil) {
			return fmt.Errorf("insert deployment %s: a split (and only a split) carries the split", d.AgentID)
		}
	default:
		return fmt.Errorf("insert deployment %s: bad kind %q", d.AgentID, d.Kind)
	}
	return nil
}

// InsertDeployment records d and returns its id (d.ID is ignored); ids grow
// and are never reused.
func (tx *sqliteTx) InsertDeployment(ctx context.Context, d Deployment) (int64, error) {
	if err := CheckDeployment(d); err != nil {
		return 0, err
	}
	var split sql.NullString
	if d.Split != nil {
		split = sql.NullString{String: encodeSplit(d.Split), Valid: true}
	}
	var id int64
	err := tx.q.QueryRowContext(ctx,
		`INSERT INTO deployments (agent_id, at, actor, kind, from_version, to_version, channel, split)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		d.AgentID, toNanos(d.At), d.By, d.Kind, d.From, d.To, d.Channel, split).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert deployment %s: %w", d.AgentID, wrapError(err))
	}
	return id, nil
}

// ListDeployments returns up to limit deployments of the agent with id
// below before (0 = from the newest), newest first.
func (s *Store) ListDeployments(ctx context.Context, agentID string, before int64, limit int) ([]Deployment, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	if before <= 0 {
		before = math.MaxInt64
	}
	rows, err := s.rdb.QueryContext(ctx,
		`SELECT `+deploymentColumns+` FROM deployments WHERE agent_id = ? AND id < ? ORDER BY id DESC LIMIT ?`,
		agentID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("list deployments %s: %w", agentID, err)
	}
	defer rows.Close()
	ds := make([]Deployment, 0, min(limit, 256))
	for rows.Next() {
		d, err := scanDeployment(rows)
		if err != nil {
			return nil, fmt.Errorf("list deployments %s: %w", agentID, err)
		}
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list deployments %s: %w", agentID, err)
	}
	return ds, nil
}

// LastDeployment returns the agent's newest deployment, or ErrNotFound.
func (s *Store) LastDeployment(ctx context.Context, agentID string) (Deployment, error) {
	return lastDeployment(ctx, s.rdb, agentID)
}

// LastDeployment returns the agent's newest deployment as seen inside the
// transaction, or ErrNotFound.
func (tx *sqliteTx) LastDeployment(ctx context.Context, agentID string) (Deployment, error) {
	return lastDeployment(ctx, tx.q, agentID)
}

func lastDeployment(ctx context.Context, q querier, agentID string) (Deployment, error) {
	d, err := scanDeployment(q.QueryRowContext(ctx,
		`SELECT `+deploymentColumns+` FROM deployments WHERE agent_id = ? ORDER BY id DESC LIMIT 1`, agentID))
	if err != nil {
		return Deployment{}, fmt.Errorf("last deployment %s: %w", agentID, err)
	}
	return d, nil
}
