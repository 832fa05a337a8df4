package repo

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage"
)

const (
	draftBranch     = "draft"
	publishedBranch = "published"
	compiledDir     = "compiled"
	compiledPath    = "compiled/agent.json"
	modeFile        = filemode.Regular
)

var (
	draftRef     = plumbing.NewBranchReferenceName(draftBranch)
	publishedRef = plumbing.NewBranchReferenceName(publishedBranch)
)

// entry is one blob of a flattened tree.
type entry struct {
	hash plumbing.Hash
	mode filemode.FileMode
}

// tagRef returns the ref name of version n.
func tagRef(n int) plumbing.ReferenceName {
	return plumbing.NewTagReferenceName("v" + strconv.Itoa(n))
}

// tagNumber returns n for refs/tags/v<n> with n >= 1 written without
// leading zeros.
func tagNumber(name plumbing.ReferenceName) (int, bool) {
	s, ok := strings.CutPrefix(name.String(), "refs/tags/v")
	if !ok || s == "" || s[0] == '0' || len(s) > 9 {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

// checkPath reports ErrInvalidPath unless p is a clean relative
// slash-separated file path outside compiled/ and .git.
func checkPath(p string) error {
	bad := p == "" || len(p) > 4096 || strings.ContainsAny(p, "\x00\\") ||
		path.Clean(p) != p || strings.HasPrefix(p, "/") || p == "." ||
		strings.HasPrefix(p, "../") || p == ".." ||
		p == compiledDir || strings.HasPrefix(p, compiledDir+"/")
	if !bad {
		for _, seg := range strings.Split(p, "/") {
			if seg == "." || seg == ".." || strings.EqualFold(seg, ".git") {
				bad = true
				break
			}
		}
	}
	if bad {
		return fmt.Errorf("%w: %q", ErrInvalidPath, p)
	}
	return nil
}

// checkCollisions reports ErrInvalidPath when a path of flat is also a
// directory of another path.
func checkCollisions(flat map[string]entry) error {
	for p := range flat {
		for i := strings.IndexByte(p, '/'); i >= 0; i = nextSlash(p, i) {
			if _, ok := flat[p[:i]]; ok {
				return fmt.Errorf("%w: %q is a file and a directory", ErrInvalidPath, p[:i])
			}
		}
	}
	return nil
}

func nextSlash(p string, i int) int {
	j := strings.IndexByte(p[i+1:], '/')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

func toSig(g Signature) object.Signature {
	return object.Signature{Name: g.Name, Email: g.Email, When: g.When}
}

func fromSig(g object.Signature) Signature {
	return Signature{Name: g.Name, Email: g.Email, When: g.When.UTC()}
}

// endLine makes s end with exactly one newline.
func endLine(s string) string {
	return strings.TrimRight(s, "\n") + "\n"
}

// conflict returns an error matching both ErrConflict and go-git's
// storage.ErrReferenceHasChanged.
func conflict(name plumbing.ReferenceName, why string) error {
	return fmt.Errorf("ref %s %s: %w: %w", name, why, ErrConflict, storage.ErrReferenceHasChanged)
}

// setRef moves ref name from old to nh as a compare-and-swap; a zero old
// means the ref must not exist. Like git, it takes "<ref>.lock" with
// O_EXCL (so concurrent git processes are excluded too), compares the
// current value, writes the lock file and renames it over the ref, so the
// ref file is replaced atomically and is never seen empty or half written.
// go-git's CheckAndSetReference truncates and rewrites the ref in place,
// which a crash can leave empty; this is the same compare-and-swap without
// that window. With doSync the new ref file and its directory are fsynced.
func (h *handle) setRef(name plumbing.ReferenceName, nh, old plumbing.Hash, doSync bool) (err error) {
	p := filepath.Join(h.dir, filepath.FromSlash(name.String()))
	lock := p + ".lock"
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("ref %s: %w", name, err)
	}
	f, err := os.OpenFile(lock, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return conflict(name, "is locked")
	}
	if err != nil {
		return fmt.Errorf("ref %s: %w", name, err)
	}
	done := false
	defer func() {
		if !done {
			_ = f.Close()
			_ = os.Remove(lock)
		}
	}()
	cur, err := h.refHash(name)
	if err != nil {
		return fmt.Errorf("ref %s: %w", name, err)
	}
	if cur != old {
		return conflict(name, "has changed")
	}
	if _, err := f.WriteString(nh.String() + "\n"); err != nil {
		return fmt.Errorf("ref %s: %w", name, err)
	}
	if doSync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("ref %s: %w", name, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("ref %s: %w", name, err)
	}
	if err := os.Rename(lock, p); err != nil {
		return fmt.Errorf("ref %s: %w", name, err)
	}
	done = true
	if doSync {
		if err := syncPath(filepath.Dir(p)); err != nil {
			return fmt.Errorf("ref %s: %w", name, err)
		}
	}
	return nil
}

// commit reads commit c.
func (h *handle) commit(c plumbing.Hash) (*object.Commit, error) {
	obj, err := h.object(plumbing.CommitObject, c)
	if err != nil {
		return nil, err
	}
	return object.DecodeCommit(h.st, obj)
}

// tree reads tree t.
// The returned tree is shared through the cache and must not be modified.
func (h *handle) tree(t plumbing.Hash) (*object.Tree, error) {
	if it, ok := h.cache.get(t); ok && it.isTree {
		return &object.Tree{Hash: t, Entries: it.tree}, nil
	}
	tr, ok, err := h.looseTree(t)
	if err != nil {
		return nil, err
	}
	if !ok {
		obj, err := h.object(plumbing.TreeObject, t)
		if err != nil {
			return nil, err
		}
		if tr, err = object.DecodeTree(h.st, obj); err != nil {
			return nil, err
		}
	}
	h.cache.putTree(t, tr.Entries)
	return tr, nil
}

// flatten lists every blob below tree t as path → entry; skip (a top-level
// directory name, or "") is left out.
func (h *handle) flatten(t plumbing.Hash, skip string) (map[string]entry, error) {
	out := map[string]entry{}
	if t.IsZero() {
		return out, nil
	}
	var walk func(t plumbing.Hash, prefix string) error
	walk = func(t plumbing.Hash, prefix string) error {
		tr, err := h.tree(t)
		if err != nil {
			return fmt.Errorf("tree %s: %w", t, err)
		}
		for _, e := range tr.Entries {
			if prefix == "" && skip != "" && e.Name == skip {
				continue
			}
			if e.Mode == filemode.Dir {
				if err := walk(e.Hash, prefix+e.Name+"/"); err != nil {
					return err
				}
				continue
			}
			if e.Mode == filemode.Submodule {
				continue
			}
			out[prefix+e.Name] = entry{hash: e.Hash, mode: e.Mode}
		}
		return nil
	}
	return out, walk(t, "")
}

// blob reads blob b. The returned bytes are shared through the cache and
// must not be modified.
func (h *handle) blob(b plumbing.Hash) ([]byte, error) {
	if it, ok := h.cache.get(b); ok && !it.isTree {
		return it.blob, nil
	}
	data, ok, err := h.looseBlob(b)
	if err != nil {
		return nil, err
	}
	if ok {
		h.sizes[b] = int64(len(data))
		h.cache.putBlob(b, data)
		return data, nil
	}
	obj, err := h.object(plumbing.BlobObject, b)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", b, err)
	}
	r, err := obj.Reader()
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", b, err)
	}
	defer r.Close()
	data, err = io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", b, err)
	}
	h.sizes[b] = int64(len(data))
	h.cache.putBlob(b, data)
	return data, nil
}

// blobSize returns the size of blob b, cached per handle.
func (h *handle) blobSize(b plumbing.Hash) (int64, error) {
	if n, ok := h.sizes[b]; ok {
		return n, nil
	}
	if it, ok := h.cache.get(b); ok && !it.isTree {
		return int64(len(it.blob)), nil
	}
	n, err := looseSize(h.dir, b)
	if errors.Is(err, fs.ErrNotExist) {
		n, err = h.st.EncodedObjectSize(b)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			h.st.Reindex()
			n, err = h.st.EncodedObjectSize(b)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", b, err)
	}
	if len(h.sizes) > 1<<16 {
		clear(h.sizes)
	}
	h.sizes[b] = n
	return n, nil
}

// object reads object hash of type t through go-git. go-git reads the list
// of packs once per handle; on a miss the list is read again and the
// lookup retried, as git does, so a handle opened before a pack appeared
// still finds the objects moved into it.
func (h *handle) object(t plumbing.ObjectType, hash plumbing.Hash) (plumbing.EncodedObject, error) {
	obj, err := h.st.EncodedObject(t, hash)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		h.st.Reindex()
		obj, err = h.st.EncodedObject(t, hash)
	}
	return obj, err
}

// hasObject reports whether the repository has object hash, loose or
// packed, reading the list of packs again before it says no.
func (h *handle) hasObject(hash plumbing.Hash) bool {
	if h.st.HasEncodedObject(hash) == nil {
		return true
	}
	h.st.Reindex()
	return h.st.HasEncodedObject(hash) == nil
}
