package backend

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flowyte/flowyte/server/store"
)

// KeyJournal keeps one small file per API key (its hash, never the
// secret) beside the database, written and fsynced before the key is
// handed out. Keys are the one thing neither git nor anything else can
// rebuild, so a database that lost rows (a lost -wal, a bad restore) gets
// them back from here at startup. A nil *KeyJournal records nothing.
type KeyJournal struct {
	dir string
}

// NewKeyJournal returns the journal in dir (created 0700 when missing).
func NewKeyJournal(dir string) *KeyJournal { return &KeyJournal{dir: dir} }

// journalEntry is one key file.
type journalEntry struct {
	ID            string     `json:"id"`
	WorkspaceName string     `json:"workspaceName"`
	Name          string     `json:"name"`
	Scopes        []string   `json:"scopes"`
	Hash          string     `json:"hash"`
	CreatedAt     time.Time  `json:"createdAt"`
	RevokedAt     *time.Time `json:"revokedAt,omitempty"`
}

func (j *KeyJournal) path(id string) string { return filepath.Join(j.dir, id+".json") }

// record writes (or rewrites) the file of key k, durably.
func (j *KeyJournal) record(k store.Key, hash []byte) error {
	if j == nil {
		return nil
	}
	e := journalEntry{ID: k.ID, WorkspaceName: k.WorkspaceName, Name: k.Name, Scopes: k.Scopes,
		Hash: hex.EncodeToString(hash), CreatedAt: k.CreatedAt.UTC(), RevokedAt: k.RevokedAt}
	return j.write(e)
}

func (j *KeyJournal) write(e journalEntry) error {
	if err := os.MkdirAll(j.dir, 0o700); err != nil {
		return fmt.Errorf("key journal: %w", err)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return WriteFileSync(j.path(e.ID), append(data, '\n'), 0o600)
}

// revoke marks key id revoked at t in its file (a key without a file is
// left alone: the database is then the only record).
func (j *KeyJournal) revoke(id string, t time.Time) error {
	if j == nil {
		return nil
	}
	e, err := j.read(j.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if e.RevokedAt == nil {
		t = t.UTC()
		e.RevokedAt = &t
	}
	return j.write(e)
}

func (j *KeyJournal) read(path string) (journalEntry, error) {
	var e journalEntry
	data, err := os.ReadFile(path)
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("key journal %s: %w", filepath.Base(path), err)
	}
	return e, nil
}

// entries lists every key file.
func (j *KeyJournal) entries() ([]journalEntry, error) {
	if j == nil {
		return nil, nil
	}
	names, err := os.ReadDir(j.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []journalEntry
	for _, n := range names {
		if !strings.HasSuffix(n.Name(), ".json") || strings.HasPrefix(n.Name(), ".") {
			continue
		}
		e, err := j.read(filepath.Join(j.dir, n.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// WriteFileSync writes a file atomically (temp file, fsync, rename) and
// durably (fsync of the directory), with mode.
func WriteFileSync(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
