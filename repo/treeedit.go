package repo

import (
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// treeStat is what the draft limits count below a tree: its files (blobs
// at any depth; submodules are not files) and their total size.
type treeStat struct {
	files int
	bytes int64
}

func (a treeStat) plus(b treeStat) treeStat {
	return treeStat{files: a.files + b.files, bytes: a.bytes + b.bytes}
}

func (a treeStat) minus(b treeStat) treeStat {
	return treeStat{files: a.files - b.files, bytes: a.bytes - b.bytes}
}

// treeStat returns the files and bytes below tree t (zero: none). It is
// kept in the shared cache by tree id, so it is computed from every blob
// size once and then derived for each new tree from its base.
func (h *handle) treeStat(t plumbing.Hash) (treeStat, error) {
	if t.IsZero() {
		return treeStat{}, nil
	}
	if st, ok := h.cache.stat(t); ok {
		return st, nil
	}
	tr, err := h.tree(t)
	if err != nil {
		return treeStat{}, fmt.Errorf("tree %s: %w", t, err)
	}
	var st treeStat
	for _, e := range tr.Entries {
		switch e.Mode {
		case filemode.Submodule:
		case filemode.Dir:
			sub, err := h.treeStat(e.Hash)
			if err != nil {
				return treeStat{}, err
			}
			st = st.plus(sub)
		default:
			n, err := h.blobSize(e.Hash)
			if err != nil {
				return treeStat{}, err
			}
			st = st.plus(treeStat{files: 1, bytes: n})
		}
	}
	h.cache.putStat(t, st)
	return st, nil
}

// treeEdit is a change set below one directory: files set (an entry) or
// deleted (nil) by name, and the change sets of subdirectories.
type treeEdit struct {
	files map[string]*entry
	dirs  map[string]*treeEdit
}

func newTreeEdit() *treeEdit {
	return &treeEdit{files: map[string]*entry{}, dirs: map[string]*treeEdit{}}
}

// set records that path p (relative to e) becomes v, or is deleted if v is
// nil.
func (e *treeEdit) set(p string, v *entry) {
	for {
		i := strings.IndexByte(p, '/')
		if i < 0 {
			e.files[p] = v
			return
		}
		c := e.dirs[p[:i]]
		if c == nil {
			c = newTreeEdit()
			e.dirs[p[:i]] = c
		}
		e, p = c, p[i+1:]
	}
}

// newTree is a tree object made by applyEdit, to be written once the
// change set is validated.
type newTree struct {
	hash    plumbing.Hash
	entries []object.TreeEntry
	data    []byte
}

// applyEdit returns tree base (zero: empty) with edit applied, and the
// files and bytes below it; a zero hash means the directory is left
// without files. Only the directories on the changed paths are read and
// rebuilt: every other subtree keeps its id, and sizes come from the
// base's cached stats, so the cost follows the change (and the size of the
// directories it touches), not the size of the tree. The new tree objects
// are appended to out, each after its subtrees. sizes holds the sizes of
// blobs edit adds. A path that would be both a file and a directory
// returns ErrInvalidPath.
func (h *handle) applyEdit(base plumbing.Hash, edit *treeEdit, prefix string, sizes map[plumbing.Hash]int64, out *[]newTree) (plumbing.Hash, treeStat, error) {
	var old []object.TreeEntry
	if !base.IsZero() {
		tr, err := h.tree(base)
		if err != nil {
			return plumbing.ZeroHash, treeStat{}, fmt.Errorf("tree %s: %w", base, err)
		}
		old = tr.Entries
	}
	st, err := h.treeStat(base)
	if err != nil {
		return plumbing.ZeroHash, treeStat{}, err
	}
	entries := make([]object.TreeEntry, 0, len(old)+len(edit.files)+len(edit.dirs))
	// The base entries of the names edit touches, by kind.
	baseFile := map[string]object.TreeEntry{}
	baseDir := map[string]object.TreeEntry{}
	for _, e := range old {
		_, f := edit.files[e.Name]
		_, d := edit.dirs[e.Name]
		switch {
		case !f && !d:
			entries = append(entries, e)
		case e.Mode == filemode.Dir:
			baseDir[e.Name] = e
		case e.Mode != filemode.Submodule:
			baseFile[e.Name] = e
		}
	}
	blobSize := func(b plumbing.Hash) (int64, error) {
		if n, ok := sizes[b]; ok {
			return n, nil
		}
		return h.blobSize(b)
	}
	touch := func(name string) error {
		var file *entry
		if v, ok := edit.files[name]; ok {
			file = v
		} else if e, ok := baseFile[name]; ok {
			file = &entry{hash: e.Hash, mode: e.Mode}
		}
		var dir plumbing.Hash
		var dirStat treeStat
		if sub, ok := edit.dirs[name]; ok {
			var err error
			if dir, dirStat, err = h.applyEdit(baseDir[name].Hash, sub, prefix+name+"/", sizes, out); err != nil {
				return err
			}
		} else if e, ok := baseDir[name]; ok {
			var err error
			if dirStat, err = h.treeStat(e.Hash); err != nil {
				return err
			}
			if dirStat.files > 0 {
				dir = e.Hash
			}
		}
		if file != nil && !dir.IsZero() {
			return fmt.Errorf("%w: %q is a file and a directory", ErrInvalidPath, prefix+name)
		}
		if e, ok := baseFile[name]; ok {
			n, err := h.blobSize(e.Hash)
			if err != nil {
				return err
			}
			st = st.minus(treeStat{files: 1, bytes: n})
		}
		if e, ok := baseDir[name]; ok {
			sub, err := h.treeStat(e.Hash)
			if err != nil {
				return err
			}
			st = st.minus(sub)
		}
		if file != nil {
			n, err := blobSize(file.hash)
			if err != nil {
				return err
			}
			st = st.plus(treeStat{files: 1, bytes: n})
			entries = append(entries, object.TreeEntry{Name: name, Mode: file.mode, Hash: file.hash})
		}
		if !dir.IsZero() {
			st = st.plus(dirStat)
			entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: dir})
		}
		return nil
	}
	for name := range edit.files {
		if err := touch(name); err != nil {
			return plumbing.ZeroHash, treeStat{}, err
		}
	}
	for name := range edit.dirs {
		if _, done := edit.files[name]; done {
			continue
		}
		if err := touch(name); err != nil {
			return plumbing.ZeroHash, treeStat{}, err
		}
	}
	if len(entries) == 0 {
		return plumbing.ZeroHash, treeStat{}, nil
	}
	sortEntries(entries)
	if sameEntries(entries, old) {
		return base, st, nil
	}
	data := encodeTree(entries)
	t := plumbing.ComputeHash(plumbing.TreeObject, data)
	h.cache.putStat(t, st)
	*out = append(*out, newTree{hash: t, entries: entries, data: data})
	return t, st, nil
}

func sameEntries(a, b []object.TreeEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// putNewTree writes a tree made by applyEdit, which hashed it.
func (w *writeSet) putNewTree(t newTree) error {
	if _, err := w.putHashed(plumbing.TreeObject, t.data, t.hash); err != nil {
		return err
	}
	w.h.cache.putTree(t.hash, t.entries)
	return nil
}
