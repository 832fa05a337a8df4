package githttp

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
)

// Problem codes this handler answers with (CONTRACT §3 and §7).
const (
	codeInvalidRequest   = "invalid_request"
	codeUnauthorized     = "unauthorized"
	codeScope            = "insufficient_scope"
	codeReadOnly         = "read_only"
	codeNotFound         = "not_found"
	codeMethod           = "method_not_allowed"
	codeTimeout          = "request_timeout"
	codeTooLarge         = "payload_too_large"
	codeUnsupportedMedia = "unsupported_media_type"
	codeInternal         = "internal"
	codeUnavailable      = "unavailable"
)

// readScope is the scope a key needs to clone (CONTRACT §7).
const readScope = "agents:read"

// sentences completes each problem code into the one sentence an error
// body holds.
var sentences = map[string]string{
	codeInvalidRequest:   "this is not a valid git upload-pack request",
	codeUnauthorized:     "a valid flowyte key is required (any user name, the key as password)",
	codeScope:            "this key lacks the " + readScope + " scope",
	codeReadOnly:         "this repository is read-only; change the agent through the API",
	codeNotFound:         "no such agent repository",
	codeMethod:           "this method is not allowed here",
	codeTimeout:          "the request body did not arrive in time",
	codeTooLarge:         "the request body is too large",
	codeUnsupportedMedia: "this content type or encoding is not supported",
	codeInternal:         "an internal error occurred; try again later",
	codeUnavailable:      "the server is busy; try again later",
}

// retryAfter is the Retry-After of a 503, in seconds.
const retryAfter = 5

// fail answers status with a text/plain body: one sentence starting with
// the problem code, e.g. "read_only: this repository is read-only; ...".
// git shows a text/plain error body to its user as "remote: ..." lines
// (and nothing of any other type), hence this exception to the problem
// JSON of the API (CONTRACT §7).
func (h *Handler) fail(w http.ResponseWriter, status int, code string) {
	hd := w.Header()
	switch status {
	case http.StatusUnauthorized:
		// A Basic challenge, so git asks its credential helper.
		hd.Set("WWW-Authenticate", `Basic realm="flowyte"`)
	case http.StatusForbidden:
		if code == codeScope {
			hd.Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+readScope+`"`)
		}
	case http.StatusServiceUnavailable:
		hd.Set("Retry-After", strconv.Itoa(retryAfter))
	}
	msg := code + ": " + sentences[code] + ".\n"
	if code == codeTooLarge {
		msg = code + ": the request body exceeds " + strconv.FormatInt(h.o.MaxBodyBytes, 10) + " bytes.\n"
	}
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(len(msg)))
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}

// failBody answers a request whose body could not be read: 413 beyond
// MaxBodyBytes, 408 past BodyTimeout, 400 for bad gzip or framing (and
// for a client that went away: nobody reads that answer).
func (h *Handler) failBody(w http.ResponseWriter, err error) {
	status, code := bodyStatus(err)
	h.fail(w, status, code)
}

// bodyStatus maps a body read error to the status and problem code.
func bodyStatus(err error) (int, string) {
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, errTooLarge), errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, codeTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return http.StatusRequestTimeout, codeTimeout
	case errors.Is(err, errUnsupportedEncoding):
		return http.StatusUnsupportedMediaType, codeUnsupportedMedia
	}
	// Bad framing, corrupt gzip, a body cut short.
	return http.StatusBadRequest, codeInvalidRequest
}
