package repo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// packedRefsFile is the file git pack-refs writes.
const packedRefsFile = "packed-refs"

// parsePackedRefs parses the content of a packed-refs file: name → hash,
// skipping comments and peeled ("^") lines.
func parsePackedRefs(b []byte) map[plumbing.ReferenceName]plumbing.Hash {
	refs := map[plumbing.ReferenceName]plumbing.Hash{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || line[0] == '^' {
			continue
		}
		hash, name, ok := strings.Cut(line, " ")
		if h, valid := parseHash(hash); ok && valid {
			refs[plumbing.ReferenceName(name)] = h
		}
	}
	return refs
}

// packedRefs is a parsed packed-refs file with the identity of the file it
// was read from, so a handle rereads it only when it changed.
type packedRefs struct {
	fi   os.FileInfo // nil when the file does not exist
	refs map[plumbing.ReferenceName]plumbing.Hash
}

// readPackedRefs reads the packed-refs file of dir; a missing file is an
// empty set.
func readPackedRefs(dir string) (*packedRefs, error) {
	p := filepath.Join(dir, packedRefsFile)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &packedRefs{refs: map[plumbing.ReferenceName]plumbing.Hash{}}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return &packedRefs{fi: fi, refs: parsePackedRefs(b)}, nil
}

// packed returns the packed refs of h, rereading packed-refs when its
// size, time or inode changed since the last read.
func (h *handle) packed() (map[plumbing.ReferenceName]plumbing.Hash, error) {
	fi, err := os.Stat(filepath.Join(h.dir, packedRefsFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if h.pr != nil && (fi == nil) == (h.pr.fi == nil) && (fi == nil || os.SameFile(fi, h.pr.fi) &&
		fi.Size() == h.pr.fi.Size() && fi.ModTime().Equal(h.pr.fi.ModTime())) {
		return h.pr.refs, nil
	}
	pr, err := readPackedRefs(h.dir)
	if err != nil {
		return nil, err
	}
	h.pr = pr
	return pr.refs, nil
}

// listRefs returns every hash ref under refs/ (loose refs win over
// packed-refs), skipping "*.lock" files and files that do not hold an
// object id. go-git's own iterator fails on an empty leftover lock file.
func listRefs(dir string) (map[plumbing.ReferenceName]plumbing.Hash, error) {
	pr, err := readPackedRefs(dir)
	if err != nil {
		return nil, err
	}
	refs := pr.refs
	root := filepath.Join(dir, "refs")
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || strings.HasSuffix(d.Name(), ".lock") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h, ok := parseHash(strings.TrimSpace(string(b)))
		if !ok {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		refs[plumbing.ReferenceName(filepath.ToSlash(rel))] = h
		return nil
	})
	if err != nil {
		return nil, err
	}
	return refs, nil
}

// refHash returns the hash ref name points at, or the zero hash if it does
// not exist. A loose ref file shadows the packed-refs entry of the same
// name, as in git. A loose file that is empty (what a crash can leave of a
// ref written in place by another tool) or symbolic is an error.
func (h *handle) refHash(name plumbing.ReferenceName) (plumbing.Hash, error) {
	b, err := os.ReadFile(filepath.Join(h.dir, filepath.FromSlash(name.String())))
	if err == nil {
		s := strings.TrimSpace(string(b))
		if hash, ok := parseHash(s); ok {
			return hash, nil
		}
		if strings.HasPrefix(s, "ref: ") {
			return plumbing.ZeroHash, fmt.Errorf("ref %s is symbolic", name)
		}
		return plumbing.ZeroHash, fmt.Errorf("ref %s: malformed content %q", name, s)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return plumbing.ZeroHash, fmt.Errorf("ref %s: %w", name, err)
	}
	packed, err := h.packed()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("ref %s: %w", name, err)
	}
	return packed[name], nil
}

// deleteRef removes ref name from packed-refs and its loose file, as git's
// files backend does: under "<ref>.lock" and "packed-refs.lock" (both
// O_EXCL, so a concurrent git process is excluded), packed-refs is
// rewritten without the ref first and the loose file removed last, so a
// crash in between leaves the loose value (never an older packed one) in
// effect. With doSync the new packed-refs and the directories are fsynced.
func (h *handle) deleteRef(name plumbing.ReferenceName, doSync bool) error {
	p := filepath.Join(h.dir, filepath.FromSlash(name.String()))
	lock, err := os.OpenFile(p+".lock", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return conflict(name, "is locked")
	}
	if err != nil {
		return fmt.Errorf("delete ref %s: %w", name, err)
	}
	_ = lock.Close()
	defer os.Remove(p + ".lock")
	if err := h.rewritePacked(func(refs []packedLine) []packedLine {
		out := refs[:0]
		for i := 0; i < len(refs); i++ {
			if refs[i].name == name {
				if i+1 < len(refs) && refs[i+1].peeled {
					i++ // its peeled line goes too
				}
				continue
			}
			out = append(out, refs[i])
		}
		return out
	}, doSync); err != nil {
		return fmt.Errorf("delete ref %s: %w", name, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete ref %s: %w", name, err)
	}
	if doSync {
		if err := syncDir(filepath.Dir(p)); err != nil {
			return fmt.Errorf("delete ref %s: %w", name, err)
		}
	}
	return nil
}

// packedLine is one line of packed-refs: a header or comment (name and
// hash empty), a ref, or the peeled line following a ref.
type packedLine struct {
	text   string
	name   plumbing.ReferenceName
	peeled bool
}

// rewritePacked rewrites packed-refs through packed-refs.lock with the lines
// edit returns; edit may only drop lines. The file is left alone when it
// does not exist or edit dropped nothing.
func (h *handle) rewritePacked(edit func([]packedLine) []packedLine, doSync bool) (err error) {
	p := filepath.Join(h.dir, packedRefsFile)
	lock := p + ".lock"
	f, err := os.OpenFile(lock, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return conflict(plumbing.ReferenceName(packedRefsFile), "is locked")
	}
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			_ = f.Close()
			_ = os.Remove(lock)
		}
	}()
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var lines []packedLine
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l == "" {
			continue
		}
		pl := packedLine{text: l}
		switch {
		case l[0] == '^':
			pl.peeled = true
		case l[0] != '#':
			if _, n, ok := strings.Cut(strings.TrimRight(l, "\n"), " "); ok {
				pl.name = plumbing.ReferenceName(n)
			}
		}
		lines = append(lines, pl)
	}
	before := len(lines)
	lines = edit(lines)
	if len(lines) == before {
		return nil
	}
	var out strings.Builder
	for _, l := range lines {
		out.WriteString(l.text)
	}
	if _, err := f.WriteString(out.String()); err != nil {
		return err
	}
	if doSync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(lock, p); err != nil {
		return err
	}
	done = true
	h.pr = nil
	if doSync {
		return syncDir(h.dir)
	}
	return nil
}
