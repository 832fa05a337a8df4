package repo

import (
	"context"
	"fmt"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// bulkBlobs is how many blobs ReadDirBlobs reads through a handle of its
// own, with bulkCacheBytes of go-git object cache.
const (
	bulkBlobs      = 64
	bulkCacheBytes = 16 << 20
)

// ReadDirBlobs returns, by blob id, the contents of those files directly
// in the top-level directory dir of the tree at whose ids are among
// blobs: a version's compiled artifact names its knowledge files this way
// (knowledge/<slug>.md of its release tree). An id that is no file of dir
// is left out of the map (so is every id when dir does not exist). The
// contents are shared and must not be modified. It returns
// ErrVersionNotFound for a version that does not exist.
func (s *Store) ReadDirBlobs(ctx context.Context, id string, at Rev, dir string, blobs []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(blobs))
	err := s.read(ctx, id, func(h *handle) error {
		_, t, err := h.resolve(at)
		if err != nil {
			return err
		}
		if t.IsZero() {
			return nil
		}
		root, err := h.tree(t)
		if err != nil {
			return fmt.Errorf("tree %s: %w", t, err)
		}
		var sub plumbing.Hash
		for _, e := range root.Entries {
			if e.Name == dir && e.Mode == filemode.Dir {
				sub = e.Hash
			}
		}
		if sub.IsZero() {
			return nil
		}
		tr, err := h.tree(sub)
		if err != nil {
			return fmt.Errorf("tree %s: %w", sub, err)
		}
		in := make(map[plumbing.Hash]bool, len(tr.Entries))
		for _, e := range tr.Entries {
			if e.Mode.IsFile() {
				in[e.Hash] = true
			}
		}
		// Many blobs are read through a handle of their own that keeps
		// the packfiles open and delta bases cached (a reader handle opens
		// the pack per object, and the articles of a packed repository are
		// mostly deltas of one another). The layout lock held by read
		// keeps housekeeping from deleting a pack meanwhile.
		rd := h
		if len(blobs) >= bulkBlobs {
			rd = &handle{
				dir:   h.dir,
				st:    filesystem.NewStorageWithOptions(osfs.New(h.dir), cache.NewObjectLRU(bulkCacheBytes), filesystem.Options{MaxOpenDescriptors: writerPacks}),
				sizes: make(map[plumbing.Hash]int64),
				cache: h.cache,
			}
			defer rd.close()
		}
		for _, b := range blobs {
			hb, ok := parseHash(b)
			if !ok || !in[hb] {
				continue
			}
			if _, done := out[b]; done {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			data, err := rd.blob(hb)
			if err != nil {
				return err
			}
			out[b] = data
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s %s/ blobs: %w", id, dir, err)
	}
	return out, nil
}
