package repo

import (
	"context"
	"errors"
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

// DraftBlob returns the draft's revision and the blob id of the file at
// path in it ("" when the draft has no such file), reading only the trees
// on that path: what a conditional one-file write compares its If-Match
// with, at a cost that does not grow with the draft.
func (s *Store) DraftBlob(ctx context.Context, id, path string) (rev, blob string, err error) {
	err = s.read(ctx, id, func(h *handle) error {
		c, err := h.draftHead()
		if err != nil {
			return err
		}
		rev = c.Hash.String()
		b, err := h.lookup(c.TreeHash, path)
		switch {
		case errors.Is(err, ErrFileNotFound):
			return nil
		case err != nil:
			return err
		}
		blob = b.String()
		return nil
	})
	if err != nil {
		return "", "", fmt.Errorf("draft blob %s %s: %w", id, path, err)
	}
	return rev, blob, nil
}
