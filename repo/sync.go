package repo

import (
	"io/fs"
	"os"
	"path/filepath"
)

// syncPath fsyncs the file or directory at p.
func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncPaths fsyncs every path concurrently and returns the first error.
func syncPaths(paths []string) error {
	if len(paths) == 1 {
		return syncPath(paths[0])
	}
	errs := make(chan error, len(paths))
	sem := make(chan struct{}, 16)
	for _, p := range paths {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errs <- syncPath(p)
		}()
	}
	var first error
	for range paths {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// syncDir fsyncs directory d so renames and new entries in it are durable.
func syncDir(d string) error { return syncPath(d) }

// syncTree fsyncs every file below dir, then every directory, deepest first.
func syncTree(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		return syncPath(p)
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syncPath(dirs[i]); err != nil {
			return err
		}
	}
	return nil
}
