package repo

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// listRefs returns every hash ref under refs/ (loose refs win over
// packed-refs), skipping "*.lock" files and files that do not hold an
// object id. go-git's own iterator fails on an empty leftover lock file.
func listRefs(dir string) (map[plumbing.ReferenceName]plumbing.Hash, error) {
	refs := map[plumbing.ReferenceName]plumbing.Hash{}
	if b, err := os.ReadFile(filepath.Join(dir, "packed-refs")); err == nil {
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
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	root := filepath.Join(dir, "refs")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
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
