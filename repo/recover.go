package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// Recover repairs the repository of id after a crash. Under the agent lock
// (after any running Housekeep of id) it removes stale "*.lock" files (HEAD, config, packed-refs, refs/**) and
// temporary objects (objects/pack/tmp_*, objects/**/tmp_obj_*), makes HEAD
// a symbolic ref to refs/heads/draft, checks that every ref points at an
// existing object (and every tag at an existing target), and reloads the
// in-memory caches (latest version number, published version).
//
// Given the write order (objects fsynced before refs) a ref to a missing
// object cannot happen; if one is found anyway, a broken tag or published
// ref is recorded in <repo>/lost-refs/ and deleted (loose and packed), a broken draft
// ref is left in place, and a *RecoveryError (errors.Is ErrCorrupt) lists
// them. It must not run concurrently with a git process writing the repo.
func (s *Store) Recover(ctx context.Context, id string) error {
	if !validID(id) {
		return ErrNotFound
	}
	a, err := s.lockAll(ctx, id)
	if err != nil {
		return err
	}
	defer s.unlockAll(a)
	if !s.Exists(id) {
		return ErrNotFound
	}
	if a.h != nil {
		a.h.close()
		a.h = nil
	}
	dir := s.Path(id)
	if err := removeLeftovers(dir); err != nil {
		return fmt.Errorf("recover %s: %w", id, err)
	}
	if err := s.fixHEAD(dir); err != nil {
		return fmt.Errorf("recover %s: %w", id, err)
	}
	h, err := s.openHandle(a)
	if err != nil {
		return fmt.Errorf("recover %s: %w", id, err)
	}
	rerr := &RecoveryError{ID: id}
	all, err := listRefs(dir)
	if err != nil {
		return fmt.Errorf("recover %s: %w", id, err)
	}
	refs := make([]*plumbing.Reference, 0, len(all))
	for name, hash := range all {
		refs = append(refs, plumbing.NewHashReference(name, hash))
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].Name() < refs[j].Name() })
	if _, ok := all[draftRef]; !ok {
		rerr.Broken = append(rerr.Broken, draftRef.String()+" (missing)")
	}
	for _, r := range refs {
		if h.refIntact(r) {
			continue
		}
		name := r.Name()
		if name == draftRef {
			rerr.Broken = append(rerr.Broken, name.String())
			continue
		}
		if err := s.moveAside(h, name, r.Hash()); err != nil {
			rerr.Broken = append(rerr.Broken, name.String())
			continue
		}
		rerr.Moved = append(rerr.Moved, name.String())
	}
	// Reload the caches from the repaired refs.
	a.h = nil
	h.close()
	h, err = s.openHandle(a)
	if err != nil {
		return fmt.Errorf("recover %s: %w", id, err)
	}
	if _, _, err := h.publishedNumber(); err != nil {
		rerr.Broken = append(rerr.Broken, publishedRef.String()+" (not a version's release commit)")
	}
	if len(rerr.Moved) > 0 || len(rerr.Broken) > 0 {
		return rerr
	}
	return nil
}

// refIntact reports whether r points at an existing object and, for an
// annotated tag, at a tag whose target exists.
func (h *handle) refIntact(r *plumbing.Reference) bool {
	obj, err := h.object(plumbing.AnyObject, r.Hash())
	if err != nil {
		return false
	}
	switch obj.Type() {
	case plumbing.TagObject:
		t, err := h.readTag(r.Hash())
		if err != nil {
			return false
		}
		_, err = h.commit(t.target)
		return err == nil
	case plumbing.CommitObject:
		c, err := h.commit(r.Hash())
		if err != nil {
			return false
		}
		return h.hasObject(c.TreeHash)
	}
	return true
}

// moveAside records ref name (and its packed-refs value when a loose file
// shadows a different one) in a new file under <dir>/lost-refs/, then
// deletes the ref from packed-refs and its loose file, so no older packed
// value resurfaces. Nothing is erased before the record is durable.
func (s *Store) moveAside(h *handle, name plumbing.ReferenceName, hash plumbing.Hash) error {
	lost := filepath.Join(h.dir, "lost-refs")
	if err := os.MkdirAll(lost, 0o755); err != nil {
		return err
	}
	record := hash.String() + "\n"
	packed, err := h.packed()
	if err != nil {
		return err
	}
	if ph, ok := packed[name]; ok && ph != hash {
		record += ph.String() + " packed\n"
	}
	dst := filepath.Join(lost, fmt.Sprintf("%s-%d", strings.ReplaceAll(name.String(), "/", "_"), s.o.Now().UnixNano()))
	if err := os.WriteFile(dst, []byte(record), 0o644); err != nil {
		return err
	}
	if s.o.Sync {
		if err := syncPath(dst); err != nil {
			return err
		}
		if err := syncDir(lost); err != nil {
			return err
		}
	}
	return h.deleteRef(name, s.o.Sync)
}

// removeLeftovers deletes lock files and temporary object files a crash
// may leave behind (Housekeep's staging directory; git pack-refs writes packed-refs.new under
// packed-refs.lock): go-git's tmp_obj_*, pack-objects' tmp_pack_* and
// tmp_idx_*, git repack's objects/pack/.tmp-* and any pack whose index is
// missing (an interrupted repack renames the index into place last and
// deletes nothing before all its packs are complete, so such a pack holds
// only objects that exist elsewhere; go-git would fail on it).
func removeLeftovers(dir string) error {
	if err := os.RemoveAll(filepath.Join(dir, repackDir)); err != nil {
		return err
	}
	for _, f := range []string{"HEAD.lock", "config.lock", "packed-refs.lock", "packed-refs.new", "index.lock", "shallow.lock"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	walk := func(root string, match func(name string) bool) error {
		return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			if !d.IsDir() && match(d.Name()) {
				return os.Remove(p)
			}
			return nil
		})
	}
	if err := walk(filepath.Join(dir, "refs"), func(n string) bool { return strings.HasSuffix(n, ".lock") }); err != nil {
		return err
	}
	if err := walk(filepath.Join(dir, "objects"), func(n string) bool {
		return strings.HasPrefix(n, "tmp_obj_") || strings.HasPrefix(n, "tmp_pack_") || strings.HasPrefix(n, "tmp_idx_") ||
			strings.HasPrefix(n, ".tmp-")
	}); err != nil {
		return err
	}
	packDir := filepath.Join(dir, "objects", "pack")
	ents, err := os.ReadDir(packDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		base, ok := strings.CutSuffix(e.Name(), ".pack")
		if !ok || !strings.HasPrefix(base, "pack-") {
			continue
		}
		if _, err := os.Stat(filepath.Join(packDir, base+".idx")); errors.Is(err, fs.ErrNotExist) {
			if err := os.Remove(filepath.Join(packDir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// fixHEAD makes HEAD a symbolic ref to refs/heads/draft, replacing it
// atomically if it is anything else.
func (s *Store) fixHEAD(dir string) error {
	want := "ref: " + draftRef.String() + "\n"
	p := filepath.Join(dir, "HEAD")
	if b, err := os.ReadFile(p); err == nil && string(b) == want {
		return nil
	}
	tmp := p + ".lock"
	if err := os.WriteFile(tmp, []byte(want), 0o644); err != nil {
		return err
	}
	if s.o.Sync {
		if err := syncPath(tmp); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, p); err != nil {
		return err
	}
	if s.o.Sync {
		return syncDir(dir)
	}
	return nil
}
