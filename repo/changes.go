package repo

import (
	"context"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
)

// TreeChanges returns what differs between two trees of agent id (ids
// from Draft, DraftHead, DraftFiles or FilesAt; "" is the empty tree):
// changed holds the files of tree to that are new or modified, removed
// the paths of tree from that tree to has not, both in path order for
// removed. Only the subtrees that differ are read, and only the changed
// blobs, so the cost follows the change: a compile of to from the
// compile of from (compile.Compiler.CompileEdit) then reads one file
// after a one-file edit. The contents are shared with the object cache
// and must not be modified.
func (s *Store) TreeChanges(ctx context.Context, id, from, to string) (changed map[string][]byte, removed []string, err error) {
	fh, ok1 := parseTreeID(from)
	th, ok2 := parseTreeID(to)
	if !ok1 || !ok2 {
		return nil, nil, fmt.Errorf("tree changes %s: bad tree id %q..%q", id, from, to)
	}
	err = s.read(ctx, id, func(h *handle) error {
		changed, removed, err = h.changes(fh, th)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("tree changes %s %s..%s: %w", id, from, to, err)
	}
	return changed, removed, nil
}

// parseTreeID parses a tree id; "" is the empty tree.
func parseTreeID(s string) (plumbing.Hash, bool) {
	if s == "" {
		return plumbing.ZeroHash, true
	}
	return parseHash(s)
}

// changes is TreeChanges on trees a and b.
func (h *handle) changes(a, b plumbing.Hash) (changed map[string][]byte, removed []string, err error) {
	cs, err := h.diffTrees(a, b, "")
	if err != nil {
		return nil, nil, err
	}
	changed = make(map[string][]byte, len(cs))
	hashes := make([]plumbing.Hash, 0, len(cs))
	for _, c := range cs {
		hashes = append(hashes, c.to.hash)
	}
	h.prefetch(hashes) // many changes (a first compile): read them concurrently
	for _, c := range cs {
		if c.to.hash.IsZero() {
			removed = append(removed, c.path)
			continue
		}
		data, err := h.blob(c.to.hash)
		if err != nil {
			return nil, nil, err
		}
		changed[c.path] = data
	}
	return changed, removed, nil
}
