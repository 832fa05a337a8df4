package repo

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// numbered returns n lines "<prefix> <i>".
func numbered(prefix string, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%s %d\n", prefix, i)
	}
	return b.String()
}

// TestDiffBudgetHugeChange rewrites all 131,000 lines of one file: the
// diff falls back to a whole-region replacement, quickly, marked
// truncated, and git apply still reproduces the target.
func TestDiffBudgetHugeChange(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, noAutoPack)
	const n = 131_000
	mustCreate(t, s, testID, map[string][]byte{
		"knowledge/big.md":   []byte(numbered("old line", n)),
		"knowledge/small.md": []byte("a\nb\nc\n"),
	})
	v := mustPublish(t, s, testID, "")
	draft := mustCommit(t, s, testID, set("knowledge/big.md", numbered("new line", n)), set("knowledge/small.md", "a\nB\nc\n"))
	base, target := Rev{Kind: RevVersion, Number: v.Number}, Rev{Kind: RevDraft}

	start := time.Now()
	d, err := s.Diff(ctx, testID, base, target, true)
	took := time.Since(start)
	require.NoError(t, err)
	t.Logf("diff of %d changed lines: %v", n, took)
	assert.Less(t, took, 10*time.Second, "exact Myers takes minutes here")
	assert.True(t, d.Truncated)
	require.Len(t, d.Files, 2)
	big, small := d.Files[0], d.Files[1]
	assert.Equal(t, "knowledge/big.md", big.Path)
	assert.True(t, big.Truncated)
	assert.Equal(t, n, big.Additions)
	assert.Equal(t, n, big.Deletions)
	// The small file after it still had budget enough for an exact diff.
	assert.False(t, small.Truncated)
	assert.Equal(t, 1, small.Additions)
	applyCheck(t, s.Path(testID), v.Commit, draft.Revision, d, true)

	start = time.Now()
	st, err := s.DiffStat(ctx, testID, base, target, true)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.Empty(t, st.Patch)
	assert.True(t, st.Truncated)
	require.Len(t, st.Files, 2)
	for i, f := range st.Files {
		assert.Empty(t, f.Patch)
		assert.Equal(t, d.Files[i].Additions, f.Additions, f.Path)
		assert.Equal(t, d.Files[i].Deletions, f.Deletions, f.Path)
		assert.Equal(t, d.Files[i].Status, f.Status, f.Path)
	}
	assert.Equal(t, d.Additions, st.Additions)
	assert.Equal(t, d.Deletions, st.Deletions)
}

// TestDiffBudgetScatteredEdits: a long file with a few edits far apart
// costs little (the edit distance is small) and stays exact, with git's
// own line counts.
func TestDiffBudgetScatteredEdits(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, noAutoPack)
	long := numbered("line", 20_000)
	mustCreate(t, s, testID, map[string][]byte{"knowledge/long.md": []byte(long)})
	v := mustPublish(t, s, testID, "")
	edited := strings.Replace(long, "line 10\n", "line ten\n", 1)
	edited = strings.Replace(edited, "line 19990\n", "", 1)
	edited = strings.Replace(edited, "line 9000\n", "line 9000\ninserted\n", 1)
	draft := mustCommit(t, s, testID, set("knowledge/long.md", edited))
	d, err := s.Diff(ctx, testID, Rev{Kind: RevVersion, Number: v.Number}, Rev{Kind: RevDraft}, true)
	require.NoError(t, err)
	assert.False(t, d.Truncated)
	require.Len(t, d.Files, 1)
	assert.Equal(t, 2, d.Files[0].Additions)
	assert.Equal(t, 2, d.Files[0].Deletions)
	want := numstat(t, s.Path(testID), v.Commit, draft.Revision)
	assert.Equal(t, [2]string{"2", "2"}, want["knowledge/long.md"])
	applyCheck(t, s.Path(testID), v.Commit, draft.Revision, d, true)
}

// TestDiffBudgetConfigured: a small Options.DiffBudget spent on the first
// files (in path order) makes the later ones fall back; every patch still
// applies.
func TestDiffBudgetConfigured(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t, noAutoPack, func(o *Options) { o.DiffBudget = 5_000 })
	files := map[string][]byte{}
	for i := 0; i < 4; i++ {
		files[fmt.Sprintf("knowledge/f%d.md", i)] = []byte(numbered("line", 100))
	}
	mustCreate(t, s, testID, files)
	v := mustPublish(t, s, testID, "")
	var changes []Change
	for i := 0; i < 4; i++ {
		// 10 scattered one-line edits: region ~180 lines × distance 20.
		c := numbered("line", 100)
		for k := 5; k < 95; k += 9 {
			c = strings.Replace(c, "line "+strconv.Itoa(k)+"\n", "edited "+strconv.Itoa(k)+"\n", 1)
		}
		changes = append(changes, set(fmt.Sprintf("knowledge/f%d.md", i), c))
	}
	draft := mustCommit(t, s, testID, changes...)
	d, err := s.Diff(ctx, testID, Rev{Kind: RevVersion, Number: v.Number}, Rev{Kind: RevDraft}, true)
	require.NoError(t, err)
	require.Len(t, d.Files, 4)
	assert.True(t, d.Truncated)
	assert.False(t, d.Files[0].Truncated, "the first file fits the budget")
	assert.Equal(t, 10, d.Files[0].Additions)
	assert.True(t, d.Files[3].Truncated, "the budget is spent by the last file")
	assert.Greater(t, d.Files[3].Additions, 10)
	applyCheck(t, s.Path(testID), v.Commit, draft.Revision, d, true)

	unlimited := mustOpenStore(t, func(o *Options) { o.Root = s.o.Root; o.DiffBudget = -1 })
	d, err = unlimited.Diff(ctx, testID, Rev{Kind: RevVersion, Number: v.Number}, Rev{Kind: RevDraft}, true)
	require.NoError(t, err)
	assert.False(t, d.Truncated)
	for _, f := range d.Files {
		assert.Equal(t, 10, f.Additions, f.Path)
	}
}

// TestEditDistance checks the bounded greedy pass against the exact diff.
func TestEditDistance(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 300; i++ {
		a := make([]rune, rng.IntN(40))
		b := make([]rune, rng.IntN(40))
		for k := range a {
			a[k] = rune('a' + rng.IntN(4))
		}
		for k := range b {
			b[k] = rune('a' + rng.IntN(4))
		}
		lines := func(rs []rune) []string {
			out := make([]string, len(rs))
			for k, r := range rs {
				out[k] = string(r) + "\n"
			}
			return out
		}
		budget := int64(math.MaxInt64)
		ops, _ := editScript(lines(a), lines(b), &budget)
		edits := 0
		for _, op := range ops {
			if op.kind != ' ' {
				edits++
			}
		}
		d, ok := editDistance(a, b, len(a)+len(b))
		require.True(t, ok)
		assert.Equal(t, edits, d, "a=%q b=%q", string(a), string(b))
		if d > 0 {
			_, ok = editDistance(a, b, d-1)
			assert.False(t, ok, "a=%q b=%q within %d", string(a), string(b), d-1)
		}
	}
}
