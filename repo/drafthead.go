package repo

import (
	"context"
	"fmt"
)

// DraftHead returns the draft's revision and tree id without reading any
// file, so a caller holding results keyed by tree (compiled drafts) can
// skip reading the files altogether.
func (s *Store) DraftHead(ctx context.Context, id string) (rev, tree string, err error) {
	err = s.with(ctx, id, func(h *handle) error {
		c, err := h.draftHead()
		if err != nil {
			return err
		}
		rev, tree = c.Hash.String(), c.TreeHash.String()
		return nil
	})
	if err != nil {
		return "", "", fmt.Errorf("draft head %s: %w", id, err)
	}
	return rev, tree, nil
}
