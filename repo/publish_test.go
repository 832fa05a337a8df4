package repo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPublishLayout(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, func(o *Options) { o.Sync = true })
	files := map[string][]byte{"agent.yaml": []byte("name: A\n"), "knowledge/a.md": []byte("A\n")}
	mustCreate(t, s, testID, files)
	dir := s.Path(testID)
	d, err := s.Draft(ctx, testID)
	require.NoError(t, err)

	var seen []Version
	v1, err := s.Publish(ctx, testID, PublishRequest{ExpectedDraftRevision: d.Revision, Notes: "First release.\n\nWith details.", Publisher: Signature{Name: "Bob", Email: "bob@example.com"}},
		func(v Version) error { seen = append(seen, v); return nil })
	require.NoError(t, err)
	assert.Equal(t, 1, v1.Number)
	assert.Equal(t, "refs/tags/v1", v1.Tag)
	assert.Equal(t, d.Revision, v1.DraftRevision)
	assert.Equal(t, "Bob", v1.PublishedBy)
	assert.Len(t, seen, 1, "then calls")
	mustFsck(t, dir)
	assert.Equal(t, v1.Commit, strings.TrimSpace(mustGit(t, dir, "rev-parse", "v1^{commit}")))
	assert.Equal(t, v1.Commit, strings.TrimSpace(mustGit(t, dir, "rev-parse", "published")))
	assert.Equal(t, v1.Commit+" "+d.Revision+"\n", mustGit(t, dir, "rev-list", "--parents", "-n1", "v1"), "the only parent is the draft commit")
	assert.Equal(t, "agent.yaml\ncompiled/agent.json\nknowledge/a.md\n", mustGit(t, dir, "ls-tree", "-r", "--name-only", "v1"))
	assert.Equal(t, "tag", strings.TrimSpace(mustGit(t, dir, "cat-file", "-t", "v1")), "v1 is an annotated tag")
	artifact, err := fakeCompile(files)
	require.NoError(t, err)
	assert.Equal(t, string(artifact), mustGit(t, dir, "show", "v1:compiled/agent.json"))
	sum := sha256.Sum256(artifact)
	wantDigest := "sha256:" + hex.EncodeToString(sum[:])
	assert.Equal(t, wantDigest, v1.Digest)
	tag := mustGit(t, dir, "cat-file", "-p", "v1")
	wantMsg := "v1\n\nFirst release.\n\nWith details.\n\nPublisher: Bob <bob@example.com>\nDraft-Revision: " + d.Revision + "\nCompiled-Digest: " + wantDigest + "\n"
	assert.True(t, strings.HasSuffix(tag, "\n\n"+wantMsg), "tag object=%q, want message %q", tag, wantMsg)
	assert.Contains(t, tag, "\ntagger Bob <bob@example.com> ")
	got, err := s.Version(ctx, testID, 1)
	require.NoError(t, err)
	assert.Equal(t, v1, got)
	assert.Equal(t, "First release.\n\nWith details.", got.Notes)

	mustCommit(t, s, testID, set("knowledge/a.md", "A2\n"))
	v2 := mustPublish(t, s, testID, "")
	assert.Equal(t, 2, v2.Number)
	diff := mustGit(t, dir, "diff", "--stat", "v1", "v2")
	assert.Contains(t, diff, "knowledge/a.md")
	assert.Contains(t, diff, "compiled/agent.json")
	n, err := s.Latest(ctx, testID)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "latest")
	n, err = s.Published(ctx, testID)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "published")
	vs, err := s.Versions(ctx, testID)
	require.NoError(t, err)
	require.Len(t, vs, 2)
	assert.Equal(t, v1, vs[0])
	assert.Empty(t, vs[1].Notes)
	assert.NotEmpty(t, vs[1].Digest)
	_, err = s.Version(ctx, testID, 3)
	assert.ErrorIs(t, err, ErrVersionNotFound)
	// A fresh store finds the latest number from the tags.
	s2, err := Open(Options{Root: s.o.Root, Compile: fakeCompile})
	require.NoError(t, err)
	n, err = s2.Latest(ctx, testID)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "latest after reopen")
	n, err = s2.Published(ctx, testID)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "published after reopen")
	mustFsck(t, dir)
}

func TestPublishNeverPublished(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, nil)
	n, err := s.Published(ctx, testID)
	require.NoError(t, err)
	assert.Zero(t, n, "published")
	n, err = s.Latest(ctx, testID)
	require.NoError(t, err)
	assert.Zero(t, n, "latest")
	// An empty draft still publishes.
	assert.Equal(t, 1, mustPublish(t, s, testID, "").Number)
	mustFsck(t, s.Path(testID))
}

func TestPublishDraftUnchanged(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("a")})
	mustPublish(t, s, testID, "")
	_, err := s.Publish(ctx, testID, PublishRequest{}, nil)
	var du *DraftUnchangedError
	require.ErrorAs(t, err, &du)
	assert.Equal(t, 1, du.Latest)
	assert.ErrorIs(t, err, ErrDraftUnchanged)
	// Edit and revert: a new draft commit with the same tree is still unchanged.
	mustCommit(t, s, testID, set("agent.yaml", "b"))
	mustCommit(t, s, testID, set("agent.yaml", "a"))
	_, err = s.Publish(ctx, testID, PublishRequest{}, nil)
	assert.ErrorIs(t, err, ErrDraftUnchanged, "after revert")
	// Unchanged is relative to the latest version, not the published one.
	mustCommit(t, s, testID, set("agent.yaml", "c"))
	mustPublish(t, s, testID, "")
	_, err = s.Rollback(ctx, testID, 1, nil, nil)
	require.NoError(t, err)
	_, err = s.Publish(ctx, testID, PublishRequest{}, nil)
	require.ErrorAs(t, err, &du, "after rollback")
	assert.Equal(t, 2, du.Latest)
}

func TestPublishRevisionMismatch(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	c0 := mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("a")})
	c1 := mustCommit(t, s, testID, set("agent.yaml", "b"))
	_, err := s.Publish(ctx, testID, PublishRequest{ExpectedDraftRevision: c0.Revision}, nil)
	var rm *RevisionMismatchError
	require.ErrorAs(t, err, &rm)
	assert.Equal(t, c1.Revision, rm.Current)
	n, err := s.Latest(ctx, testID)
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestPublishCompileErrorWritesNothing(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("a"), "broken.yaml": []byte("x")})
	dir := s.Path(testID)
	before := looseObjects(t, dir)
	called := false
	_, err := s.Publish(ctx, testID, PublishRequest{}, func(Version) error { called = true; return nil })
	var diag *fakeDiagnostics
	require.ErrorAs(t, err, &diag)
	assert.Equal(t, "broken.yaml", diag.File)
	assert.Equal(t, before, looseObjects(t, dir), "objects written by a failed publish")
	assert.False(t, called, "then called")
	assert.Empty(t, mustGit(t, dir, "tag", "-l"))
	_, err = gitCmd(t, dir, nil, "--git-dir="+dir, "rev-parse", "--verify", "-q", "published")
	assert.Error(t, err, "published ref exists after failed compile")
	mustCommit(t, s, testID, del("broken.yaml"))
	assert.Equal(t, 1, mustPublish(t, s, testID, "").Number)
}

func TestConcurrentPublishContiguous(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("a")})
	const n = 30
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok []Version
	thenNums := map[int]bool{}
	errs := make(chan error, 2*n)
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set(fmt.Sprintf("knowledge/k%02d.md", i), "x")}}, nil); err != nil {
				errs <- err
			}
		}()
		go func() {
			defer wg.Done()
			v, err := s.Publish(ctx, testID, PublishRequest{}, func(v Version) error {
				mu.Lock()
				defer mu.Unlock()
				thenNums[v.Number] = true
				return nil
			})
			if err != nil {
				if !errors.Is(err, ErrDraftUnchanged) {
					errs <- err
				}
				return
			}
			mu.Lock()
			ok = append(ok, v)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	k := len(ok)
	require.Positive(t, k, "no publish succeeded")
	sort.Slice(ok, func(i, j int) bool { return ok[i].Number < ok[j].Number })
	for i, v := range ok {
		require.Equal(t, i+1, v.Number, "versions %v not contiguous from 1", ok)
		assert.True(t, thenNums[v.Number], "then not called for v%d", v.Number)
	}
	vs, err := s.Versions(ctx, testID)
	require.NoError(t, err)
	assert.Len(t, vs, k)
	dir := s.Path(testID)
	assert.Equal(t, k, strings.Count(mustGit(t, dir, "tag", "-l"), "\n"), "git tags")
	p, err := s.Published(ctx, testID)
	require.NoError(t, err)
	assert.Equal(t, k, p)
	assert.Equal(t, fmt.Sprintf("%d\n", n+1), mustGit(t, dir, "rev-list", "--count", "draft"))
	mustFsck(t, dir)
}

func TestRollback(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("1")})
	var vs []Version
	vs = append(vs, mustPublish(t, s, testID, ""))
	for i := 2; i <= 3; i++ {
		mustCommit(t, s, testID, set("agent.yaml", fmt.Sprint(i)))
		vs = append(vs, mustPublish(t, s, testID, ""))
	}
	dir := s.Path(testID)
	var moves [][2]int
	rec := func(from, to int) error { moves = append(moves, [2]int{from, to}); return nil }
	from, err := s.Rollback(ctx, testID, 1, nil, rec)
	require.NoError(t, err)
	assert.Equal(t, 3, from)
	assert.Equal(t, vs[0].Commit, strings.TrimSpace(mustGit(t, dir, "rev-parse", "published")))
	n, err := s.Published(ctx, testID)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	three := 3
	_, err = s.Rollback(ctx, testID, 2, &three, rec)
	var pm *PublishedMismatchError
	require.ErrorAs(t, err, &pm, "stale expected")
	assert.Equal(t, 1, pm.Current)
	assert.ErrorIs(t, err, ErrPublishedMismatch)
	one := 1
	from, err = s.Rollback(ctx, testID, 3, &one, rec)
	require.NoError(t, err, "forward to 3")
	assert.Equal(t, 1, from)
	_, err = s.Rollback(ctx, testID, 4, nil, rec)
	assert.ErrorIs(t, err, ErrVersionNotFound, "unknown")
	_, err = s.Rollback(ctx, testID, 0, nil, rec)
	assert.ErrorIs(t, err, ErrVersionNotFound, "v0")
	assert.Equal(t, [][2]int{{3, 1}, {1, 3}}, moves, "then calls")
	n, err = s.Latest(ctx, testID)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	mustFsck(t, dir)
}

func TestTagMessageRoundTrip(t *testing.T) {
	cases := []string{
		"",
		"one line",
		"para one\n\npara two",
		"looks like: a trailer",
		"Publisher: fake <x>\nDraft-Revision: 123",
		"-----BEGIN PGP SIGNATURE-----\nnot really\n-----END PGP SIGNATURE-----",
	}
	for _, notes := range cases {
		msg := tagMessage(7, notes, alice, [20]byte{1}, "sha256:ab", nil)
		got, tr := parseTagMessage(endLine(msg))
		assert.Equal(t, notes, got)
		assert.Equal(t, "sha256:ab", tr[trailerDigest], "notes %q", notes)
		assert.Equal(t, "Alice Example <alice@example.com>", tr[trailerPublisher], "notes %q", notes)
	}
	assert.Equal(t, "  hi\nthere", cleanNotes("\n\n  hi\r\nthere  \n\n"))
}

func TestConcurrentAgentsWithEviction(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, func(o *Options) { o.MaxOpen = 2 })
	ids := []string{"agt_a", "agt_b", "agt_c", "agt_d", "agt_e"}
	for _, id := range ids {
		mustCreate(t, s, id, map[string][]byte{"agent.yaml": []byte(id)})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := 0; w < 10; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 6; i++ {
				id := ids[(w+i)%len(ids)]
				if _, err := s.CommitDraft(ctx, id, CommitRequest{Changes: []Change{set(fmt.Sprintf("k/%d-%d.md", w, i), "x")}}, nil); err != nil {
					errs <- err
				}
				if _, err := s.Draft(ctx, id); err != nil {
					errs <- err
				}
				if _, err := s.Publish(ctx, id, PublishRequest{}, nil); err != nil && !errors.Is(err, ErrDraftUnchanged) {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	total := 0
	for _, id := range ids {
		d, err := s.Draft(ctx, id)
		require.NoError(t, err)
		total += len(d.Files) - 1
		vs, err := s.Versions(ctx, id)
		require.NoError(t, err)
		for i, v := range vs {
			require.Equal(t, i+1, v.Number, "%s versions not contiguous", id)
		}
		mustFsck(t, s.Path(id))
	}
	assert.Equal(t, 60, total, "files committed")
	s.mu.Lock()
	n := len(s.agents)
	s.mu.Unlock()
	assert.LessOrEqual(t, n, 2, "agent entries after the run, MaxOpen=2")
}
