package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flowyte/flowyte/server/store"
)

// keyTouchInterval is how stale last_used_at may get.
const keyTouchInterval = time.Minute

// EnsureWorkspace returns the workspace called name, creating it (with id
// "ws_" + random) if it does not exist yet.
func (tx *pgTx) EnsureWorkspace(ctx context.Context, name string, now time.Time) (store.Workspace, error) {
	if name == "" {
		return store.Workspace{}, errors.New("ensure workspace: empty name")
	}
	if _, err := tx.tx.Exec(ctx,
		`INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
		store.NewID("ws_"), name, toNanos(now)); err != nil {
		return store.Workspace{}, fmt.Errorf("ensure workspace %q: %w", name, wrapError(err))
	}
	w, err := workspaceByName(ctx, tx.tx, name)
	if err != nil {
		return store.Workspace{}, fmt.Errorf("ensure workspace %q: %w", name, err)
	}
	return w, nil
}

// WorkspaceByName returns the workspace called name, or ErrNotFound.
func (s *Store) WorkspaceByName(ctx context.Context, name string) (store.Workspace, error) {
	w, err := workspaceByName(ctx, s.pool, name)
	if err != nil {
		return store.Workspace{}, fmt.Errorf("workspace %q: %w", name, err)
	}
	return w, nil
}

func workspaceByName(ctx context.Context, q querier, name string) (store.Workspace, error) {
	var (
		w  store.Workspace
		ns int64
	)
	err := q.QueryRow(ctx, `SELECT id, name, created_at FROM workspaces WHERE name = $1`, name).Scan(&w.ID, &w.Name, &ns)
	if err != nil {
		return store.Workspace{}, wrapError(err)
	}
	w.CreatedAt = fromNanos(ns)
	return w, nil
}

// CreateKey inserts k with the secret's hash (sha256, unique). A duplicate
// id or hash is ErrConflict.
func (tx *pgTx) CreateKey(ctx context.Context, k store.Key, hash []byte) error {
	if k.ID == "" || k.WorkspaceID == "" || len(hash) == 0 {
		return errors.New("create key: id, workspace and hash are required")
	}
	for _, sc := range k.Scopes {
		if sc == "" || strings.ContainsAny(sc, " \t\n") {
			return fmt.Errorf("create key: bad scope %q", sc)
		}
	}
	tag, err := tx.tx.Exec(ctx,
		`INSERT INTO api_keys (id, workspace_id, name, hash, scopes, created_at, revoked_at, last_used_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
		k.ID, k.WorkspaceID, k.Name, hash, strings.Join(k.Scopes, " "), toNanos(k.CreatedAt),
		nullNanos(k.RevokedAt), nullNanos(k.LastUsedAt))
	if err == nil {
		err = conflictUnlessAffected(tag)
	}
	if err != nil {
		return fmt.Errorf("create key %s: %w", k.ID, wrapError(err))
	}
	return nil
}

const keyColumns = `k.id, k.workspace_id, w.name, k.name, k.scopes, k.created_at, k.revoked_at, k.last_used_at`

func scanKey(row pgx.Row) (store.Key, error) {
	var (
		k                store.Key
		scopes           string
		created          int64
		revoked, touched *int64
	)
	if err := row.Scan(&k.ID, &k.WorkspaceID, &k.WorkspaceName, &k.Name, &scopes, &created, &revoked, &touched); err != nil {
		return store.Key{}, wrapError(err)
	}
	if scopes != "" {
		k.Scopes = strings.Fields(scopes)
	}
	k.CreatedAt = fromNanos(created)
	k.RevokedAt = timePtr(revoked)
	k.LastUsedAt = timePtr(touched)
	return k, nil
}

// KeyByHash returns the key whose secret hashes to hash, revoked or not,
// or ErrNotFound.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (store.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx,
		`SELECT `+keyColumns+` FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id WHERE k.hash = $1`, hash))
	if err != nil {
		return store.Key{}, fmt.Errorf("key by hash: %w", err)
	}
	return k, nil
}

// ListKeys returns every key of every workspace, oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]store.Key, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+keyColumns+` FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id ORDER BY k.created_at, k.id`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Key, error) { return scanKey(r) })
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	return keys, nil
}

// RevokeKey marks the key revoked at now, deletes its dashboard sessions
// and bumps the key revision in the same transaction, so every daemon's
// next KeysStamp differs: it returns once every daemon watching keys
// (WatchKeys) acknowledged the revocation, or its lease ran out. Revoking a
// revoked key keeps the first revocation time; an unknown id is
// ErrNotFound.
func (s *Store) RevokeKey(ctx context.Context, id string, now time.Time) error {
	var rev int64
	err := s.write(ctx, func(tx *pgTx) error {
		tag, err := tx.tx.Exec(ctx,
			`UPDATE api_keys SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2`, toNanos(now), id)
		if err != nil {
			return wrapError(err)
		}
		if err := mustAffect(tag); err != nil {
			return err
		}
		// The key's dashboard sessions end with it.
		if _, err := tx.tx.Exec(ctx, `DELETE FROM dashboard_sessions WHERE key_id = $1`, id); err != nil {
			return wrapError(err)
		}
		rev, err = notifyKeyRevision(ctx, tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	// Every daemon refuses the key from its next request: this one at
	// once, the others once they acknowledged (watch.go).
	s.watch.raise(rev)
	s.awaitKeyRevision(ctx, time.Now(), rev)
	return nil
}

// CountKeys returns the number of keys, revoked ones included.
func (s *Store) CountKeys(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM api_keys`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count keys: %w", err)
	}
	return n, nil
}

// TouchKey records that the key was used at now, at most once a minute per
// key (checked in SQL, so daemons touching the same key write once). An
// unknown id is not an error.
func (s *Store) TouchKey(ctx context.Context, id string, now time.Time) error {
	var last *int64
	err := s.pool.QueryRow(ctx, `SELECT last_used_at FROM api_keys WHERE id = $1`, id).Scan(&last)
	if err != nil {
		if errors.Is(wrapError(err), store.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("touch key %s: %w", id, err)
	}
	cutoff := toNanos(now.Add(-keyTouchInterval))
	if last != nil && *last > cutoff {
		return nil
	}
	if _, err := s.pool.Exec(ctx,
		`UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)`,
		toNanos(now), id, cutoff); err != nil {
		return fmt.Errorf("touch key %s: %w", id, err)
	}
	return nil
}
