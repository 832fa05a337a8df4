package repo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// writeMark is the file that says a write to the repository is under way
// (see [Store.MarkWriting]).
const writeMark = "flowyte-writing"

// MarkWriting records in repository id that a write is under way and
// reports whether the previous writer's mark was still there: that writer
// stopped in the middle (a SIGKILL, a crash, an error after git moved), so
// the caller must bring the agent in step (Recover, then the database)
// before writing. The mark stays until [Store.ClearWriting].
//
// Several daemons over one shared data directory call it under the
// agent's cluster-wide lock, so a clean history costs one file creation
// and removal per write instead of a full recovery. The mark is not
// fsynced: it survives the death of its process (the page cache is the
// kernel's), and a crash of the machine itself restarts every daemon on
// it, whose startup checks every agent not cleanly stopped anyway.
func (s *Store) MarkWriting(id string) (interrupted bool, err error) {
	if !validID(id) {
		return false, ErrNotFound
	}
	f, err := os.OpenFile(filepath.Join(s.Path(id), writeMark), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		return false, f.Close()
	case errors.Is(err, fs.ErrExist):
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, ErrNotFound
	}
	return false, fmt.Errorf("mark write %s: %w", id, err)
}

// ClearWriting removes the mark of [Store.MarkWriting] once the write and
// everything that mirrors it (database rows) are complete.
func (s *Store) ClearWriting(id string) error {
	if !validID(id) {
		return ErrNotFound
	}
	if err := os.Remove(filepath.Join(s.Path(id), writeMark)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("clear write mark %s: %w", id, err)
	}
	return nil
}
