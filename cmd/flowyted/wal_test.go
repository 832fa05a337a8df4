package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/compile"
)

// TestLostWALRebuildsFromGit deletes the database's -wal while the daemon
// runs (every row written since the last checkpoint is then gone), kills
// it, and restarts: recovery must rebuild agents, versions and the
// published pointer from git and keys from the key journal, never hide a
// repository, and never replace the bootstrap key.
func TestLostWALRebuildsFromGit(t *testing.T) {
	data := t.TempDir()
	d := startDaemon(t, data)
	key := d.bootstrapKey()
	type agent struct {
		id, name string
	}
	var agents []agent
	for i := range 3 {
		name := fmt.Sprintf("wal-%d", i)
		id := mustCall(t, "POST", d.url+"/agents", key, map[string]any{"name": name}, 201)["id"].(string)
		for v := range 2 {
			mustCall(t, "PUT", d.url+"/agents/"+id+"/draft/files/knowledge/a.md", key, []byte(fmt.Sprintf("# A\n\nedit %d\n", v)), 200)
			mustCall(t, "POST", d.url+"/agents/"+id+"/publish", key, map[string]any{"notes": fmt.Sprintf("v%d", v+1)}, 201)
		}
		agents = append(agents, agent{id, name})
	}
	// Roll one agent back so the pointer is not simply the newest tag.
	mustCall(t, "POST", d.url+"/agents/"+agents[0].id+"/rollback", key, map[string]any{"version": "v1"}, 200)
	reader := mustCall(t, "POST", d.url+"/keys", key, map[string]any{"name": "reader", "scopes": []string{"agents:read"}}, 201)
	doomed := mustCall(t, "POST", d.url+"/keys", key, map[string]any{"name": "doomed", "scopes": []string{"agents:read"}}, 201)
	mustCall(t, "DELETE", d.url+"/keys/"+doomed["id"].(string), key, nil, 204)
	bootstrapBefore, err := os.ReadFile(filepath.Join(data, "bootstrap.key"))
	require.NoError(t, err)

	wal := filepath.Join(data, "flowyte.db-wal")
	_, err = os.Stat(wal)
	require.NoError(t, err, "the daemon runs in WAL mode")
	require.NoError(t, os.Remove(wal))
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGKILL))
	<-d.done

	d = startDaemon(t, data)
	bootstrapAfter, err := os.ReadFile(filepath.Join(data, "bootstrap.key"))
	require.NoError(t, err)
	assert.Equal(t, string(bootstrapBefore), string(bootstrapAfter), "the bootstrap key file is never replaced")
	trash, _ := os.ReadDir(filepath.Join(data, "agents", ".trash"))
	assert.Empty(t, trash, "no repository was moved aside")

	list := mustCall(t, "GET", d.url+"/agents", key, nil, 200)["data"].([]any)
	require.Len(t, list, len(agents))
	names := map[string]string{}
	for _, a := range list {
		m := a.(map[string]any)
		names[m["id"].(string)] = m["name"].(string)
	}
	for i, a := range agents {
		assert.Equal(t, a.name, names[a.id])
		vs := mustCall(t, "GET", d.url+"/agents/"+a.id+"/versions", key, nil, 200)
		assert.Len(t, vs["data"], 2, "versions of %s", a.id)
		want := "v2"
		if i == 0 {
			want = "v1"
		}
		assert.Equal(t, want, vs["published"], "published of %s", a.id)
		mustCall(t, "GET", d.url+"/agents/"+a.id+"/versions/v2/compiled", key, nil, 200)
	}
	mustCall(t, "GET", d.url+"/agents", reader["secret"].(string), nil, 200)
	mustCall(t, "GET", d.url+"/agents", doomed["secret"].(string), nil, 401)
}

// compileArtifact is publish's compiler for tests that write repositories
// behind the daemon's back.
func compileArtifact(files map[string][]byte) ([]byte, error) {
	res := compile.Compile(files)
	if !res.OK() {
		return nil, res.Errors
	}
	return res.JSON, nil
}
