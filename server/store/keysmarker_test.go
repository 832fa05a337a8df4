package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKeysStampAcrossProcesses: revocations through another Store on the
// same database (the CLI while the daemon runs) change this store's
// stamp at its next call, every time, even when they follow each other
// within one clock tick and the marker's inode could be reused.
func TestKeysStampAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flowyte.db")
	daemon := mustOpenPath(t, path)
	cli := mustOpenPath(t, path)
	ctx := context.Background()
	ws := mustWorkspace(t, cli, "w")
	const n = 40
	require.NoError(t, cli.Write(ctx, func(tx Tx) error {
		for i := range n {
			id := fmt.Sprintf("key_m%d", i)
			if err := tx.CreateKey(ctx, Key{ID: id, WorkspaceID: ws.ID, Name: id, CreatedAt: t0}, []byte(id)); err != nil {
				return err
			}
		}
		return nil
	}))
	prev := daemon.KeysStamp()
	assert.Equal(t, prev, daemon.KeysStamp(), "unchanged without a revocation")
	seen := map[string]bool{prev: true}
	for i := range n {
		require.NoError(t, cli.RevokeKey(ctx, fmt.Sprintf("key_m%d", i), t0))
		st := daemon.KeysStamp()
		require.False(t, seen[st], "revocation %d: stamp %q seen before", i, st)
		seen[st] = true
		assert.Equal(t, st, daemon.KeysStamp(), "stable until the next revocation")
		assert.Equal(t, st, cli.KeysStamp(), "both processes read one marker")
	}
}
