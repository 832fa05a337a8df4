package repo

import (
	"errors"
	"fmt"
)

// Compile-time checks that the error types implement error.
var (
	_ error = (*RevisionMismatchError)(nil)
	_ error = (*DraftUnchangedError)(nil)
	_ error = (*PublishedMismatchError)(nil)
	_ error = (*RecoveryError)(nil)
)

var (
	// ErrNotFound is returned when the agent repository does not exist or
	// the agent id is not valid.
	ErrNotFound = errors.New("agent repository not found")
	// ErrExists is returned by Create when the agent repository already exists.
	ErrExists = errors.New("agent repository already exists")
	// ErrFileNotFound is returned when a path is not present in the tree read
	// or when a change deletes a path the draft does not hold.
	ErrFileNotFound = errors.New("file not found")
	// ErrVersionNotFound is returned when no tag v<n> exists.
	ErrVersionNotFound = errors.New("version not found")
	// ErrRevisionMismatch is returned (inside *RevisionMismatchError) when an
	// expected draft revision is not the current one.
	ErrRevisionMismatch = errors.New("draft revision mismatch")
	// ErrDraftUnchanged is returned (inside *DraftUnchangedError) when a
	// publish would release the same source tree as the latest version.
	ErrDraftUnchanged = errors.New("draft unchanged since latest version")
	// ErrPublishedMismatch is returned (inside *PublishedMismatchError) when
	// an expected published version is not the current one.
	ErrPublishedMismatch = errors.New("published version mismatch")
	// ErrConflict is returned when a ref changed under a compare-and-swap or
	// is locked by another writer. It wraps go-git's
	// storage.ErrReferenceHasChanged, so errors.Is matches either.
	ErrConflict = errors.New("conflict")
	// ErrDraftTooLarge is returned when a change set would leave the draft
	// above Options.MaxFiles files or Options.MaxDraftBytes bytes.
	ErrDraftTooLarge = errors.New("draft too large")
	// ErrBadCursor is returned by History when the cursor is not a commit of
	// the repository.
	ErrBadCursor = errors.New("bad history cursor")
	// ErrInvalidPath is returned when a change names a path that is not a
	// clean relative slash-separated path, lies under the reserved
	// compiled/ directory, or collides with a directory of the draft.
	ErrInvalidPath = errors.New("invalid path")
	// ErrCorrupt is returned (inside *RecoveryError) when Recover found refs
	// pointing at missing objects.
	ErrCorrupt = errors.New("repository corrupt")
)

// RevisionMismatchError reports the current draft revision when an expected
// revision is stale. errors.Is(err, ErrRevisionMismatch) holds.
type RevisionMismatchError struct {
	Current string // the commit id of refs/heads/draft
}

// Error implements error.
func (e *RevisionMismatchError) Error() string {
	return fmt.Sprintf("draft revision mismatch: current %s", e.Current)
}

// Is reports whether target is ErrRevisionMismatch.
func (e *RevisionMismatchError) Is(target error) bool { return target == ErrRevisionMismatch }

// DraftUnchangedError reports the latest version number when the draft tree
// equals that version's source tree. errors.Is(err, ErrDraftUnchanged) holds.
type DraftUnchangedError struct {
	Latest int
}

// Error implements error.
func (e *DraftUnchangedError) Error() string {
	return fmt.Sprintf("draft unchanged since v%d", e.Latest)
}

// Is reports whether target is ErrDraftUnchanged.
func (e *DraftUnchangedError) Is(target error) bool { return target == ErrDraftUnchanged }

// PublishedMismatchError reports the current published version number (0 if
// none) when an expected one is stale. errors.Is(err, ErrPublishedMismatch)
// holds.
type PublishedMismatchError struct {
	Current int
}

// Error implements error.
func (e *PublishedMismatchError) Error() string {
	return fmt.Sprintf("published version mismatch: current %d", e.Current)
}

// Is reports whether target is ErrPublishedMismatch.
func (e *PublishedMismatchError) Is(target error) bool { return target == ErrPublishedMismatch }

// RecoveryError lists what Recover found broken. Moved names refs that
// pointed at missing objects and were moved aside to <repo>/lost-refs/;
// Broken names refs that could not be repaired. errors.Is(err, ErrCorrupt)
// holds.
type RecoveryError struct {
	ID     string
	Moved  []string
	Broken []string
}

// Error implements error.
func (e *RecoveryError) Error() string {
	return fmt.Sprintf("recover %s: moved aside %v, broken %v", e.ID, e.Moved, e.Broken)
}

// Is reports whether target is ErrCorrupt.
func (e *RecoveryError) Is(target error) bool { return target == ErrCorrupt }
