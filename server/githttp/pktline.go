package githttp

import (
	"errors"
	"fmt"
)

// maxPktLen is the largest pkt-line git accepts, header included.
const maxPktLen = 65520

// errBadPktLine is returned for a body that is not a well-formed sequence
// of pkt-lines.
var errBadPktLine = errors.New("malformed pkt-line")

// validatePktLines reports, as an error, whether b is not a non-empty
// sequence of whole pkt-lines: 4 hex digits of length (header included)
// followed by that many bytes less four, or the special packets 0000
// (flush), 0001 (delim) and 0002 (response end). It checks framing only;
// upload-pack judges the content.
func validatePktLines(b []byte) error {
	var s pktScanner
	if err := s.feed(b); err != nil {
		return err
	}
	return s.end()
}

// pktScanner checks pkt-line framing of a stream fed in pieces of any
// size, keeping only a few bytes of state, so a body can be validated as
// it streams to upload-pack.
type pktScanner struct {
	off  int64   // bytes fed so far
	hdr  [4]byte // the length header being read
	nhdr int     // bytes of hdr read
	left int     // payload bytes still expected of the current packet
	seen bool    // whether any byte was fed
}

// feed checks the next piece of the stream.
func (s *pktScanner) feed(b []byte) error {
	if len(b) > 0 {
		s.seen = true
	}
	for len(b) > 0 {
		if s.left > 0 {
			k := min(s.left, len(b))
			s.left -= k
			s.off += int64(k)
			b = b[k:]
			continue
		}
		k := copy(s.hdr[s.nhdr:], b)
		s.nhdr += k
		s.off += int64(k)
		b = b[k:]
		if s.nhdr < 4 {
			break
		}
		s.nhdr = 0
		start := s.off - 4
		n, ok := parseHex4(s.hdr[:])
		switch {
		case !ok:
			return fmt.Errorf("%w: bad length %q at byte %d", errBadPktLine, s.hdr[:], start)
		case n <= 2: // flush, delim, response-end
		case n == 3 || n > maxPktLen:
			return fmt.Errorf("%w: bad length %d at byte %d", errBadPktLine, n, start)
		default:
			s.left = n - 4
		}
	}
	return nil
}

// end reports, as an error, whether the stream stopped anywhere but at a
// packet boundary, or was empty.
func (s *pktScanner) end() error {
	switch {
	case !s.seen:
		return fmt.Errorf("%w: empty body", errBadPktLine)
	case s.nhdr > 0:
		return fmt.Errorf("%w: truncated header at byte %d", errBadPktLine, s.off-int64(s.nhdr))
	case s.left > 0:
		return fmt.Errorf("%w: truncated packet at byte %d", errBadPktLine, s.off)
	}
	return nil
}

// parseHex4 decodes four lowercase or uppercase hex digits.
func parseHex4(h []byte) (int, bool) {
	n := 0
	for _, c := range h {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int(d)
	}
	return n, true
}
