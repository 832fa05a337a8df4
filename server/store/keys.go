package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Workspace is a tenant: every agent, key, session and webhook belongs to one.
type Workspace struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// EnsureWorkspace returns the workspace called name, creating it (with id
// "ws_" + random) if it does not exist yet.
func (tx *sqliteTx) EnsureWorkspace(ctx context.Context, name string, now time.Time) (Workspace, error) {
	if name == "" {
		return Workspace{}, errors.New("ensure workspace: empty name")
	}
	if _, err := tx.q.ExecContext(ctx,
		`INSERT INTO workspaces (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		NewID("ws_"), name, toNanos(now)); err != nil {
		return Workspace{}, fmt.Errorf("ensure workspace %q: %w", name, wrapError(err))
	}
	w, err := workspaceByName(ctx, tx.q, name)
	if err != nil {
		return Workspace{}, fmt.Errorf("ensure workspace %q: %w", name, err)
	}
	return w, nil
}

// WorkspaceByName returns the workspace called name, or ErrNotFound.
func (s *Store) WorkspaceByName(ctx context.Context, name string) (Workspace, error) {
	w, err := workspaceByName(ctx, s.rdb, name)
	if err != nil {
		return Workspace{}, fmt.Errorf("workspace %q: %w", name, err)
	}
	return w, nil
}

func workspaceByName(ctx context.Context, q querier, name string) (Workspace, error) {
	var (
		w  Workspace
		ns int64
	)
	err := q.QueryRowContext(ctx,
		`SELECT id, name, created_at FROM workspaces WHERE name = ?`, name).Scan(&w.ID, &w.Name, &ns)
	if err != nil {
		return Workspace{}, wrapError(err)
	}
	w.CreatedAt = fromNanos(ns)
	return w, nil
}

// Key is an API key. Only the sha256 hash of its secret is stored.
type Key struct {
	ID            string
	WorkspaceID   string
	WorkspaceName string // filled on read from the workspace row
	Name          string
	Scopes        []string
	CreatedAt     time.Time
	RevokedAt     *time.Time
	LastUsedAt    *time.Time
}

// keyTouchInterval is how stale last_used_at may get: TouchKey writes at
// most once per interval per key.
const keyTouchInterval = time.Minute

// CreateKey inserts k with the secret's hash (sha256, unique). k.ID and
// k.WorkspaceID are required; a duplicate id or hash is ErrConflict.
func (tx *sqliteTx) CreateKey(ctx context.Context, k Key, hash []byte) error {
	if k.ID == "" || k.WorkspaceID == "" || len(hash) == 0 {
		return errors.New("create key: id, workspace and hash are required")
	}
	for _, sc := range k.Scopes {
		if sc == "" || strings.ContainsAny(sc, " \t\n") {
			return fmt.Errorf("create key: bad scope %q", sc)
		}
	}
	_, err := tx.q.ExecContext(ctx,
		`INSERT INTO api_keys (id, workspace_id, name, hash, scopes, created_at, revoked_at, last_used_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.WorkspaceID, k.Name, hash, strings.Join(k.Scopes, " "), toNanos(k.CreatedAt),
		nullNanos(k.RevokedAt), nullNanos(k.LastUsedAt))
	if err != nil {
		return fmt.Errorf("create key %s: %w", k.ID, wrapError(err))
	}
	return nil
}

const keyColumns = `k.id, k.workspace_id, w.name, k.name, k.scopes, k.created_at, k.revoked_at, k.last_used_at`

func scanKey(sc scanner) (Key, error) {
	var (
		k                Key
		scopes           string
		created          int64
		revoked, touched sql.NullInt64
	)
	if err := sc.Scan(&k.ID, &k.WorkspaceID, &k.WorkspaceName, &k.Name, &scopes, &created, &revoked, &touched); err != nil {
		return Key{}, wrapError(err)
	}
	if scopes != "" {
		k.Scopes = strings.Fields(scopes)
	}
	k.CreatedAt = fromNanos(created)
	k.RevokedAt = timePtr(revoked)
	k.LastUsedAt = timePtr(touched)
	return k, nil
}

// KeyByHash returns the key whose secret hashes to hash, revoked or not (the
// caller checks RevokedAt), or ErrNotFound.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (Key, error) {
	k, err := scanKey(s.rdb.QueryRowContext(ctx,
		`SELECT `+keyColumns+` FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id WHERE k.hash = ?`, hash))
	if err != nil {
		return Key{}, fmt.Errorf("key by hash: %w", err)
	}
	return k, nil
}

// ListKeys returns every key of every workspace, oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]Key, error) {
	rows, err := s.rdb.QueryContext(ctx,
		`SELECT `+keyColumns+` FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id ORDER BY k.created_at, k.id`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var keys []Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return keys, nil
}

// RevokeKey marks the key revoked at now and deletes its dashboard
// sessions. Revoking a revoked key keeps the first revocation time; an
// unknown id is ErrNotFound.
func (s *Store) RevokeKey(ctx context.Context, id string, now time.Time) error {
	err := s.write(ctx, func(tx *sqliteTx) error {
		res, err := tx.q.ExecContext(ctx,
			`UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, toNanos(now), id)
		if err != nil {
			return wrapError(err)
		}
		if err := mustAffect(res); err != nil {
			return err
		}
		// The key's dashboard sessions end with it.
		_, err = tx.q.ExecContext(ctx, `DELETE FROM dashboard_sessions WHERE key_id = ?`, id)
		return wrapError(err)
	})
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	if err := s.markKeysChanged(now); err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	return nil
}

// markKeysChanged rewrites the keys marker file beside the database, so
// every process caching keys (the daemon, while the CLI revokes) sees the
// change at its next KeysStamp.
func (s *Store) markKeysChanged(now time.Time) error {
	// A new file renamed over the old one: a new inode each time, so the
	// stamp changes even where mtime is coarse.
	tmp, err := os.CreateTemp(filepath.Dir(s.keysMarker), ".keys-*")
	if err != nil {
		return err
	}
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	_, err = tmp.WriteString(strconv.FormatInt(now.UnixNano(), 10) + " " + hex.EncodeToString(nonce[:]) + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.keysMarker)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// KeysStamp identifies the current state of key revocations: it changes
// whenever any process revokes a key through this package (the marker
// holds a fresh random nonce each time). Callers that cache authenticated
// keys drop their cache when it changes.
//
// It costs one stat of the marker's path: the store keeps the marker it
// last read open, so that file's inode cannot be reused while it is held,
// and a marker renamed over it (markKeysChanged) is always another file.
// Only then is the new one opened and read.
func (s *Store) KeysStamp() string {
	if m := s.marker.Load(); m != nil {
		if fi, err := os.Stat(s.keysMarker); err == nil && os.SameFile(fi, m.info) {
			return m.stamp
		}
	}
	return s.readKeysMarker()
}

// keysMarker is the marker file KeysStamp last read, held open.
type keysMarker struct {
	f     *os.File
	info  os.FileInfo
	stamp string
}

// readKeysMarker opens and reads the current marker ("none" when there is
// none) and keeps it open for KeysStamp.
func (s *Store) readKeysMarker() string {
	s.markerMu.Lock()
	defer s.markerMu.Unlock()
	f, err := os.Open(s.keysMarker)
	if err != nil {
		return "none"
	}
	info, err := f.Stat()
	var data []byte
	if err == nil {
		data, err = io.ReadAll(f)
	}
	if err != nil {
		f.Close()
		return "none " + err.Error()
	}
	m := &keysMarker{f: f, info: info, stamp: string(data)}
	if old := s.marker.Swap(m); old != nil {
		old.f.Close() // its readers use only info and stamp
	}
	return m.stamp
}

// CountKeys returns the number of keys, revoked ones included (so revoking
// every key never looks like a fresh install).
func (s *Store) CountKeys(ctx context.Context) (int, error) {
	var n int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM api_keys`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count keys: %w", err)
	}
	return n, nil
}

// TouchKey records that the key was used at now. It is best effort and
// cheap: it writes at most once a minute per key (checked in SQL, so the
// write is skipped when another process touched it recently too), and an
// unknown id is not an error.
func (s *Store) TouchKey(ctx context.Context, id string, now time.Time) error {
	// A read first, so the common case takes no write lock at all.
	var last sql.NullInt64
	err := s.rdb.QueryRowContext(ctx, `SELECT last_used_at FROM api_keys WHERE id = ?`, id).Scan(&last)
	if err != nil {
		if errors.Is(wrapError(err), ErrNotFound) {
			return nil
		}
		return fmt.Errorf("touch key %s: %w", id, err)
	}
	cutoff := toNanos(now.Add(-keyTouchInterval))
	if last.Valid && last.Int64 > cutoff {
		return nil
	}
	if _, err := s.wdb.ExecContext(ctx,
		`UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)`,
		toNanos(now), id, cutoff); err != nil {
		return fmt.Errorf("touch key %s: %w", id, err)
	}
	return nil
}
