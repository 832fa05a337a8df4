package repo

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/objfile"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// readLoose reads loose object h of the repository at dir straight from
// objects/xx/yyyy (go-git's billy path resolution costs several syscalls per
// open). It is safe for concurrent use. A missing loose object returns an
// error matching fs.ErrNotExist; the caller then asks go-git, which also
// searches packfiles.
func readLoose(dir string, h plumbing.Hash) (plumbing.ObjectType, []byte, error) {
	hex := h.String()
	f, err := os.Open(filepath.Join(dir, "objects", hex[:2], hex[2:]))
	if err != nil {
		return plumbing.InvalidObject, nil, err
	}
	defer f.Close()
	r, err := objfile.NewReader(f)
	if err != nil {
		return plumbing.InvalidObject, nil, fmt.Errorf("object %s: %w", hex, err)
	}
	defer r.Close()
	typ, size, err := r.Header()
	if err != nil {
		return plumbing.InvalidObject, nil, fmt.Errorf("object %s: %w", hex, err)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return plumbing.InvalidObject, nil, fmt.Errorf("object %s: %w", hex, err)
	}
	return typ, data, nil
}

// looseSize reads only the header of loose object h.
func looseSize(dir string, h plumbing.Hash) (int64, error) {
	hex := h.String()
	f, err := os.Open(filepath.Join(dir, "objects", hex[:2], hex[2:]))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r, err := objfile.NewReader(f)
	if err != nil {
		return 0, fmt.Errorf("object %s: %w", hex, err)
	}
	defer r.Close()
	_, size, err := r.Header()
	if err != nil {
		return 0, fmt.Errorf("object %s: %w", hex, err)
	}
	return size, nil
}

// looseBlob reads blob b from the loose objects, or reports ok=false when
// it is not a loose object.
func (h *handle) looseBlob(b plumbing.Hash) (data []byte, ok bool, err error) {
	typ, data, err := readLoose(h.dir, b)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if typ != plumbing.BlobObject {
		return nil, false, fmt.Errorf("object %s is a %s, not a blob", b, typ)
	}
	return data, true, nil
}

// looseTree reads and decodes tree t from the loose objects, or reports
// ok=false when it is not a loose object.
func (h *handle) looseTree(t plumbing.Hash) (tr *object.Tree, ok bool, err error) {
	typ, data, err := readLoose(h.dir, t)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if typ != plumbing.TreeObject {
		return nil, false, fmt.Errorf("object %s is a %s, not a tree", t, typ)
	}
	obj := &plumbing.MemoryObject{}
	obj.SetType(plumbing.TreeObject)
	if _, err := obj.Write(data); err != nil {
		return nil, false, err
	}
	tr = &object.Tree{}
	if err := tr.Decode(obj); err != nil {
		return nil, false, fmt.Errorf("tree %s: %w", t, err)
	}
	return tr, true, nil
}

// prefetch reads the loose blobs among hashes that are not cached, with a
// few concurrent readers, into the shared cache, so a cold diff or compile
// does not wait for each file in turn. Errors are left for the later
// sequential read to report.
func (h *handle) prefetch(hashes []plumbing.Hash) {
	var todo []plumbing.Hash
	for _, b := range hashes {
		if _, ok := h.cache.get(b); !ok && !b.IsZero() {
			todo = append(todo, b)
		}
	}
	if len(todo) < 8 {
		return
	}
	work := make(chan plumbing.Hash)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				if typ, data, err := readLoose(h.dir, b); err == nil && typ == plumbing.BlobObject {
					h.cache.putBlob(b, data)
				}
			}
		}()
	}
	for _, b := range todo {
		work <- b
	}
	close(work)
	wg.Wait()
}
