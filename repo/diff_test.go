package repo

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// applyCheck applies d.Patch with git apply to a checkout of base and
// compares the result with a checkout of target.
func applyCheck(t *testing.T, dir, baseRev, targetRev string, d Diff, sourceOnly bool) {
	t.Helper()
	wt := checkoutTree(t, dir, baseRev)
	want := readDirFiles(t, checkoutTree(t, dir, targetRev))
	if sourceOnly {
		// The compiled artifact is not part of the diff: keep the base's.
		for p := range want {
			if strings.HasPrefix(p, "compiled/") {
				delete(want, p)
			}
		}
		_ = os.RemoveAll(filepath.Join(wt, "compiled"))
	}
	if len(d.Patch) > 0 {
		out, err := gitCmd(t, wt, d.Patch, "apply", "--whitespace=nowarn", "-")
		require.NoError(t, err, "git apply %s→%s: %s\npatch:\n%s", baseRev, targetRev, out, d.Patch)
	}
	got := readDirFiles(t, wt)
	require.Equal(t, want, got, "%s→%s: files after apply", baseRev, targetRev)
}

// numstat returns git's own per-file additions and deletions.
func numstat(t *testing.T, dir string, args ...string) map[string][2]string {
	t.Helper()
	out := mustGit(t, dir, append([]string{"diff", "--minimal", "--no-renames", "--numstat"}, args...)...)
	m := map[string][2]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		f := strings.SplitN(line, "\t", 3)
		m[f[2]] = [2]string{f[0], f[1]}
	}
	return m
}

func TestDiffApplyRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	var long strings.Builder
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&long, "line %d\n", i)
	}
	longV2 := strings.Replace(strings.Replace(long.String(), "line 5\n", "line five\n", 1), "line 50\n", "", 1) + "tail"
	bin1 := []byte{0, 1, 2, 3, 'x', 0, 255, 254}
	bin2 := append([]byte("\x00binary\x00"), make([]byte, 300)...)
	mustCreate(t, s, testID, map[string][]byte{
		"agent.yaml":         []byte("name: A\n"),
		"knowledge/long.md":  []byte(long.String()),
		"knowledge/nonl.md":  []byte("no newline"),
		"knowledge/gone.md":  []byte("to be deleted\n"),
		"assets/blob.bin":    bin1,
		"assets/old.bin":     bin1,
		"empty.txt":          nil,
		"with space.md":      []byte("a b\n"),
		"skills/lookup.yaml": []byte("x: 1\n"),
	})
	mustPublish(t, s, testID, "")
	mustCommit(t, s, testID,
		set("agent.yaml", "name: B\n"),
		set("knowledge/long.md", longV2),
		set("knowledge/nonl.md", "no newline\n"),
		del("knowledge/gone.md"),
		set("knowledge/new.md", "fresh\nfile"),
		set("assets/blob.bin", string(bin2)),
		del("assets/old.bin"),
		set("assets/new.bin", string(bin1)),
		del("empty.txt"),
		set("empty2.txt", ""),
		set("with space.md", "a b c\n"),
		set("skills/lookup.yaml", ""),
		set("é.md", "unicode name\n"),
	)
	mustPublish(t, s, testID, "")
	dir := s.Path(testID)

	v1, v2 := Rev{Kind: RevVersion, Number: 1}, Rev{Kind: RevVersion, Number: 2}
	cases := []struct {
		name             string
		base, target     Rev
		baseRev, tgtRev  string
		sourceOnly       bool
		wantCompiledPath bool
	}{
		{"v1..v2", v1, v2, "v1", "v2", false, true},
		{"v2..v1", v2, v1, "v2", "v1", false, true},
		{"empty..v2", Rev{Kind: RevEmpty}, v2, "", "v2", false, true},
		{"v2..empty", v2, Rev{Kind: RevEmpty}, "v2", "", false, true},
		{"v1..v2 source", v1, v2, "v1", "v2", true, false},
		{"v1..draft", v1, Rev{Kind: RevDraft}, "v1", "draft", true, false},
		{"draft..v1", Rev{Kind: RevDraft}, v1, "draft", "v1", true, false},
		{"v2..v2", v2, v2, "v2", "v2", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := s.Diff(ctx, testID, tc.base, tc.target, tc.sourceOnly)
			require.NoError(t, err)
			assert.False(t, d.Truncated)
			hasCompiled := false
			adds, dels := 0, 0
			for _, f := range d.Files {
				if f.Path == compiledPath {
					hasCompiled = true
				}
				assert.True(t, strings.HasPrefix(f.Patch, "diff --git "), "%s patch starts %q", f.Path, f.Patch[:min(len(f.Patch), 20)])
				adds += f.Additions
				dels += f.Deletions
			}
			assert.Equal(t, tc.wantCompiledPath, hasCompiled, "compiled in diff")
			assert.Equal(t, d.Additions, adds, "additions: total vs sum of files")
			assert.Equal(t, d.Deletions, dels, "deletions: total vs sum of files")
			applyCheck(t, dir, tc.baseRev, tc.tgtRev, d, tc.sourceOnly)
			if tc.baseRev != "" && tc.tgtRev != "" && !tc.sourceOnly {
				// Same counts as git's minimal diff.
				// git --no-renames lists a rename as a deletion and an addition.
				ns := numstat(t, dir, tc.baseRev, tc.tgtRev)
				want := len(d.Files)
				for _, f := range d.Files {
					if f.Status == "renamed" {
						want++
					}
				}
				require.Len(t, ns, want, "files (renames counted twice) vs git")
				for _, f := range d.Files {
					if f.Status == "renamed" {
						assert.Contains(t, ns, f.OldPath, "rename from")
						assert.Contains(t, ns, f.Path, "rename to")
						continue
					}
					want := ns[f.Path]
					if f.Path == "é.md" {
						want = ns[`"\303\251.md"`]
					}
					got := [2]string{strconv.Itoa(f.Additions), strconv.Itoa(f.Deletions)}
					if f.Binary {
						got = [2]string{"-", "-"}
					}
					assert.Equal(t, want, got, "%s: numstat vs git", f.Path)
				}
			}
		})
	}

	d, err := s.Diff(ctx, testID, v1, v2, true)
	require.NoError(t, err)
	status := map[string]string{}
	for _, f := range d.Files {
		status[f.Path] = f.Status
		assert.Equal(t, strings.HasSuffix(f.Path, ".bin"), f.Binary, "%s binary", f.Path)
	}
	want := map[string]string{"knowledge/gone.md": "deleted", "knowledge/new.md": "added", "agent.yaml": "modified", "assets/blob.bin": "modified", "empty.txt": "deleted", "empty2.txt": "added"}
	for p, st := range want {
		assert.Equal(t, st, status[p], "%s status", p)
	}
	assert.NotEmpty(t, d.BaseCommit)
	assert.NotEmpty(t, d.TargetCommit)

	// The stats-only path agrees with the patch path and has no text.
	st, err := s.DiffStat(ctx, testID, v1, v2, false)
	require.NoError(t, err)
	full, err := s.Diff(ctx, testID, v1, v2, false)
	require.NoError(t, err)
	assert.Empty(t, st.Patch)
	require.Len(t, st.Files, len(full.Files))
	for i, f := range st.Files {
		assert.Empty(t, f.Patch, f.Path)
		g := full.Files[i]
		g.Patch = ""
		assert.Equal(t, g, f)
	}
	assert.Equal(t, full.Additions, st.Additions)
	assert.Equal(t, full.Deletions, st.Deletions)
}

func TestHunks(t *testing.T) {
	// Two changes far apart make two hunks; close ones merge.
	var a, b strings.Builder
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&a, "%d\n", i)
		switch i {
		case 2, 18:
			fmt.Fprintf(&b, "x%d\n", i)
		default:
			fmt.Fprintf(&b, "%d\n", i)
		}
	}
	var sb strings.Builder
	budget := int64(math.MaxInt64)
	ops, truncated := editScript(splitLines([]byte(a.String())), splitLines([]byte(b.String())), &budget)
	require.False(t, truncated, "truncated with an unlimited budget")
	adds, dels := writeHunks(&sb, ops)
	want := "@@ -1,5 +1,5 @@\n 1\n-2\n+x2\n 3\n 4\n 5\n@@ -15,6 +15,6 @@\n 15\n 16\n 17\n-18\n+x18\n 19\n 20\n"
	assert.Equal(t, want, sb.String())
	assert.Equal(t, 2, adds)
	assert.Equal(t, 2, dels)
}

func TestDiffApplyRandom(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"alpha", "beta", "gamma", "", "  indented", "delta\t", "x"}
	randomFile := func() string {
		var b strings.Builder
		n := rng.IntN(40)
		for i := 0; i < n; i++ {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte('\n')
		}
		out := b.String()
		if rng.IntN(3) == 0 {
			out = strings.TrimSuffix(out, "\n")
		}
		return out
	}
	mutate := func(old string) string {
		lines := strings.SplitAfter(old, "\n")
		for k := rng.IntN(4); k >= 0; k-- {
			i := rng.IntN(len(lines) + 1)
			switch rng.IntN(3) {
			case 0:
				lines = append(lines[:i], append([]string{words[rng.IntN(len(words))] + "\n"}, lines[i:]...)...)
			case 1:
				if i < len(lines) {
					lines = append(lines[:i], lines[i+1:]...)
				}
			case 2:
				if i < len(lines) {
					lines[i] = "changed " + lines[i]
				}
			}
		}
		out := strings.Join(lines, "")
		if rng.IntN(4) == 0 {
			out = strings.TrimSuffix(out, "\n")
		}
		return out
	}
	files := map[string][]byte{}
	for i := 0; i < 5; i++ {
		files[fmt.Sprintf("knowledge/f%d.md", i)] = []byte(randomFile())
	}
	mustCreate(t, s, testID, files)
	mustPublish(t, s, testID, "")
	dir := s.Path(testID)
	for round := 2; round <= 15; round++ {
		var changes []Change
		for p, c := range files {
			if rng.IntN(2) == 0 {
				n := mutate(string(c))
				files[p] = []byte(n)
				changes = append(changes, set(p, n))
			}
		}
		changes = append(changes, set("knowledge/always.md", fmt.Sprint(round)))
		mustCommit(t, s, testID, changes...)
		mustPublish(t, s, testID, "")
		d, err := s.Diff(ctx, testID, Rev{Kind: RevVersion, Number: round - 1}, Rev{Kind: RevVersion, Number: round}, false)
		require.NoError(t, err)
		applyCheck(t, dir, fmt.Sprintf("v%d", round-1), fmt.Sprintf("v%d", round), d, false)
		ns := numstat(t, dir, fmt.Sprintf("v%d", round-1), fmt.Sprintf("v%d", round))
		for _, f := range d.Files {
			got := [2]string{strconv.Itoa(f.Additions), strconv.Itoa(f.Deletions)}
			assert.Equal(t, ns[f.Path], got, "round %d %s: +/- vs git", round, f.Path)
		}
	}
}
