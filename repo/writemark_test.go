package repo

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWriteMark: a write left marked is reported to the next writer until
// cleared; an unknown or invalid repository is ErrNotFound; the mark does
// not disturb git.
func TestWriteMark(t *testing.T) {
	s := mustOpenStore(t)
	mustCreate(t, s, testID, map[string][]byte{"agent.yaml": []byte("name: A\n")})

	interrupted, err := s.MarkWriting(testID)
	require.NoError(t, err)
	assert.False(t, interrupted, "no earlier write")
	mustFsck(t, s.Path(testID))

	// The writer died before clearing: the next one is told.
	interrupted, err = s.MarkWriting(testID)
	require.NoError(t, err)
	assert.True(t, interrupted)
	interrupted, err = s.MarkWriting(testID)
	require.NoError(t, err)
	assert.True(t, interrupted, "the mark stays until cleared")

	require.NoError(t, s.ClearWriting(testID))
	require.NoError(t, s.ClearWriting(testID), "clearing twice is fine")
	interrupted, err = s.MarkWriting(testID)
	require.NoError(t, err)
	assert.False(t, interrupted)

	_, err = s.MarkWriting("agt_unknownunknownunkno")
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = s.MarkWriting("../x")
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorIs(t, s.ClearWriting("../x"), ErrNotFound)
}
