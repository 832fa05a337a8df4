package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCreate(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, func(o *Options) { o.Sync = true })
	files := map[string][]byte{
		"agent.yaml":          []byte("name: Support\n"),
		"knowledge/refund.md": []byte("# Refunds\n"),
		"knowledge.md":        []byte("sorts before knowledge/\n"),
		"skills/lookup.yaml":  []byte("description: x\n"),
	}
	c := mustCreate(t, s, testID, files)
	assert.True(t, s.Exists(testID), "Exists after create")
	assert.Equal(t, []string{"agent.yaml", "knowledge.md", "knowledge/refund.md", "skills/lookup.yaml"}, c.Paths)
	dir := s.Path(testID)
	mustFsck(t, dir)
	assert.Equal(t, "refs/heads/draft", strings.TrimSpace(mustGit(t, dir, "symbolic-ref", "HEAD")))
	assert.Equal(t, c.Revision, strings.TrimSpace(mustGit(t, dir, "rev-parse", "draft")))
	assert.Equal(t, "Alice Example <alice@example.com>|Create agent\n", mustGit(t, dir, "log", "-1", "--format=%an <%ae>|%s"))
	assert.Equal(t, "# Refunds\n", mustGit(t, dir, "show", "draft:knowledge/refund.md"))
	d, err := s.Draft(ctx, testID)
	require.NoError(t, err)
	assert.Equal(t, c.Revision, d.Revision)
	require.Len(t, d.Files, 4)
	assert.Equal(t, "agent.yaml", d.Files[0].Path)
	assert.Equal(t, int64(14), d.Files[0].Size)
	assert.Equal(t, strings.TrimSpace(mustGit(t, dir, "rev-parse", "draft:agent.yaml")), d.Files[0].Blob)
	_, err = s.Create(ctx, testID, files, "", alice)
	assert.ErrorIs(t, err, ErrExists, "second create")
	ids, err := s.List()
	require.NoError(t, err)
	assert.Equal(t, []string{testID}, ids)
	ents, err := os.ReadDir(filepath.Join(s.o.Root, tmpDir))
	require.NoError(t, err)
	assert.Empty(t, ents, "leftovers in .tmp")
}

func TestInvalidIDs(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	for _, id := range []string{"", "../x", "a/b", "UPPER", ".trash", strings.Repeat("a", 65), "x\x00"} {
		_, err := s.Create(ctx, id, nil, "", alice)
		assert.ErrorIs(t, err, ErrNotFound, "create %q", id)
		_, err = s.Draft(ctx, id)
		assert.ErrorIs(t, err, ErrNotFound, "draft %q", id)
		assert.Empty(t, s.Path(id), "Path(%q)", id)
		assert.False(t, s.Exists(id), "Exists(%q)", id)
	}
	_, err := s.Draft(ctx, "agt_missing")
	assert.ErrorIs(t, err, ErrNotFound, "draft of missing agent")
}

func TestCommitDraft(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, func(o *Options) { o.Sync = true })
	c0 := mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("name: A\n")})
	dir := s.Path(testID)
	draftRev := func() string { return strings.TrimSpace(mustGit(t, dir, "rev-parse", "draft")) }

	var seen []Commit
	c1, err := s.CommitDraft(ctx, testID, CommitRequest{
		ExpectedRevision: c0.Revision,
		Changes:          []Change{set("knowledge/a.md", "A\n"), set("knowledge/b.md", "B\n"), set("agent.yaml", "name: B\n")},
		Message:          "add knowledge",
		Author:           alice,
	}, func(c Commit) error { seen = append(seen, c); return nil })
	require.NoError(t, err)
	require.Len(t, seen, 1, "then calls")
	assert.Equal(t, c1.Revision, seen[0].Revision)
	assert.Equal(t, []string{"agent.yaml", "knowledge/a.md", "knowledge/b.md"}, c1.Paths)
	assert.Equal(t, c0.Revision, strings.TrimSpace(mustGit(t, dir, "rev-parse", "draft^")))

	// Stale expected revision.
	_, err = s.CommitDraft(ctx, testID, CommitRequest{ExpectedRevision: c0.Revision, Changes: []Change{set("x.md", "x")}}, nil)
	var rm *RevisionMismatchError
	require.ErrorAs(t, err, &rm)
	assert.Equal(t, c1.Revision, rm.Current)
	assert.ErrorIs(t, err, ErrRevisionMismatch)

	// Deleting a missing file fails and commits nothing, even with other changes.
	_, err = s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("knowledge/c.md", "C"), del("nope.md")}}, nil)
	assert.ErrorIs(t, err, ErrFileNotFound, "delete missing")
	assert.Equal(t, c1.Revision, draftRev(), "draft moved after a failed commit")

	// Delete.
	c2 := mustCommit(t, s, testID, del("knowledge/b.md"))
	assert.Equal(t, "agent.yaml\nknowledge/a.md\n", mustGit(t, dir, "ls-tree", "-r", "--name-only", "draft"))
	assert.Equal(t, []string{"knowledge/b.md"}, c2.Paths)
	// Deleting the last file of a directory removes the directory.
	mustCommit(t, s, testID, del("knowledge/a.md"))
	assert.Equal(t, "agent.yaml\n", mustGit(t, dir, "ls-tree", "--name-only", "draft"))

	// A change set that leaves the tree identical makes no commit.
	head := draftRev()
	called := false
	same, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("agent.yaml", "name: B\n")}}, func(Commit) error { called = true; return nil })
	require.NoError(t, err)
	assert.True(t, same.Unchanged)
	assert.Equal(t, head, same.Revision)
	assert.False(t, called, "then called on a no-op commit")
	assert.Equal(t, head, draftRev(), "draft moved on a no-op")

	// then's error is returned but the commit stays.
	boom := errors.New("db down")
	c3, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("k.md", "k")}}, func(Commit) error { return boom })
	assert.ErrorIs(t, err, boom)
	assert.NotEqual(t, head, c3.Revision)
	assert.Equal(t, c3.Revision, draftRev())

	// Bad paths.
	for _, p := range []string{"", "/abs", "../x", "a/../b", "a//b", ".git/config", "compiled/agent.json", "x\x00", "agent.yaml/sub"} {
		_, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set(p, "x")}}, nil)
		assert.ErrorIs(t, err, ErrInvalidPath, "path %q", p)
	}
	assert.Equal(t, "5\n", mustGit(t, dir, "rev-list", "--count", "draft"))
	mustFsck(t, dir)
}

func TestCommitLimits(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, func(o *Options) { o.MaxFiles = 3; o.MaxDraftBytes = 10 })
	mustCreate(t, s, testID, map[string][]byte{"a": []byte("12345")})
	_, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("b", "1"), set("c", "1"), set("d", "1")}}, nil)
	assert.ErrorIs(t, err, ErrDraftTooLarge, "4 files")
	_, err = s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("b", "123456")}}, nil)
	assert.ErrorIs(t, err, ErrDraftTooLarge, "11 bytes")
	_, err = s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("b", "12345"), set("c", "")}}, nil)
	assert.NoError(t, err, "at the limit")
	_, err = s.Create(ctx, "agt_other", map[string][]byte{"a": make([]byte, 11)}, "", alice)
	assert.ErrorIs(t, err, ErrDraftTooLarge, "create too large")
}

func TestHistory(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	var revs []string
	revs = append(revs, mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("v0")}).Revision)
	for i := 1; i <= 4; i++ {
		revs = append(revs, mustCommit(t, s, testID, set("f"+string(rune('0'+i)), "x")).Revision)
	}
	// Newest first, pages of 2.
	var got []Commit
	cursor := ""
	pages := 0
	for {
		page, next, err := s.History(ctx, testID, cursor, 2)
		require.NoError(t, err)
		got = append(got, page...)
		pages++
		if next == "" {
			break
		}
		cursor = next
	}
	assert.Equal(t, 3, pages)
	require.Len(t, got, 5)
	for i, c := range got {
		assert.Equal(t, revs[len(revs)-1-i], c.Revision, "commit %d", i)
	}
	assert.Equal(t, []string{"f4"}, got[0].Paths)
	assert.Equal(t, []string{"agent.yaml"}, got[4].Paths)
	assert.Equal(t, alice.Name, got[0].Author.Name)
	assert.Equal(t, "Update f4", got[0].Message)
	for _, bad := range []string{"zzz", strings.Repeat("0", 40), strings.Repeat("A", 40)} {
		_, _, err := s.History(ctx, testID, bad, 2)
		assert.ErrorIs(t, err, ErrBadCursor, "cursor %q", bad)
	}
	// A tree id is an object but not a commit.
	d, err := s.Draft(ctx, testID)
	require.NoError(t, err)
	_, _, err = s.History(ctx, testID, d.Tree, 2)
	assert.ErrorIs(t, err, ErrBadCursor, "tree cursor")
}

func TestReadFile(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("one"), "knowledge/a.md": []byte("A")})
	mustPublish(t, s, testID, "")
	mustCommit(t, s, testID, set("agent.yaml", "two"))
	data, _, err := s.ReadFile(ctx, testID, Rev{Kind: RevDraft}, "agent.yaml")
	require.NoError(t, err)
	assert.Equal(t, "two", string(data))
	data, _, err = s.ReadFile(ctx, testID, Rev{Kind: RevVersion, Number: 1}, "agent.yaml")
	require.NoError(t, err)
	assert.Equal(t, "one", string(data))
	data, _, err = s.ReadFile(ctx, testID, Rev{Kind: RevVersion, Number: 1}, "compiled/agent.json")
	require.NoError(t, err)
	assert.Contains(t, string(data), `"knowledge/a.md"`)
	for _, p := range []string{"nope", "knowledge", "knowledge/a.md/x", ""} {
		_, _, err := s.ReadFile(ctx, testID, Rev{Kind: RevDraft}, p)
		assert.ErrorIs(t, err, ErrFileNotFound, "read %q", p)
	}
	_, _, err = s.ReadFile(ctx, testID, Rev{Kind: RevEmpty}, "agent.yaml")
	assert.ErrorIs(t, err, ErrFileNotFound, "empty read")
	_, _, err = s.ReadFile(ctx, testID, Rev{Kind: RevVersion, Number: 2}, "agent.yaml")
	assert.ErrorIs(t, err, ErrVersionNotFound, "v2 read")
}

func TestRemove(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("x")})
	_, err := s.Draft(ctx, testID) // opens a handle
	require.NoError(t, err)
	require.NoError(t, s.Remove(ctx, testID))
	assert.False(t, s.Exists(testID), "Exists after remove")
	ents, err := os.ReadDir(filepath.Join(s.o.Root, trashDir))
	require.NoError(t, err)
	require.Len(t, ents, 1)
	assert.True(t, strings.HasPrefix(ents[0].Name(), testID+"-") && strings.HasSuffix(ents[0].Name(), ".git"),
		"trash entry %s, want %s-<nanos>.git", ents[0].Name(), testID)
	mustFsck(t, filepath.Join(s.o.Root, trashDir, ents[0].Name()))
	assert.ErrorIs(t, s.Remove(ctx, testID), ErrNotFound, "second remove")
	_, err = s.Draft(ctx, testID)
	assert.ErrorIs(t, err, ErrNotFound, "draft after remove")
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("again")})
	data, _, err := s.ReadFile(ctx, testID, Rev{Kind: RevDraft}, "agent.yaml")
	require.NoError(t, err)
	assert.Equal(t, "again", string(data))
}

func TestStaleLockIsConflict(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("x")})
	lock := filepath.Join(s.Path(testID), "refs", "heads", "draft.lock")
	require.NoError(t, os.WriteFile(lock, nil, 0o644))
	_, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("a", "b")}}, nil)
	assert.ErrorIs(t, err, ErrConflict)
	assert.ErrorIs(t, err, storage.ErrReferenceHasChanged)
	require.NoError(t, s.Recover(ctx, testID))
	_, err = s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("a", "b")}}, nil)
	assert.NoError(t, err, "after recover")
}

func TestLRUBounded(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, func(o *Options) { o.MaxOpen = 2 })
	for i := 0; i < 6; i++ {
		id := "agt_" + string(rune('a'+i))
		mustCreate(t, s, id, map[string][]byte{"agent.yaml": []byte(id)})
		_, err := s.Draft(ctx, id)
		require.NoError(t, err)
	}
	s.mu.Lock()
	n, idle := len(s.agents), s.idle.Len()
	s.mu.Unlock()
	assert.Equal(t, 2, n, "agents")
	assert.Equal(t, 2, idle, "idle")
	// Evicted repositories reopen transparently.
	d, err := s.Draft(ctx, "agt_a")
	require.NoError(t, err)
	assert.Len(t, d.Files, 1)
}

func TestFailedCommitWritesNoObjects(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, func(o *Options) { o.MaxDraftBytes = 100 })
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("a")})
	dir := s.Path(testID)
	before := looseObjects(t, dir)
	for _, req := range []CommitRequest{
		{Changes: []Change{set("big", strings.Repeat("x", 101))}},
		{Changes: []Change{set("new.md", "fresh"), del("missing.md")}},
		{Changes: []Change{set("agent.yaml/x", "collides")}},
	} {
		_, err := s.CommitDraft(ctx, testID, req, nil)
		assert.Error(t, err, "commit %+v", req)
	}
	assert.Equal(t, before, looseObjects(t, dir), "loose objects after failed commits")
	require.NoError(t, s.Close())
	d, err := s.Draft(ctx, testID)
	require.NoError(t, err, "draft after Close")
	assert.Len(t, d.Files, 1)
}

func TestFilesAt(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	c0 := mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("one")})
	mustCommit(t, s, testID, set("agent.yaml", "two"), set("k.md", "k"))
	tree, files, err := s.FilesAt(ctx, testID, c0.Revision)
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"agent.yaml": []byte("one")}, files)
	assert.Equal(t, strings.TrimSpace(mustGit(t, s.Path(testID), "rev-parse", c0.Revision+"^{tree}")), tree)
	for _, bad := range []string{"", "nope", strings.Repeat("1", 40)} {
		_, _, err := s.FilesAt(ctx, testID, bad)
		assert.ErrorIs(t, err, ErrBadCursor, "FilesAt(%q)", bad)
	}
}
