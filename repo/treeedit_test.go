package repo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCommitWritesChangedPathOnly: a one-file edit writes the blob, the
// trees from it to the root and the commit, nothing else; every other
// subtree keeps its id.
func TestCommitWritesChangedPathOnly(t *testing.T) {
	s := mustOpenStore(t)
	ctx := context.Background()
	files := map[string][]byte{"agent.yaml": []byte("name: A\n")}
	for i := range 300 {
		files[fmt.Sprintf("knowledge/k%03d.md", i)] = fmt.Appendf(nil, "article %d\n", i)
		files[fmt.Sprintf("skills/s%02d.yaml", i%40)] = fmt.Appendf(nil, "skill %d\n", i%40)
	}
	files["playbooks/deep/er/p.yaml"] = []byte("p\n")
	mustCreate(t, s, testID, files)
	dir := s.Path(testID)
	before := looseObjects(t, dir)
	d0, err := s.Draft(ctx, testID)
	require.NoError(t, err)

	c := mustCommit(t, s, testID, set("playbooks/deep/er/p.yaml", "p2\n"))
	assert.Equal(t, []string{"playbooks/deep/er/p.yaml"}, c.Paths)
	assert.Equal(t, before+6, looseObjects(t, dir), "blob, 3 trees below the root, root, commit")
	for _, sub := range []string{"knowledge", "skills", "agent.yaml"} {
		assert.Equal(t, mustGit(t, dir, "rev-parse", d0.Revision+":"+sub), mustGit(t, dir, "rev-parse", c.Revision+":"+sub), sub)
	}

	before = looseObjects(t, dir)
	c = mustCommit(t, s, testID, set("knowledge/k007.md", "changed\n"), del("knowledge/k008.md"))
	assert.Equal(t, before+4, looseObjects(t, dir), "blob, knowledge/, root, commit")
	assert.Equal(t, []string{"knowledge/k007.md", "knowledge/k008.md"}, c.Paths)
	d, err := s.Draft(ctx, testID)
	require.NoError(t, err)
	assert.Len(t, d.Files, len(files)-1)
	mustFsck(t, dir)
}

// TestCommitMatchesFullRebuild applies random change sets (files and
// directories of the same names, deletions, moves between depths) and
// checks that every commit's tree is the tree Create builds from scratch
// for the same files, that the limits see the same counts, and that errors
// are the ones the whole-tree rules give.
func TestCommitMatchesFullRebuild(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, func(o *Options) { o.MaxFiles = 12; o.MaxDraftBytes = 160 })
	ref := mustOpenStore(t, func(o *Options) { o.MaxFiles = 1 << 20; o.MaxDraftBytes = 1 << 30 })
	model := map[string][]byte{"agent.yaml": []byte("name: A\n")}
	mustCreate(t, s, testID, model)
	rng := rand.New(rand.NewPCG(1, 2))
	segs := []string{"a", "b", "a.md", "a-b", "k"}
	randPath := func() string {
		n := 1 + rng.IntN(3)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = segs[rng.IntN(len(segs))]
		}
		return strings.Join(parts, "/")
	}
	counts := map[string]int{}
	var prevTrees []plumbing.Hash
	for round := range 400 {
		var changes []Change
		next := map[string][]byte{}
		for p, d := range model {
			next[p] = d
		}
		var want error
		for range 1 + rng.IntN(4) {
			var p string
			if len(next) > 0 && rng.IntN(3) == 0 { // an existing file
				ps := make([]string, 0, len(next))
				for q := range next {
					ps = append(ps, q)
				}
				sort.Strings(ps)
				p = ps[rng.IntN(len(ps))]
			} else {
				p = randPath()
			}
			if rng.IntN(3) == 0 && p != "agent.yaml" {
				changes = append(changes, del(p))
				if _, ok := next[p]; !ok && want == nil {
					want = ErrFileNotFound
				}
				delete(next, p)
			} else {
				data := fmt.Appendf(nil, "%d %s\n", round, strings.Repeat("x", rng.IntN(20)))
				changes = append(changes, Change{Path: p, Content: data})
				next[p] = data
			}
		}
		var total int64
		for _, d := range next {
			total += int64(len(d))
		}
		flat := map[string]entry{}
		for p := range next {
			flat[p] = entry{}
		}
		switch {
		case want != nil:
		case checkCollisions(flat) != nil:
			want = ErrInvalidPath
		case len(next) > 12 || total > 160:
			want = ErrDraftTooLarge
		}
		c, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: changes}, nil)
		if want != nil {
			require.ErrorIs(t, err, want, "round %d: %+v", round, changes)
			counts[want.Error()]++
			continue
		}
		require.NoError(t, err, "round %d: %+v", round, changes)
		counts["ok"]++
		var paths []string // what the commit changed, from the model
		for p, d := range next {
			if old, ok := model[p]; !ok || string(old) != string(d) {
				paths = append(paths, p)
			}
		}
		for p := range model {
			if _, ok := next[p]; !ok {
				paths = append(paths, p)
			}
		}
		sort.Strings(paths)
		if len(paths) == 0 {
			assert.True(t, c.Unchanged, "round %d", round)
		} else {
			assert.Equal(t, paths, c.Paths, "round %d: %+v", round, changes)
		}
		model = next
		id := fmt.Sprintf("ref%d", round)
		mustCreate(t, ref, id, model)
		got, err := s.Draft(ctx, testID)
		require.NoError(t, err)
		exp, err := ref.Draft(ctx, id)
		require.NoError(t, err)
		require.Equal(t, exp.Tree, got.Tree, "round %d: %+v", round, changes)
		require.NoError(t, s.read(ctx, testID, func(h *handle) error {
			st, err := h.treeStat(plumbing.NewHash(got.Tree))
			require.NoError(t, err)
			assert.Equal(t, treeStat{files: len(model), bytes: total}, st)
			// The merge diff agrees with the by-name one.
			for _, base := range prevTrees {
				var merged, byName []change
				require.NoError(t, h.diffInto(&merged, base, plumbing.NewHash(got.Tree), "", ""))
				require.NoError(t, h.diffMaps(&byName, base, plumbing.NewHash(got.Tree), "", ""))
				sort.Slice(merged, func(i, j int) bool { return merged[i].path < merged[j].path })
				sort.Slice(byName, func(i, j int) bool { return byName[i].path < byName[j].path })
				require.Equal(t, byName, merged)
			}
			return nil
		}))
		prevTrees = append(prevTrees[max(0, len(prevTrees)-3):], plumbing.NewHash(got.Tree))
	}
	for _, k := range []string{"ok", ErrFileNotFound.Error(), ErrInvalidPath.Error(), ErrDraftTooLarge.Error()} {
		assert.Positive(t, counts[k], "outcome %q never happened: %v", k, counts)
	}
	mustFsck(t, s.Path(testID))
}

// TestCommitDeleteEverything: deleting every file commits the empty tree;
// a change set that adds and deletes the same new file changes nothing.
func TestCommitDeleteEverything(t *testing.T) {
	s := mustOpenStore(t)
	ctx := context.Background()
	mustCreate(t, s, testID, map[string][]byte{"a/b.md": []byte("b\n"), "c.md": []byte("c\n")})
	c := mustCommit(t, s, testID, del("a/b.md"), del("c.md"))
	assert.Equal(t, []string{"a/b.md", "c.md"}, c.Paths)
	d, err := s.Draft(ctx, testID)
	require.NoError(t, err)
	assert.Equal(t, "4b825dc642cb6eb9a060e54bf8d69288fbee4904", d.Tree)
	assert.Empty(t, d.Files)
	again, err := s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{set("x.md", "x"), del("x.md")}}, nil)
	require.NoError(t, err)
	assert.True(t, again.Unchanged)
	_, err = s.CommitDraft(ctx, testID, CommitRequest{Changes: []Change{del("x.md")}}, nil)
	assert.True(t, errors.Is(err, ErrFileNotFound))
	mustFsck(t, s.Path(testID))
}

// TestStatCacheGenerations: tree stats stay bounded, and one in use
// survives while newer ones push older ones out.
func TestStatCacheGenerations(t *testing.T) {
	c := newObjectCache(1 << 20)
	key := func(i int) plumbing.Hash { return plumbing.ComputeHash(plumbing.TreeObject, fmt.Appendf(nil, "%d", i)) }
	hot := key(-1)
	c.putStat(hot, treeStat{files: 7, bytes: 70})
	for i := range 5 * maxStats {
		c.putStat(key(i), treeStat{files: i})
		if i%1000 == 0 {
			st, ok := c.stat(hot)
			require.True(t, ok, "hot entry lost after %d puts", i)
			require.Equal(t, treeStat{files: 7, bytes: 70}, st)
		}
	}
	assert.LessOrEqual(t, len(c.stats)+len(c.oldStats), 2*maxStats)
	_, ok := c.stat(key(0))
	assert.False(t, ok, "a cold entry is dropped")
	st, ok := c.stat(key(5*maxStats - 1))
	assert.True(t, ok)
	assert.Equal(t, 5*maxStats-1, st.files)
}
