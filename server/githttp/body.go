package githttp

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
)

// preBuffer is how much of a decoded request body is read before
// upload-pack starts. Usual requests fit whole, so bad framing is refused
// before a process is spawned; the rest of a larger body streams to
// upload-pack, so no request holds more than this much body in memory.
const preBuffer = 64 << 10

// errTooLarge is the body read error past Options.MaxBodyBytes.
var errTooLarge = errors.New("request body too large")

// errUnsupportedEncoding is returned for a Content-Encoding other than
// gzip or identity.
var errUnsupportedEncoding = errors.New("unsupported content encoding")

// requestBody is an upload-pack request body read as a stream: decoded,
// counted against the limit and checked for pkt-line framing as it goes,
// under a read deadline. Its Read is used by one goroutine at a time.
type requestBody struct {
	rc    *http.ResponseController
	limit int64
	src   io.Reader
	gz    *gzip.Reader
	n     int64 // decoded bytes read
	scan  pktScanner
	raw   *eofReader
	err   error // sticky: the first error, io.EOF at a clean end
	pre   []byte
}

// eofReader records whether its reader reached io.EOF.
type eofReader struct {
	r   io.Reader
	eof bool
}

// Read reads from the underlying reader.
func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.eof = true
	}
	return n, err
}

// openBody starts reading r's body: it sets the body deadline, opens the
// gzip decoder if needed and reads up to preBuffer decoded bytes. An error
// is the body's fault; failBody maps it to an answer.
func (h *Handler) openBody(w http.ResponseWriter, r *http.Request) (*requestBody, error) {
	limit := h.o.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, errTooLarge
	}
	b := &requestBody{rc: http.NewResponseController(w), limit: limit, raw: &eofReader{r: r.Body}}
	// Where the server does not support deadlines (not net/http's own),
	// only Options.Timeout and the server's own limits apply.
	_ = b.rc.SetReadDeadline(time.Now().Add(h.o.BodyTimeout))
	var in io.Reader = http.MaxBytesReader(w, io.NopCloser(b.raw), limit)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gz, err := gzip.NewReader(in)
		if err != nil {
			b.stop()
			b.closeIfUnread(w)
			return nil, err
		}
		b.gz = gz
		in = gz
	default:
		b.stop()
		b.closeIfUnread(w)
		return nil, errUnsupportedEncoding
	}
	b.src = in
	buf := make([]byte, preBuffer)
	n, err := io.ReadFull(b, buf)
	if err != nil && b.err != io.EOF {
		if b.err == nil {
			b.err = err
		}
		b.drain()
		b.stop()
		b.closeIfUnread(w)
		return nil, b.failed()
	}
	// Keep only what was read: a request waiting for a process slot
	// holds its few hundred bytes, not the whole buffer.
	b.pre = bytes.Clone(buf[:n])
	return b, nil
}

// Read reads decoded bytes. It never reads more than one byte past the
// limit, and fails with errTooLarge, errBadPktLine or the read error.
func (b *requestBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if room := b.limit - b.n + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.src.Read(p)
	b.n += int64(n)
	switch {
	case b.n > b.limit:
		b.err = errTooLarge
		return 0, b.err
	case n > 0:
		if ferr := b.scan.feed(p[:n]); ferr != nil {
			b.err = ferr
			return 0, b.err
		}
	}
	switch {
	case err == io.EOF:
		if eerr := b.scan.end(); eerr != nil {
			b.err = eerr
			return 0, b.err
		}
		b.err = io.EOF
		// The body is in: from here on the connection is the client's
		// to close, not the body deadline's (a background read hitting
		// it would cancel the request).
		_ = b.rc.SetReadDeadline(time.Time{})
	case err != nil:
		b.err = err
		return 0, b.err
	}
	return n, err
}

// drain reads what is left of a body that will not reach upload-pack
// (bad framing, or upload-pack is done with it) and discards it, so that
// a body over the limit is answered 413 whatever else is wrong with it: a
// gzip bomb of zero bytes is too large before it is badly framed. It
// stops at the end, at the limit, at the deadline or on a read error; it
// keeps no more than one buffer of the body.
func (b *requestBody) drain() {
	if b.err != nil && !errors.Is(b.err, errBadPktLine) {
		return // ended, too large, or the connection failed
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := b.src.Read(buf)
		b.n += int64(n)
		switch {
		case b.n > b.limit:
			b.err = errTooLarge
			return
		case err == io.EOF && b.err == nil:
			b.err = io.EOF
			_ = b.rc.SetReadDeadline(time.Time{})
			return
		case err != nil:
			if b.err == nil {
				b.err = err
			}
			return
		}
	}
}

// ended reports whether the whole body has been read.
func (b *requestBody) ended() bool { return b.err == io.EOF }

// failed returns the error that stopped the body, nil if none did.
func (b *requestBody) failed() error {
	if b.err == io.EOF {
		return nil
	}
	return b.err
}

// stop releases the body. If the client has not sent all of it, reads
// on the connection are made to fail now, so neither a blocked reader
// nor net/http's drain after the handler waits on a trickling client;
// if it has, the deadline is lifted. (A deadline must never meet
// net/http's background read after the body: that read's error would
// cancel the contexts of the connection's later requests.)
func (b *requestBody) stop() {
	if b.raw.eof {
		_ = b.rc.SetReadDeadline(time.Time{})
	} else {
		_ = b.rc.SetReadDeadline(time.Now())
	}
	if b.gz != nil {
		_ = b.gz.Close()
	}
}

// closeIfUnread marks the answer to close the connection if the client
// has not sent the whole body: what follows on it is not a request.
func (b *requestBody) closeIfUnread(w http.ResponseWriter) {
	if !b.raw.eof {
		w.Header().Set("Connection", "close")
	}
}
