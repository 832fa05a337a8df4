package backend

import (
	"errors"
	"fmt"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/store"
)

// Error is a failure a client must see: a problem code (CONTRACT §3), a
// human message, and extension members. Transports map Code to their own
// status (HTTP status, git's text) through one table.
type Error struct {
	Code string `json:"code"`
	// Message is a human sentence (never internals).
	Message string `json:"message,omitempty"`
	// Extra holds extension members (errors, currentRevision, ...).
	Extra map[string]any `json:"extra,omitempty"`
}

var _ error = (*Error)(nil)

// Error implements error.
func (e *Error) Error() string {
	if e.Message != "" {
		return e.Code + ": " + e.Message
	}
	return e.Code
}

// Errorf builds an Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// With adds an extension member and returns e.
func (e *Error) With(key string, value any) *Error {
	if e.Extra == nil {
		e.Extra = map[string]any{}
	}
	e.Extra[key] = value
	return e
}

// FieldError is one entry of a validation error's "errors" member.
type FieldError struct {
	Pointer string `json:"pointer"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Invalid is a validation_failed error naming one field.
func Invalid(pointer, code, message string) *Error {
	return Errorf("validation_failed", "%s", message).With("errors", []FieldError{{Pointer: pointer, Code: code, Message: message}})
}

// Sentinels for authentication, mapped by transports to their own
// challenge (WWW-Authenticate, git's credential prompt).
var (
	// ErrUnauthenticated is returned when no credentials were sent.
	ErrUnauthenticated = errors.New("no credentials")
	// ErrInvalidKey is returned for a malformed, unknown or revoked key.
	ErrInvalidKey = errors.New("invalid key")
)

// ErrorOf maps any error to the Error a client sees: the one table of the
// daemon. It returns nil for errors that are not the client's to see
// (transports answer those 500 internal and log them).
func ErrorOf(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var diags compile.Diagnostics
	var rm *repo.RevisionMismatchError
	var du *repo.DraftUnchangedError
	var pm *repo.PublishedMismatchError
	switch {
	case errors.As(err, &rm):
		return Errorf("draft_revision_mismatch", "the draft is at %s", rm.Current).With("currentRevision", rm.Current)
	case errors.As(err, &du):
		return Errorf("draft_unchanged", "the draft is identical to v%d", du.Latest).With("latestVersion", VersionID(du.Latest))
	case errors.As(err, &pm):
		return Errorf("published_version_mismatch", "published is %v", nullableVersion(pm.Current)).With("publishedVersion", nullableVersion(pm.Current))
	case errors.As(err, &diags):
		return Errorf("compile_failed", "the draft has %d compile errors", len(diags)).With("errors", diagList(diags))
	case errors.Is(err, compile.ErrInvalidPath), errors.Is(err, repo.ErrInvalidPath):
		return Errorf("invalid_path", "%v", err)
	case errors.Is(err, repo.ErrConflict):
		return Errorf("publish_conflict", "a concurrent change won the race")
	case errors.Is(err, repo.ErrVersionNotFound):
		return Errorf("version_not_found", "no such version")
	case errors.Is(err, repo.ErrFileNotFound):
		return Errorf("file_not_found", "no such file")
	case errors.Is(err, repo.ErrNotFound):
		return Errorf("agent_not_found", "no such agent")
	case errors.Is(err, repo.ErrDraftTooLarge):
		return Errorf("payload_too_large", "%v", err)
	case errors.Is(err, repo.ErrBadCursor), errors.Is(err, store.ErrBadCursor):
		return Errorf("invalid_request", "bad cursor")
	case errors.Is(err, store.ErrUnavailable):
		return Errorf("unavailable", "the database is unavailable")
	case errors.Is(err, store.ErrNotFound):
		return Errorf("not_found", "no such resource")
	case errors.Is(err, ErrUnauthenticated):
		return Errorf("unauthorized", "send Authorization: Bearer flowyte_sk_...")
	case errors.Is(err, ErrInvalidKey):
		return Errorf("unauthorized", "the API key is malformed, unknown or revoked")
	}
	return nil
}

// diagList turns compile diagnostics into an "errors" member.
func diagList(d compile.Diagnostics) []compile.Diagnostic {
	if d == nil {
		return []compile.Diagnostic{}
	}
	return d
}
