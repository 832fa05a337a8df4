package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// draftHead returns the draft commit.
func (h *handle) draftHead() (*object.Commit, error) {
	c, err := h.refHash(draftRef)
	if err != nil {
		return nil, err
	}
	if c.IsZero() {
		return nil, fmt.Errorf("draft: %w", plumbing.ErrReferenceNotFound)
	}
	return h.commit(c)
}

// Draft describes the current draft: its revision, tree, time and files.
func (s *Store) Draft(ctx context.Context, id string) (Draft, error) {
	var d Draft
	err := s.read(ctx, id, func(h *handle) error {
		c, err := h.draftHead()
		if err != nil {
			return err
		}
		flat, err := h.flatten(c.TreeHash, "")
		if err != nil {
			return err
		}
		d = Draft{Revision: c.Hash.String(), Tree: c.TreeHash.String(), UpdatedAt: c.Committer.When.UTC()}
		d.Files = make([]File, 0, len(flat))
		for p, e := range flat {
			n, err := h.blobSize(e.hash)
			if err != nil {
				return err
			}
			d.Files = append(d.Files, File{Path: p, Size: n, Blob: e.hash.String()})
		}
		sort.Slice(d.Files, func(i, j int) bool { return d.Files[i].Path < d.Files[j].Path })
		return nil
	})
	if err != nil {
		return Draft{}, fmt.Errorf("draft %s: %w", id, err)
	}
	return d, nil
}

// DraftFiles returns the draft revision, its tree and the content of every
// file. The contents are shared with the object cache (not copied per
// call: a draft of thousands of files is megabytes) and must not be
// modified.
func (s *Store) DraftFiles(ctx context.Context, id string) (rev, tree string, files map[string][]byte, err error) {
	err = s.read(ctx, id, func(h *handle) error {
		c, err := h.draftHead()
		if err != nil {
			return err
		}
		files, err = h.readAll(c.TreeHash, "")
		rev, tree = c.Hash.String(), c.TreeHash.String()
		return err
	})
	if err != nil {
		return "", "", nil, fmt.Errorf("draft files %s: %w", id, err)
	}
	return rev, tree, files, nil
}

// readAll reads every file below tree t except the top-level skip. The
// contents are not copied: they are shared with the object cache and must
// not be modified.
func (h *handle) readAll(t plumbing.Hash, skip string) (map[string][]byte, error) {
	flat, err := h.flatten(t, skip)
	if err != nil {
		return nil, err
	}
	hashes := make([]plumbing.Hash, 0, len(flat))
	for _, e := range flat {
		hashes = append(hashes, e.hash)
	}
	h.prefetch(hashes)
	files := make(map[string][]byte, len(flat))
	for p, e := range flat {
		data, err := h.blob(e.hash)
		if err != nil {
			return nil, err
		}
		files[p] = data
	}
	return files, nil
}

// resolve returns the commit and tree named by at. A version's tree is its
// release tree, compiled/ included. The empty tree has zero hashes.
func (h *handle) resolve(at Rev) (commit, tree plumbing.Hash, err error) {
	switch at.Kind {
	case RevEmpty:
		return plumbing.ZeroHash, plumbing.ZeroHash, nil
	case RevDraft:
		c, err := h.draftHead()
		if err != nil {
			return plumbing.ZeroHash, plumbing.ZeroHash, err
		}
		return c.Hash, c.TreeHash, nil
	case RevVersion:
		c, err := h.releaseCommit(at.Number)
		if err != nil {
			return plumbing.ZeroHash, plumbing.ZeroHash, err
		}
		return c.Hash, c.TreeHash, nil
	}
	return plumbing.ZeroHash, plumbing.ZeroHash, fmt.Errorf("unknown rev kind %d", at.Kind)
}

// lookup finds path p below tree t.
func (h *handle) lookup(t plumbing.Hash, p string) (plumbing.Hash, error) {
	if t.IsZero() || p == "" {
		return plumbing.ZeroHash, ErrFileNotFound
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		tr, err := h.tree(t)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("tree %s: %w", t, err)
		}
		var found *object.TreeEntry
		for j := range tr.Entries {
			if tr.Entries[j].Name == seg {
				found = &tr.Entries[j]
				break
			}
		}
		if found == nil {
			return plumbing.ZeroHash, ErrFileNotFound
		}
		last := i == len(segs)-1
		if last != (found.Mode != filemode.Dir) || found.Mode == filemode.Submodule {
			return plumbing.ZeroHash, ErrFileNotFound
		}
		t = found.Hash
	}
	return t, nil
}

// ReadFile returns the content and blob id of path at a version (its
// release tree, so compiled/agent.json is readable), the draft or the
// empty tree. It returns ErrFileNotFound or ErrVersionNotFound.
func (s *Store) ReadFile(ctx context.Context, id string, at Rev, path string) (data []byte, blob string, err error) {
	err = s.read(ctx, id, func(h *handle) error {
		_, t, err := h.resolve(at)
		if err != nil {
			return err
		}
		b, err := h.lookup(t, path)
		if err != nil {
			return err
		}
		data, err = h.blob(b)
		data = bytes.Clone(data)
		blob = b.String()
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("read %s %s: %w", id, path, err)
	}
	return data, blob, nil
}

// CommitDraft applies req.Changes to the draft as one commit, or not at all.
//
// Deleting a path the draft does not hold returns ErrFileNotFound; a stale
// req.ExpectedRevision returns *RevisionMismatchError; exceeding
// Options.MaxFiles or Options.MaxDraftBytes returns ErrDraftTooLarge; a bad
// path returns ErrInvalidPath. A change set that leaves the tree identical
// makes no commit: it returns the current head with Unchanged set and does
// not call then. Otherwise then (if not nil) runs under the agent lock after
// refs/heads/draft moved; its error is returned but the commit stays.
func (s *Store) CommitDraft(ctx context.Context, id string, req CommitRequest, then func(Commit) error) (Commit, error) {
	var out Commit
	err := s.with(ctx, id, func(h *handle) error {
		head, err := h.draftHead()
		if err != nil {
			return err
		}
		if req.ExpectedRevision != "" && req.ExpectedRevision != head.Hash.String() {
			return &RevisionMismatchError{Current: head.Hash.String()}
		}
		// Validate everything before writing anything. final is each
		// changed path's new entry, nil when deleted.
		changed := map[string]bool{}
		writes := map[string][]byte{}
		final := map[string]*entry{}
		for _, ch := range req.Changes {
			if err := checkPath(ch.Path); err != nil {
				return err
			}
			if ch.Delete {
				e, ok := final[ch.Path]
				if !ok {
					if _, err := h.lookup(head.TreeHash, ch.Path); err != nil {
						return fmt.Errorf("delete %s: %w", ch.Path, err)
					}
				} else if e == nil {
					return fmt.Errorf("delete %s: %w", ch.Path, ErrFileNotFound)
				}
				final[ch.Path] = nil
				delete(writes, ch.Path)
			} else {
				final[ch.Path] = &entry{hash: plumbing.ComputeHash(plumbing.BlobObject, ch.Content), mode: modeFile}
				writes[ch.Path] = ch.Content
			}
			changed[ch.Path] = true
		}
		// Only the trees on the changed paths are rebuilt; the limits
		// are checked on sizes derived from the base tree's.
		edit := newTreeEdit()
		for p, e := range final {
			edit.set(p, e)
		}
		sizes := make(map[plumbing.Hash]int64, len(writes))
		for p, data := range writes {
			sizes[final[p].hash] = int64(len(data))
		}
		var trees []newTree
		tree, st, err := h.applyEdit(head.TreeHash, edit, "", sizes, &trees)
		if err != nil {
			return err
		}
		if tree.IsZero() { // every file deleted: the empty tree
			empty := newTree{entries: []object.TreeEntry{}}
			empty.hash = plumbing.ComputeHash(plumbing.TreeObject, empty.data)
			tree, trees = empty.hash, append(trees, empty)
		}
		if st.files > s.o.MaxFiles {
			return fmt.Errorf("%d files, limit %d: %w", st.files, s.o.MaxFiles, ErrDraftTooLarge)
		}
		if st.bytes > s.o.MaxDraftBytes {
			return fmt.Errorf("%d bytes, limit %d: %w", st.bytes, s.o.MaxDraftBytes, ErrDraftTooLarge)
		}
		if tree == head.TreeHash {
			out, err = h.describe(head)
			out.Unchanged = true
			return err
		}
		// Objects first (blobs, trees, commit), fsynced, then the ref.
		w := newWriteSet(h, s.o.Sync)
		defer w.discard()
		for p, data := range writes {
			b, err := w.putBlob(data)
			if err != nil {
				return err
			}
			if b != final[p].hash {
				return fmt.Errorf("blob %s: hash %s, want %s", p, b, final[p].hash)
			}
		}
		for _, t := range trees {
			if err := w.putNewTree(t); err != nil {
				return err
			}
		}
		msg := req.Message
		if strings.TrimSpace(msg) == "" {
			msg = defaultMessage(changed)
		}
		author := s.sig(req.Author)
		committer := s.sig(Signature{Name: author.Name, Email: author.Email})
		c, err := w.putCommit(tree, []plumbing.Hash{head.Hash}, msg, author, committer)
		if err != nil {
			return err
		}
		if err := w.flush(); err != nil {
			return err
		}
		if err := h.setRef(draftRef, c, head.Hash, s.o.Sync); err != nil {
			return err
		}
		s.afterWrite(id, h.dir, w.written)
		nc, err := h.commit(c)
		if err != nil {
			return err
		}
		if out, err = h.describe(nc); err != nil {
			return err
		}
		if then != nil {
			return then(out)
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("commit draft %s: %w", id, err)
	}
	return out, nil
}

// defaultMessage names the changed paths.
func defaultMessage(changed map[string]bool) string {
	paths := make([]string, 0, len(changed))
	for p := range changed {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	if len(paths) > 3 {
		return fmt.Sprintf("Update %s and %d more", strings.Join(paths[:3], ", "), len(paths)-3)
	}
	return "Update " + strings.Join(paths, ", ")
}

// describe turns a commit into a Commit with the paths changed vs its first
// parent.
func (h *handle) describe(c *object.Commit) (Commit, error) {
	var parentTree plumbing.Hash
	if len(c.ParentHashes) > 0 {
		p, err := h.commit(c.ParentHashes[0])
		if err != nil {
			return Commit{}, fmt.Errorf("parent of %s: %w", c.Hash, err)
		}
		parentTree = p.TreeHash
	}
	changes, err := h.diffTrees(parentTree, c.TreeHash, "")
	if err != nil {
		return Commit{}, err
	}
	paths := make([]string, 0, len(changes))
	for _, ch := range changes {
		paths = append(paths, ch.path)
	}
	return Commit{
		Revision: c.Hash.String(),
		Message:  strings.TrimRight(c.Message, "\n"),
		Author:   fromSig(c.Author),
		Paths:    paths,
	}, nil
}

// History walks the first parents of refs/heads/draft, newest first,
// starting at cursor ("" = the head) and returning at most limit commits
// (default 50, at most 1000). next is the cursor of the following page, ""
// at the end. A cursor that is not a commit id of this repository returns
// ErrBadCursor.
func (s *Store) History(ctx context.Context, id string, cursor string, limit int) (commits []Commit, next string, err error) {
	if limit <= 0 {
		limit = 50
	}
	if limit > 1000 {
		limit = 1000
	}
	err = s.read(ctx, id, func(h *handle) error {
		var c *object.Commit
		if cursor == "" {
			c, err = h.draftHead()
			if err != nil {
				return err
			}
		} else {
			hash, ok := parseHash(cursor)
			if !ok {
				return ErrBadCursor
			}
			c, err = h.commit(hash)
			if errors.Is(err, plumbing.ErrObjectNotFound) || errors.Is(err, plumbing.ErrInvalidType) ||
				errors.Is(err, object.ErrUnsupportedObject) {
				return ErrBadCursor
			}
			if err != nil {
				return err
			}
		}
		for c != nil && len(commits) < limit {
			d, err := h.describe(c)
			if err != nil {
				return err
			}
			commits = append(commits, d)
			if len(c.ParentHashes) == 0 {
				c = nil
				break
			}
			if len(commits) == limit {
				next = c.ParentHashes[0].String()
				break
			}
			if c, err = h.commit(c.ParentHashes[0]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("history %s: %w", id, err)
	}
	return commits, next, nil
}

// parseHash parses a full 40-digit lowercase hex object id.
func parseHash(s string) (plumbing.Hash, bool) {
	if len(s) != 40 {
		return plumbing.ZeroHash, false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return plumbing.ZeroHash, false
		}
	}
	return plumbing.NewHash(s), true
}
