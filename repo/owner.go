package repo

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing/format/config"
)

// Owner is what the repository records about who owns the agent: the
// workspace, by id and by name (the name survives a database rebuilt from
// scratch, the id does not). It lives in the repository's config as
// [flowyte] workspace and workspaceName.
type Owner struct {
	WorkspaceID   string
	WorkspaceName string
}

const ownerSection = "flowyte"

// writeOwner adds the [flowyte] section to the config of the bare
// repository at dir (before it is renamed into place).
func writeOwner(dir string, o Owner) error {
	path := filepath.Join(dir, "config")
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	cfg := config.New()
	if err := config.NewDecoder(bytes.NewReader(raw)).Decode(cfg); err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	sec := cfg.Section(ownerSection)
	sec.SetOption("workspace", o.WorkspaceID)
	sec.SetOption("workspaceName", o.WorkspaceName)
	var buf bytes.Buffer
	if err := config.NewEncoder(&buf).Encode(cfg); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// ErrNoOwner is returned by Owner for a repository that records none
// (made before owners were recorded).
var ErrNoOwner = errors.New("repository records no owner")

// Owner reads the owner recorded in the repository of id. It reads one
// small file and takes no lock: the config never changes after creation.
func (s *Store) Owner(id string) (Owner, error) {
	if !validID(id) {
		return Owner{}, ErrNotFound
	}
	raw, err := os.ReadFile(filepath.Join(s.Path(id), "config"))
	if errors.Is(err, os.ErrNotExist) {
		return Owner{}, ErrNotFound
	}
	if err != nil {
		return Owner{}, err
	}
	cfg := config.New()
	if err := config.NewDecoder(bytes.NewReader(raw)).Decode(cfg); err != nil {
		return Owner{}, fmt.Errorf("read config of %s: %w", id, err)
	}
	if !cfg.HasSection(ownerSection) {
		return Owner{}, ErrNoOwner
	}
	sec := cfg.Section(ownerSection)
	o := Owner{WorkspaceID: sec.Option("workspace"), WorkspaceName: sec.Option("workspaceName")}
	if o.WorkspaceName == "" {
		return Owner{}, ErrNoOwner
	}
	return o, nil
}
