package repo

import (
	"context"
	"maps"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTreeChanges: the files of one tree that are new or changed against
// another, and the paths gone, in every direction; applied to the files
// of the first tree they give the files of the second.
func TestTreeChanges(t *testing.T) {
	s := mustOpenStore(t)
	ctx := context.Background()
	mustCreate(t, s, testID, map[string][]byte{
		"agent.yaml": []byte("name: A\n"), "knowledge/a.md": []byte("A\n"), "knowledge/b.md": []byte("B\n"),
		"skills/s.yaml": []byte("s\n"),
	})
	_, t0, files0, err := s.DraftFiles(ctx, testID)
	require.NoError(t, err)
	mustCommit(t, s, testID, set("knowledge/a.md", "A2\n"), del("knowledge/b.md"), set("knowledge/c.md", "C\n"), del("skills/s.yaml"), set("tests/x.yaml", "x\n"))
	_, t1, files1, err := s.DraftFiles(ctx, testID)
	require.NoError(t, err)

	changed, removed, err := s.TreeChanges(ctx, testID, t0, t1)
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"knowledge/a.md": []byte("A2\n"), "knowledge/c.md": []byte("C\n"), "tests/x.yaml": []byte("x\n")}, changed)
	assert.Equal(t, []string{"knowledge/b.md", "skills/s.yaml"}, removed)

	apply := func(files map[string][]byte, changed map[string][]byte, removed []string) map[string][]byte {
		out := maps.Clone(files)
		for _, p := range removed {
			delete(out, p)
		}
		maps.Copy(out, changed)
		return out
	}
	for _, c := range []struct{ from, to string }{{t0, t1}, {t1, t0}, {"", t1}, {t1, ""}, {t1, t1}} {
		changed, removed, err := s.TreeChanges(ctx, testID, c.from, c.to)
		require.NoError(t, err)
		from, to := map[string][]byte{}, map[string][]byte{}
		for tree, m := range map[string]map[string][]byte{t0: files0, t1: files1} {
			if c.from == tree {
				from = m
			}
			if c.to == tree {
				to = m
			}
		}
		assert.Equal(t, to, apply(from, changed, removed), "%s..%s", c.from, c.to)
	}

	_, _, err = s.TreeChanges(ctx, testID, "nope", t1)
	assert.Error(t, err)
	_, _, err = s.TreeChanges(ctx, testID, "0123456789012345678901234567890123456789", t1)
	assert.Error(t, err, "a tree the repository does not have")
}

// TestGateChanges: a gate reads the draft's changes since an earlier tree
// under the lock, and its artifact is what the release holds.
func TestGateChanges(t *testing.T) {
	s := mustOpenStore(t)
	ctx := context.Background()
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("name: A\n"), "knowledge/a.md": []byte("A\n")})
	_, t0, _, err := s.DraftFiles(ctx, testID)
	require.NoError(t, err)
	mustCommit(t, s, testID, set("knowledge/a.md", "A2\n"))
	_, err = s.Publish(ctx, testID, PublishRequest{Gate: func(in GateInput) (ReleaseExtras, error) {
		changed, removed, err := in.Changes(t0)
		require.NoError(t, err)
		assert.Equal(t, map[string][]byte{"knowledge/a.md": []byte("A2\n")}, changed)
		assert.Empty(t, removed)
		_, _, err = in.Changes("bad")
		assert.Error(t, err)
		return ReleaseExtras{Artifact: []Part{{Data: []byte("{")}, {Data: []byte("}\n")}}}, nil
	}}, nil)
	require.NoError(t, err)
	assert.Equal(t, "{}\n", mustGit(t, s.Path(testID), "show", "v1:compiled/agent.json"))
}
