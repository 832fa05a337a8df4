package repo

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
)

func TestReadDirBlobs(t *testing.T) {
	ctx := context.Background()
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("name: A\n"), "knowledge/a.md": []byte("A\n"), "knowledge/b.md": []byte("B\n")})
	mustPublish(t, s, testID, "")
	mustCommit(t, s, testID, set("knowledge/a.md", "A2\n"))
	dir := s.Path(testID)
	a1 := strings.TrimSpace(mustGit(t, dir, "rev-parse", "v1:knowledge/a.md"))
	b1 := strings.TrimSpace(mustGit(t, dir, "rev-parse", "v1:knowledge/b.md"))
	a2 := strings.TrimSpace(mustGit(t, dir, "rev-parse", "draft:knowledge/a.md"))
	yaml := strings.TrimSpace(mustGit(t, dir, "rev-parse", "v1:agent.yaml"))
	// The compiler names a file by the id the repository stores it under.
	assert.Equal(t, a1, compile.BlobID([]byte("A\n")))
	assert.Equal(t, a2, compile.BlobID([]byte("A2\n")))

	got, err := s.ReadDirBlobs(ctx, testID, Rev{Kind: RevVersion, Number: 1}, "knowledge", []string{a1, b1, a2, yaml, "not-an-id"})
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{a1: []byte("A\n"), b1: []byte("B\n")}, got, "only the files of v1's knowledge/")
	got, err = s.ReadDirBlobs(ctx, testID, Rev{Kind: RevDraft}, "knowledge", []string{a1, a2})
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{a2: []byte("A2\n")}, got)
	got, err = s.ReadDirBlobs(ctx, testID, Rev{Kind: RevVersion, Number: 1}, "skills", []string{a1})
	require.NoError(t, err)
	assert.Empty(t, got)
	_, err = s.ReadDirBlobs(ctx, testID, Rev{Kind: RevVersion, Number: 9}, "knowledge", []string{a1})
	assert.True(t, errors.Is(err, ErrVersionNotFound), "%v", err)
}
