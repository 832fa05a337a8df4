package store

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// Page cursors are opaque to clients but shared by every engine, so a
// cursor stays valid whichever engine serves the next page.

// EncodeAgentCursor makes the agent list cursor after the agent created at
// (unix nanoseconds) with id: base64url of "<created_at>.<id>".
func EncodeAgentCursor(at int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at, 10) + "." + id))
}

// DecodeAgentCursor parses an EncodeAgentCursor cursor; anything else is
// ErrBadCursor.
func DecodeAgentCursor(c string) (at int64, id string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", ErrBadCursor
	}
	ts, id, ok := strings.Cut(string(b), ".")
	if !ok || id == "" {
		return 0, "", ErrBadCursor
	}
	at, err = strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return 0, "", ErrBadCursor
	}
	return at, id, nil
}

// EncodeDeliveryCursor makes the delivery log cursor before the row with
// sequence seq: base64url of "dlv.<seq>".
func EncodeDeliveryCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("dlv." + strconv.FormatInt(seq, 10)))
}

// DecodeDeliveryCursor returns the sequence a delivery cursor points
// before: max int64 for "" (the newest page), ErrBadCursor for anything
// that is not an EncodeDeliveryCursor cursor.
func DecodeDeliveryCursor(c string) (int64, error) {
	if c == "" {
		return 1<<63 - 1, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, ErrBadCursor
	}
	rest, ok := strings.CutPrefix(string(b), "dlv.")
	if !ok {
		return 0, ErrBadCursor
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || n <= 0 {
		return 0, ErrBadCursor
	}
	return n, nil
}
