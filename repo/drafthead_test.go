package repo

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDraftBlob: the draft revision and one file's blob id, "" for a path
// that is no file of the draft (missing, or a directory).
func TestDraftBlob(t *testing.T) {
	s := mustOpenStore(t)
	ctx := context.Background()
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("name: A\n"), "knowledge/a.md": []byte("A\n")})
	c := mustCommit(t, s, testID, set("knowledge/a.md", "A2\n"))
	rev, blob, err := s.DraftBlob(ctx, testID, "knowledge/a.md")
	require.NoError(t, err)
	assert.Equal(t, c.Revision, rev)
	_, want, err := s.ReadFile(ctx, testID, Rev{Kind: RevDraft}, "knowledge/a.md")
	require.NoError(t, err)
	assert.Equal(t, want, blob)
	for _, p := range []string{"knowledge/b.md", "knowledge", "agent.yaml/x"} {
		rev, blob, err = s.DraftBlob(ctx, testID, p)
		require.NoError(t, err, p)
		assert.Equal(t, c.Revision, rev, p)
		assert.Empty(t, blob, p)
	}
	_, _, err = s.DraftBlob(ctx, "nope", "agent.yaml")
	assert.ErrorIs(t, err, ErrNotFound)
}
