package repo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecoverAfterCrash(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, func(o *Options) { o.Sync = true })
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("a")})
	mustPublish(t, s, testID, "")
	mustCommit(t, s, testID, set("agent.yaml", "b"))
	dir := s.Path(testID)

	// A crash mid-publish: objects of a would-be v2 written (here by git),
	// ref locks and temp objects left behind, HEAD damaged.
	mustGit(t, dir, "hash-object", "-w", "--stdin")
	leftovers := []string{
		"refs/heads/draft.lock",
		"refs/heads/published.lock",
		"refs/tags/v2.lock",
		"HEAD.lock",
		"packed-refs.lock",
		"objects/pack/tmp_obj_123456",
		"objects/pack/tmp_pack_abcdef",
	}
	for _, p := range leftovers {
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte("junk"), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "HEAD"), []byte("ref: refs/heads/master\n"), 0o644))
	// A fresh process (new Store) recovers.
	s2, err := Open(Options{Root: s.o.Root, Compile: fakeCompile, Sync: true, Now: testClock()})
	require.NoError(t, err)
	_, err = s2.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("x", "y")}}, nil)
	require.ErrorIs(t, err, ErrConflict, "commit before recover: stale lock")
	require.NoError(t, s2.Recover(ctx, testID))
	for _, p := range leftovers {
		assert.NoFileExists(t, filepath.Join(dir, p))
	}
	assert.Equal(t, "refs/heads/draft", strings.TrimSpace(mustGit(t, dir, "symbolic-ref", "HEAD")))
	mustFsck(t, dir)
	n, err := s2.Latest(ctx, testID)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, 2, mustPublish(t, s2, testID, "").Number)
	mustFsck(t, dir)
}

func TestRecoverBrokenRefs(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("a")})
	v1 := mustPublish(t, s, testID, "")
	dir := s.Path(testID)
	// A tag ref pointing at a missing object (impossible with the write order,
	// simulated here).
	missing := strings.Repeat("ab", 20)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "refs", "tags", "v2"), []byte(missing+"\n"), 0o644))
	err := s.Recover(ctx, testID)
	var re *RecoveryError
	require.ErrorAs(t, err, &re)
	assert.ErrorIs(t, err, ErrCorrupt)
	assert.Equal(t, []string{"refs/tags/v2"}, re.Moved)
	assert.Empty(t, re.Broken)
	assert.NoFileExists(t, filepath.Join(dir, "refs", "tags", "v2"))
	lost, err := os.ReadDir(filepath.Join(dir, "lost-refs"))
	require.NoError(t, err)
	require.Len(t, lost, 1)
	b, err := os.ReadFile(filepath.Join(dir, "lost-refs", lost[0].Name()))
	require.NoError(t, err)
	assert.Equal(t, missing+"\n", string(b), "the lost ref's value is kept")
	n, err := s.Latest(ctx, testID)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "latest after recover")
	p, err := s.Published(ctx, testID)
	require.NoError(t, err)
	assert.Equal(t, 1, p)
	mustFsck(t, dir)
	require.NoError(t, s.Recover(ctx, testID), "second recover")
	v, err := s.Version(ctx, testID, 1)
	require.NoError(t, err)
	assert.Equal(t, v1.Commit, v.Commit)
	assert.ErrorIs(t, s.Recover(ctx, "agt_nope"), ErrNotFound)
}

func TestOpenCleansInterruptedCreate(t *testing.T) {
	root := t.TempDir()
	half := filepath.Join(root, tmpDir, "agt_x-123.git")
	require.NoError(t, os.MkdirAll(filepath.Join(half, "objects"), 0o755))
	s, err := Open(Options{Root: root})
	require.NoError(t, err)
	assert.NoDirExists(t, half, "interrupted create left in place")
	ids, err := s.List()
	require.NoError(t, err)
	assert.Empty(t, ids)
}

func TestEmptyLooseObjectIsRewritten(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("a")})
	dir := s.Path(testID)
	// What a power loss can leave of an unsynced object write.
	hash, err := gitCmd(t, dir, []byte("power loss\n"), "--git-dir="+dir, "hash-object", "--stdin")
	require.NoError(t, err)
	hash = strings.TrimSpace(hash)
	p := filepath.Join(dir, "objects", hash[:2], hash[2:])
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, nil, 0o444))
	mustCommit(t, s, testID, set("k.md", "power loss\n"))
	data, _, err := s.ReadFile(ctx, testID, Rev{Kind: RevDraft}, "k.md")
	require.NoError(t, err)
	assert.Equal(t, "power loss\n", string(data))
	mustFsck(t, dir)
}
