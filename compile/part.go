package compile

import (
	"bytes"
	"compress/flate"
	"hash/adler32"
	"sync"
)

// Part is one piece of the artifact's bytes (Result.EncodeParts): their
// Data in order is compiled/agent.json.
//
// The part of each file also comes deflated, compressed once when the file
// is compiled and kept with its result: a writer of the artifact as a
// zlib stream (a git loose object) copies the Deflated of the parts that
// have one instead of compressing the whole artifact again, so that cost
// follows the files that changed.
type Part struct {
	// Data is the part's bytes (shared: read only).
	Data []byte
	// Deflated, when not nil, is Data as raw deflate (RFC 1951) blocks,
	// none of them final, ending on a byte boundary (as after a sync
	// flush) and referring to nothing before them: the Deflated of
	// consecutive parts, followed by a final block, is one deflate stream
	// of their Data. nil for the short text between files' parts.
	Deflated []byte
	// Adler32 is the Adler-32 checksum of Data, set with Deflated.
	Adler32 uint32
}

// deflaters are raw deflate writers at the fastest level, reused: a
// writer holds some hundreds of KiB of state.
var deflaters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed)
	return w
}}

// deflatedPart returns data as a Part with its Deflated and Adler32.
func deflatedPart(data []byte) Part {
	var buf bytes.Buffer
	buf.Grow(len(data)/2 + 64)
	w := deflaters.Get().(*flate.Writer)
	w.Reset(&buf)
	// Writes to a bytes.Buffer do not fail.
	_, _ = w.Write(data)
	_ = w.Flush()
	w.Reset(nil)
	deflaters.Put(w)
	return Part{Data: data, Deflated: bytes.Clone(buf.Bytes()), Adler32: adler32.Checksum(data)}
}
