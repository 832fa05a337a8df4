package repo_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/repo"
)

func TestOwnerIsRecordedInTheRepositoryConfig(t *testing.T) {
	st, err := repo.Open(repo.Options{Root: filepath.Join(t.TempDir(), "agents")})
	require.NoError(t, err)
	ctx := context.Background()
	files := map[string][]byte{"agent.yaml": []byte("name: x\n")}
	const id, plain = "agt_aaaaaaaaaaaaaaaaaaaa", "agt_bbbbbbbbbbbbbbbbbbbb"
	_, err = st.CreateOwned(ctx, id, repo.Owner{WorkspaceID: "ws_1", WorkspaceName: "team a"}, files, "create", repo.Signature{Name: "t"})
	require.NoError(t, err)
	o, err := st.Owner(id)
	require.NoError(t, err)
	assert.Equal(t, repo.Owner{WorkspaceID: "ws_1", WorkspaceName: "team a"}, o)

	out, err := exec.Command("git", "--git-dir", st.Path(id), "config", "flowyte.workspaceName").Output()
	require.NoError(t, err, "stock git reads the owner")
	assert.Equal(t, "team a", strings.TrimSpace(string(out)))
	fsck, err := exec.Command("git", "--git-dir", st.Path(id), "fsck", "--strict").CombinedOutput()
	assert.NoError(t, err, "%s", fsck)

	_, err = st.Create(ctx, plain, files, "create", repo.Signature{Name: "t"})
	require.NoError(t, err)
	_, err = st.Owner(plain)
	assert.ErrorIs(t, err, repo.ErrNoOwner)
	_, err = st.Owner("agt_cccccccccccccccccccc")
	assert.ErrorIs(t, err, repo.ErrNotFound)
}
