package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowyte/flowyte/server/store/pgtest"
)

// TestTwoDaemonsOneService runs two built daemons on one PostgreSQL
// database and one data dir (CONTRACT §14): racing publishes, interleaved
// edits on both, a revocation seen by the other at its next request,
// webhooks to a local receiver, a SIGKILL of one under load; then git
// fsck, contiguous tags and API/git agreement on both.
func TestTwoDaemonsOneService(t *testing.T) {
	if testing.Short() {
		t.Skip("two daemons on PostgreSQL take a while")
	}
	dsn := pgtest.Start(t)
	data := t.TempDir()
	a := startDaemon(t, data, "--database", dsn)
	key := a.bootstrapKey()
	b := startDaemon(t, data, "--database", dsn)
	for _, d := range []*daemon{a, b} {
		mustCall(t, "GET", d.url+"/readyz", "", nil, 200)
		assert.Eventually(t, func() bool {
			req, _ := http.NewRequest("GET", d.url+"/metrics", nil)
			req.Header.Set("Authorization", "Bearer "+key)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			return strings.Contains(string(body), "\nflowyte_cluster_leased 1\n")
		}, 10*time.Second, 20*time.Millisecond, "each daemon holds its cluster lease")
	}

	var secret string
	hooks, hookSrv := newHookLog(t, &secret)
	hook := mustCall(t, "POST", a.url+"/webhooks", key, map[string]any{"url": hookSrv.URL, "events": []string{"version.published"}}, 201)
	secret = strField(t, hook, "secret")

	id := strField(t, mustCall(t, "POST", a.url+"/agents", key, map[string]any{"name": "shared"}, 201), "id")
	mustCall(t, "GET", b.url+"/agents/"+id, key, nil, 200)

	// Interleaved edits on both daemons: every one lands in the history.
	ack := &acked{revisions: map[string][]string{}, versions: map[string]map[int]string{}, statuses: map[string]int{}}
	for i := range 10 {
		d := []*daemon{a, b}[i%2]
		r := mustCall(t, "PUT", fmt.Sprintf("%s/agents/%s/draft/files/knowledge/k%d.md", d.url, id, i), key, []byte(fmt.Sprintf("# K%d\n\nbody %d\n", i, i)), 200)
		ack.revision(id, strField(t, r, "revision"))
	}

	// Twenty publishes of one draft racing on both: exactly one wins.
	var wins, conflicts atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := []*daemon{a, b}[i%2]
			st, body, err := call(http.DefaultClient, "POST", d.url+"/agents/"+id+"/publish", key, map[string]any{"notes": "race"})
			if !assert.NoError(t, err) {
				return
			}
			switch st {
			case 201:
				wins.Add(1)
				ack.version(id, int(body["number"].(float64)), body["commit"].(string))
			case 409:
				conflicts.Add(1)
			default:
				assert.Fail(t, fmt.Sprintf("racing publish: status %d %v", st, body))
			}
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 1, wins.Load(), "exactly one of the racing publishes wins")
	assert.EqualValues(t, 19, conflicts.Load())

	// A key revoked through one daemon is refused by the other at once.
	temp := mustCall(t, "POST", a.url+"/keys", key, map[string]any{"name": "temp", "scopes": []string{"agents:read"}}, 201)
	mustCall(t, "GET", b.url+"/agents", temp["secret"].(string), nil, 200)
	mustCall(t, "DELETE", a.url+"/keys/"+temp["id"].(string), key, nil, 204)
	mustCall(t, "GET", b.url+"/agents", temp["secret"].(string), nil, 401)

	// Writes through one daemon are seen by the other at its next request
	// (both cache agent rows): a rename, draft edits, a publish, a
	// rollback, each read back at once through the other daemon.
	mustCall(t, "GET", b.url+"/agents/"+id, key, nil, 200) // cached on b
	mustCall(t, "PUT", a.url+"/agents/"+id+"/draft/settings", key, map[string]any{"name": "renamed"}, 200)
	assert.Equal(t, "renamed", mustCall(t, "GET", b.url+"/agents/"+id, key, nil, 200)["name"], "the other daemon sees the rename")
	for i := range 6 {
		w, r := []*daemon{a, b}[i%2], []*daemon{b, a}[i%2]
		put := mustCall(t, "PUT", w.url+"/agents/"+id+"/draft/files/knowledge/rw.md", key, []byte(fmt.Sprintf("# RW\n\nround %d\n", i)), 200)
		got := mustCall(t, "GET", r.url+"/agents/"+id+"/draft", key, nil, 200)
		assert.Equal(t, put["revision"], got["revision"], "round %d: the draft written through one daemon, read through the other", i)
		ag := mustCall(t, "GET", r.url+"/agents/"+id, key, nil, 200)
		assert.Equal(t, put["revision"], ag["draft"].(map[string]any)["revision"], "round %d: the agent's draft revision", i)
		pub := mustCall(t, "POST", w.url+"/agents/"+id+"/publish", key, map[string]any{"notes": "rw"}, 201)
		assert.Equal(t, pub["id"], mustCall(t, "GET", r.url+"/agents/"+id+"/versions/published", key, nil, 200)["id"], "round %d: published through one daemon, served by the other", i)
	}
	rb := mustCall(t, "POST", b.url+"/agents/"+id+"/rollback", key, map[string]any{"version": "v1"}, 200)
	assert.Equal(t, "v1", mustCall(t, "GET", a.url+"/agents/"+id+"/versions/published", key, nil, 200)["id"], "rolled back through one daemon, served by the other: %v", rb)

	// Load on both, then SIGKILL one in the middle of it.
	stop := make(chan struct{})
	var load sync.WaitGroup
	for w := range 4 {
		load.Add(1)
		go func() {
			defer load.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				d := []*daemon{a, b}[(w+i)%2]
				st, body, err := call(client, "PUT", fmt.Sprintf("%s/agents/%s/draft/files/knowledge/w%d.md", d.url, id, w), key, []byte(fmt.Sprintf("# W\n\nround %d\n", i)))
				if err == nil && st == 200 {
					ack.revision(id, body["revision"].(string))
				}
				st, body, err = call(client, "POST", d.url+"/agents/"+id+"/publish", key, map[string]any{})
				if err == nil && st == 201 {
					ack.version(id, int(body["number"].(float64)), body["commit"].(string))
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	require.NoError(t, b.cmd.Process.Signal(syscall.SIGKILL))
	<-b.done
	time.Sleep(500 * time.Millisecond)
	close(stop)
	load.Wait()

	// The survivor repairs whatever the dead one left, on its next touch.
	mustCall(t, "PUT", a.url+"/agents/"+id+"/draft/files/knowledge/after.md", key, []byte("# After\n\nthe kill\n"), 200)
	st, body, err := call(http.DefaultClient, "POST", a.url+"/agents/"+id+"/publish", key, map[string]any{"notes": "after"})
	require.NoError(t, err)
	require.Equal(t, 201, st, "%v", body)
	ack.version(id, int(body["number"].(float64)), body["commit"].(string))
	verifyAfterCrash(t, a, key, []string{id}, ack)

	// The killed daemon comes back and agrees.
	b = startDaemon(t, data, "--database", dsn)
	verifyAfterCrash(t, b, key, []string{id}, ack)

	// Every tag reached the webhook receiver.
	hooks.waitFor(t, strings.Fields(gitCmd(t, data+"/agents/"+id+".git", "tag"))...)
}

// TestMigrateDBToPostgres moves a daemon's SQLite metadata into
// PostgreSQL with `flowyted migrate-db` and serves the same agents,
// versions and keys from it.
func TestMigrateDBToPostgres(t *testing.T) {
	dsn := pgtest.Start(t)
	data := t.TempDir()
	d := startDaemon(t, data)
	key := d.bootstrapKey()
	id := strField(t, mustCall(t, "POST", d.url+"/agents", key, map[string]any{"name": "moving"}, 201), "id")
	mustCall(t, "PUT", d.url+"/agents/"+id+"/draft/files/knowledge/a.md", key, []byte("# A\n\ntext\n"), 200)
	v1 := mustCall(t, "POST", d.url+"/agents/"+id+"/publish", key, map[string]any{"notes": "before the move"}, 201)
	require.NoError(t, d.stop(syscall.SIGTERM))

	out, err := exec.Command(binPath, "migrate-db", "--data", data, "--from", "sqlite", "--to", dsn).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "copied")
	assert.NotContains(t, string(out), "password", "no secret in the output")
	out, err = exec.Command(binPath, "migrate-db", "--data", data, "--from", "sqlite", "--to", dsn).CombinedOutput()
	require.Error(t, err, "a second migration into a non-empty database is refused: %s", out)

	require.NoError(t, os.Rename(data+"/flowyte.db", data+"/flowyte.db.migrated"))
	d = startDaemon(t, data, "--database", dsn)
	got := mustCall(t, "GET", d.url+"/agents/"+id+"/versions/v1", key, nil, 200)
	assert.Equal(t, v1["commit"], got["commit"])
	assert.Equal(t, "before the move", got["notes"])
	mustCall(t, "POST", d.url+"/agents/"+id+"/rollback", key, map[string]any{"version": "v1"}, 200)
}
