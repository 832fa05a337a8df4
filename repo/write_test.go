package repo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// looseFile returns the raw (compressed) bytes of loose object h.
func looseFile(tb testing.TB, dir string, h plumbing.Hash) []byte {
	tb.Helper()
	hex := h.String()
	raw, err := os.ReadFile(filepath.Join(dir, "objects", hex[:2], hex[2:]))
	require.NoError(tb, err)
	return raw
}

// tempObjects lists the tmp_obj_* files below dir/objects.
func tempObjects(tb testing.TB, dir string) []string {
	tb.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(dir, "objects"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), "tmp_obj_") {
			out = append(out, p)
		}
		return err
	})
	require.NoError(tb, err)
	return out
}

// TestWriteSetObjects: blobs, trees, commits and tags written by the
// writeSet are standard loose objects: go-git and git read them back
// unchanged, git fsck --strict passes, big objects use zlib's fastest
// level and small ones the default, and no temporary file is left.
func TestWriteSetObjects(t *testing.T) {
	for _, sync := range []bool{false, true} {
		s := mustOpenStore(t)
		mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("name: A\n")})
		dir := s.Path(testID)
		h := s.newHandle(dir)
		w := newWriteSet(h, sync)
		small := []byte("small blob\n")
		big := bytes.Repeat([]byte("a big blob line, compressed at zlib's fastest level\n"), 4<<10)
		require.Greater(t, len(big), fastCompressionSize)
		sb, err := w.putBlob(small)
		require.NoError(t, err)
		bb, err := w.putBlob(big)
		require.NoError(t, err)
		again, err := w.putBlob(big)
		require.NoError(t, err)
		assert.Equal(t, bb, again)
		subEntries := []object.TreeEntry{{Name: "b.md", Mode: modeFile, Hash: bb}}
		for i := range 600 {
			subEntries = append(subEntries, object.TreeEntry{Name: fmt.Sprintf("article-%04d.md", i), Mode: modeFile, Hash: sb})
		}
		sub, err := w.putEntries(subEntries)
		require.NoError(t, err)
		root, err := w.putEntries([]object.TreeEntry{
			{Name: "z", Mode: modeFile, Hash: sb},
			{Name: "a", Mode: filemode.Dir, Hash: sub},
			{Name: "a.md", Mode: modeFile, Hash: sb},
			{Name: "x", Mode: filemode.Executable, Hash: sb},
		})
		require.NoError(t, err)
		c, err := w.putCommit(root, nil, "Test", alice, alice)
		require.NoError(t, err)
		tag, err := w.putTag("t1", c, "Tag", alice)
		require.NoError(t, err)
		assert.Equal(t, 6, w.written, "the repeated blob is written once")
		if sync {
			assert.Len(t, tempObjects(t, dir), 6, "sync: objects wait in temporary files")
			_, err := os.Stat(filepath.Join(dir, "objects", c.String()[:2], c.String()[2:]))
			assert.ErrorIs(t, err, os.ErrNotExist, "sync: nothing visible before flush")
		}
		require.NoError(t, w.flush())
		assert.Empty(t, tempObjects(t, dir))

		assert.Equal(t, plumbing.ComputeHash(plumbing.BlobObject, big), bb)
		for hash, want := range map[plumbing.Hash][]byte{sb: small, bb: big} {
			obj, err := h.st.EncodedObject(plumbing.BlobObject, hash)
			require.NoError(t, err, "go-git reads %s", hash)
			r, err := obj.Reader()
			require.NoError(t, err)
			got, err := io.ReadAll(r)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		}
		assert.Equal(t, "a big blob line", mustGit(t, dir, "cat-file", "blob", bb.String())[:15])
		assert.Equal(t, "100644 blob "+sb.String()+"\ta.md\n040000 tree "+sub.String()+"\ta\n100755 blob "+sb.String()+"\tx\n100644 blob "+sb.String()+"\tz\n",
			mustGit(t, dir, "ls-tree", root.String()), "git order: a.md before a/")
		assert.Equal(t, "100644 blob "+sb.String()+"\tarticle-0599.md\n100644 blob "+bb.String()+"\tb.md\n",
			strings.Join(strings.SplitAfter(mustGit(t, dir, "ls-tree", sub.String()), "\n")[599:], ""), "the big tree reads back")
		mustGit(t, dir, "update-ref", "refs/tags/t1", tag.String())
		assert.Equal(t, "Test\n", mustGit(t, dir, "log", "-1", "--format=%s", "t1"))
		mustFsck(t, dir)

		// zlib FLEVEL (bits 6-7 of the second byte): 0 fastest (or none),
		// 2 default; the first deflate block's type (bits 1-2 of the third
		// byte): 0 stored.
		assert.Equal(t, byte(0), looseFile(t, dir, bb)[1]>>6, "big blob: fastest level")
		assert.NotZero(t, looseFile(t, dir, bb)[2]&6, "big blob: compressed")
		assert.Equal(t, byte(2), looseFile(t, dir, sb)[1]>>6, "small blob: default level")
		raw := looseFile(t, dir, sub)
		assert.Greater(t, len(raw), 600*20, "big tree: not compressed")
		assert.Zero(t, raw[2]&6, "big tree: stored blocks")
		assert.Equal(t, byte(2), looseFile(t, dir, root)[1]>>6, "small tree: default level")
		h.close()
	}
}

// TestWriteSetDiscard: with sync, objects not flushed leave nothing behind.
func TestWriteSetDiscard(t *testing.T) {
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("name: A\n")})
	dir := s.Path(testID)
	before := looseObjects(t, dir)
	h := s.newHandle(dir)
	defer h.close()
	w := newWriteSet(h, true)
	b, err := w.putBlob([]byte("never committed\n"))
	require.NoError(t, err)
	require.Len(t, tempObjects(t, dir), 1)
	w.discard()
	assert.Empty(t, tempObjects(t, dir))
	assert.Equal(t, before, looseObjects(t, dir))
	assert.False(t, h.hasObject(b))
}

// TestWriteSetReplacesEmpty: an empty loose object file (what a power loss
// could leave) is rewritten, not trusted.
func TestWriteSetReplacesEmpty(t *testing.T) {
	s := mustOpenStore(t, func(o *Options) { o.Sync = true })
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("name: A\n")})
	dir := s.Path(testID)
	content := "replaced\n"
	hex := plumbing.ComputeHash(plumbing.BlobObject, []byte(content)).String()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "objects", hex[:2]), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "objects", hex[:2], hex[2:]), nil, 0o444))
	mustCommit(t, s, testID, set("k.md", content))
	assert.Equal(t, content, mustGit(t, dir, "cat-file", "blob", hex))
	mustFsck(t, dir)
	_, err := s.CommitDraft(context.Background(), testID, CommitRequest{Changes: []Change{set("k2.md", content)}}, nil)
	require.NoError(t, err)
	assert.Empty(t, tempObjects(t, dir))
}

// TestCompareEntries: git order compares a directory as its name plus "/".
func TestCompareEntries(t *testing.T) {
	es := []object.TreeEntry{
		{Name: "a-b", Mode: modeFile},
		{Name: "a", Mode: filemode.Dir},
		{Name: "a0", Mode: modeFile},
		{Name: "a.md", Mode: modeFile},
		{Name: "b", Mode: modeFile},
		{Name: "a", Mode: modeFile},
	}
	sortEntries(es)
	var names []string
	for _, e := range es {
		n := e.Name
		if e.Mode == filemode.Dir {
			n += "/"
		}
		names = append(names, n)
	}
	assert.Equal(t, []string{"a", "a-b", "a.md", "a/", "a0", "b"}, names)
}

// openPacks lists the packfiles of dir this process has open, by
// /proc/self/fd target ("(deleted)" marks one removed since).
func openPacks(tb testing.TB, dir string) []string {
	tb.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Skip("no /proc/self/fd")
	}
	var out []string
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, filepath.Join(dir, "objects", "pack")) && strings.Contains(target, ".pack") {
			out = append(out, target)
		}
	}
	return out
}

// TestWriterKeepsFewPacksOpen: the writer handle keeps a bounded number of
// packfiles open between operations, never one housekeeping deleted, and
// none once the store is closed.
func TestWriterKeepsFewPacksOpen(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("housekeeping needs git")
	}
	s := mustOpenStore(t, func(o *Options) { o.PackThreshold = -1 })
	ctx := context.Background()
	files := map[string][]byte{}
	for i := range 50 {
		files[fmt.Sprintf("knowledge/k%02d.md", i)] = fmt.Appendf(nil, "article %d\n", i)
	}
	mustCreate(t, s, testID, files)
	dir, _ := filepath.EvalSymlinks(s.Path(testID))
	for round := range 3 {
		_, err := s.Housekeep(ctx, testID)
		require.NoError(t, err)
		// A fresh writer sizes every packed blob for the limits.
		mustCommit(t, s, testID, set(fmt.Sprintf("knowledge/new%d.md", round), "new\n"))
		open := openPacks(t, dir)
		assert.NotEmpty(t, open, "round %d: the writer keeps its pack open", round)
		assert.LessOrEqual(t, len(open), writerPacks, "round %d", round)
		for _, p := range open {
			assert.NotContains(t, p, "(deleted)", "round %d", round)
		}
	}
	require.NoError(t, s.Close())
	assert.Empty(t, openPacks(t, dir), "closed with the store")
}
