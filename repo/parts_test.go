package repo

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"hash/adler32"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAdler32Combine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		a := make([]byte, rng.IntN(3)*rng.IntN(70000))
		b := make([]byte, rng.IntN(3)*rng.IntN(70000))
		for i := range a {
			a[i] = byte(rng.Uint32())
		}
		for i := range b {
			b[i] = 0xff - byte(rng.IntN(3))
		}
		want := adler32.Checksum(append(bytes.Clone(a), b...))
		assert.Equal(t, want, adler32Combine(adler32.Checksum(a), adler32.Checksum(b), int64(len(b))), "%d+%d bytes", len(a), len(b))
	}
}

// deflatedPart is a Part with its Deflated made as compile makes it: raw
// deflate at the fastest level, sync flushed.
func deflatedPart(tb testing.TB, data []byte) Part {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestSpeed)
	require.NoError(tb, err)
	_, err = w.Write(data)
	require.NoError(tb, err)
	require.NoError(tb, w.Flush())
	return Part{Data: data, Deflated: buf.Bytes(), Adler32: adler32.Checksum(data)}
}

// TestPartsObject: a blob written from parts, some deflated ahead, some
// short, some long (over a stored block's 64 KiB) and some empty, is the
// blob of their concatenation: same id, same content for go-git and git,
// a valid zlib stream, git fsck --strict clean.
func TestPartsObject(t *testing.T) {
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("name: A\n")})
	dir := s.Path(testID)
	h := s.newHandle(dir)
	defer h.close()
	rng := rand.New(rand.NewPCG(3, 4))
	text := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = "abcdefgh \n"[rng.IntN(10)]
		}
		return b
	}
	parts := []Part{
		{Data: []byte("{\n  \"knowledge\": [")},
		deflatedPart(t, text(3000)),
		{Data: []byte(",\n    ")},
		deflatedPart(t, text(100000)),
		{Data: nil},
		deflatedPart(t, nil),
		{Data: text(5000)},   // long, compressed in place
		{Data: text(200000)}, // over 64 KiB
		{Data: []byte("\n]\n")},
	}
	var whole []byte
	for _, p := range parts {
		whole = append(whole, p.Data...)
	}
	for _, sync := range []bool{false, true} {
		w := newWriteSet(h, sync)
		b, err := w.putBlobParts(parts)
		require.NoError(t, err)
		require.NoError(t, w.flush())
		assert.Equal(t, plumbing.ComputeHash(plumbing.BlobObject, whole), b)
		if sync {
			continue // the same blob: already there, nothing written
		}
		zr, err := zlib.NewReader(bytes.NewReader(looseFile(t, dir, b)))
		require.NoError(t, err)
		raw, err := io.ReadAll(zr)
		require.NoError(t, err, "a valid zlib stream, checksum included")
		assert.Equal(t, append([]byte("blob "+strconv.Itoa(len(whole))+"\x00"), whole...), raw)
		obj, err := h.st.EncodedObject(plumbing.BlobObject, b)
		require.NoError(t, err)
		r, err := obj.Reader()
		require.NoError(t, err)
		got, err := io.ReadAll(r)
		require.NoError(t, err)
		assert.Equal(t, whole, got, "go-git reads it")
		assert.Equal(t, string(whole), mustGit(t, dir, "cat-file", "blob", b.String()), "git reads it")
	}
	// Reachable from a tag, so fsck checks it.
	w := newWriteSet(h, false)
	b, err := w.putBlobParts(parts)
	require.NoError(t, err)
	tree, err := w.putEntries([]object.TreeEntry{{Name: "agent.json", Mode: modeFile, Hash: b}})
	require.NoError(t, err)
	c, err := w.putCommit(tree, nil, "parts", alice, alice)
	require.NoError(t, err)
	mustGit(t, dir, "update-ref", "refs/tags/parts", c.String())
	mustFsck(t, dir)
}
