package repo

import (
	"context"
	"fmt"
)

// FilesAt returns the tree and every file of one draft revision (a commit
// of refs/heads/draft's history), so a session pinned to a draft revision
// can be served again after a restart. A revision that is not a commit id
// of the repository returns ErrBadCursor. As with DraftFiles, the contents
// are shared and must not be modified.
func (s *Store) FilesAt(ctx context.Context, id, revision string) (tree string, files map[string][]byte, err error) {
	h, ok := parseHash(revision)
	if !ok {
		return "", nil, fmt.Errorf("files at %q: %w", revision, ErrBadCursor)
	}
	err = s.read(ctx, id, func(hd *handle) error {
		c, err := hd.commit(h)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadCursor, err)
		}
		files, err = hd.readAll(c.TreeHash, "")
		tree = c.TreeHash.String()
		return err
	})
	if err != nil {
		return "", nil, fmt.Errorf("files at %s@%s: %w", id, revision, err)
	}
	return tree, files, nil
}
