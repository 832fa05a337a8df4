package githttp

import (
	"errors"
	"fmt"
)

// maxPktLen is the largest pkt-line git accepts, header included.
const maxPktLen = 65520

// errBadPktLine is returned by validatePktLines for a body that is not a
// well-formed sequence of pkt-lines.
var errBadPktLine = errors.New("malformed pkt-line")

// validatePktLines reports, as an error, whether b is not a non-empty
// sequence of whole pkt-lines: 4 hex digits of length (header included)
// followed by that many bytes less four, or the special packets 0000
// (flush), 0001 (delim) and 0002 (response end). It checks framing only;
// upload-pack judges the content.
func validatePktLines(b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: empty body", errBadPktLine)
	}
	for off := 0; off < len(b); {
		if len(b)-off < 4 {
			return fmt.Errorf("%w: truncated header at byte %d", errBadPktLine, off)
		}
		n, ok := parseHex4(b[off : off+4])
		if !ok {
			return fmt.Errorf("%w: bad length %q at byte %d", errBadPktLine, b[off:off+4], off)
		}
		switch {
		case n <= 2: // flush, delim, response-end
			off += 4
			continue
		case n == 3 || n > maxPktLen:
			return fmt.Errorf("%w: bad length %d at byte %d", errBadPktLine, n, off)
		}
		if len(b)-off < n {
			return fmt.Errorf("%w: truncated packet at byte %d", errBadPktLine, off)
		}
		off += n
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
