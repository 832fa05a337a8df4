package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// acked is what clients were told succeeded, and must survive any crash.
type acked struct {
	mu        sync.Mutex
	revisions map[string][]string       // agent → draft revisions acknowledged
	versions  map[string]map[int]string // agent → number → release commit
	statuses  map[string]int            // "op status" → count, for the log
}

func (a *acked) count(what string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.statuses[what]++
}

func (a *acked) revision(id, rev string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.revisions[id] = append(a.revisions[id], rev)
}

func (a *acked) version(id string, n int, commit string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.versions[id] == nil {
		a.versions[id] = map[int]string{}
	}
	a.versions[id][n] = commit
}

// TestSIGKILLDuringWrites kills the daemon at random instants while
// concurrent edits, publishes and rollbacks run on several agents, then
// checks after each restart that every repository passes git fsck
// --strict, tags are contiguous, the published ref, the API and the
// deployment history agree, and nothing acknowledged was lost.
func TestSIGKILLDuringWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("crash loop is long")
	}
	data := t.TempDir()
	d := startDaemon(t, data)
	key := d.bootstrapKey()
	const agents = 3
	ids := make([]string, agents)
	for i := range ids {
		ids[i] = strField(t, mustCall(t, "POST", d.url+"/agents", key, map[string]any{"name": fmt.Sprintf("crash-%d", i)}, 201), "id")
	}
	ack := &acked{revisions: map[string][]string{}, versions: map[string]map[int]string{}, statuses: map[string]int{}}
	rng := rand.New(rand.NewPCG(1, 2))
	const rounds = 6
	for round := range rounds {
		client := &http.Client{Timeout: 10 * time.Second}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					id := ids[(w+i)%agents]
					base := d.url + "/agents/" + id
					switch (w + i) % 4 {
					case 0, 1:
						body := []byte(fmt.Sprintf("# Note\n\nround %d worker %d op %d\n", round, w, i))
						st, m, err := call(client, "PUT", base+"/draft/files/knowledge/w"+strconv.Itoa(w)+".md", key, body)
						if err == nil && st == 200 {
							ack.revision(id, m["revision"].(string))
						}
					case 2:
						st, m, err := call(client, "POST", base+"/publish", key, map[string]any{"notes": "crash test"})
						ack.count(fmt.Sprintf("publish %d", st))
						if err == nil && st == 201 {
							ack.version(id, int(m["number"].(float64)), m["commit"].(string))
						}
					case 3:
						_, _, _ = call(client, "POST", base+"/rollback", key, map[string]any{"version": "v1"})
					}
				}
			}()
		}
		time.Sleep(time.Duration(150+rng.IntN(400)) * time.Millisecond)
		_ = d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
		close(stop)
		wg.Wait()

		d = startDaemon(t, data)
		verifyAfterCrash(t, d, key, ids, ack)
	}
	require.NoError(t, d.stop(syscall.SIGTERM), "final SIGTERM")
	total := 0
	for _, vs := range ack.versions {
		total += len(vs)
	}
	require.NotZero(t, total, "no publish was ever acknowledged: the test proved nothing")
	t.Logf("%d rounds, %d acknowledged versions; outcomes %v", rounds, total, ack.statuses)
}

func verifyAfterCrash(t *testing.T, d *daemon, key string, ids []string, ack *acked) {
	t.Helper()
	ack.mu.Lock()
	defer ack.mu.Unlock()
	for _, id := range ids {
		dir := filepath.Join(d.data, "agents", id+".git")
		gitCmd(t, dir, "fsck", "--strict", "--no-dangling")
		// Tags are v1..vN without gaps.
		var nums []int
		for _, tag := range strings.Fields(gitCmd(t, dir, "tag")) {
			n, err := strconv.Atoi(strings.TrimPrefix(tag, "v"))
			require.NoError(t, err, "%s: stray tag %q", id, tag)
			nums = append(nums, n)
		}
		sort.Ints(nums)
		for i, n := range nums {
			require.Equal(t, i+1, n, "%s: tags %v are not contiguous", id, nums)
		}
		// Every acknowledged version is there with the same commit.
		for n, commit := range ack.versions[id] {
			got := strings.TrimSpace(gitCmd(t, dir, "rev-parse", fmt.Sprintf("v%d^{commit}", n)))
			assert.Equal(t, commit, got, "%s v%d: commit, want the acknowledged one", id, n)
		}
		// Every acknowledged edit is in the draft's history.
		for _, rev := range ack.revisions[id] {
			gitCmd(t, dir, "merge-base", "--is-ancestor", rev, "draft")
		}
		// The API knows every tag, and agrees with the published ref.
		list := mustCall(t, "GET", d.url+"/agents/"+id+"/versions?limit=200", key, nil, 200)
		listed, ok := list["data"].([]any)
		require.True(t, ok, "%s: versions list %v has no data", id, list)
		require.Len(t, listed, len(nums), "%s: API versions, want one per git tag", id)
		if len(nums) == 0 {
			continue
		}
		pubCommit := strings.TrimSpace(gitCmd(t, dir, "rev-parse", "published"))
		pub := list["published"]
		v := mustCall(t, "GET", d.url+"/agents/"+id+"/versions/"+fmt.Sprint(pub), key, nil, 200)
		assert.Equal(t, pubCommit, v["commit"], "%s: API says published %v, git's published ref differs", id, pub)
		deps, ok := mustCall(t, "GET", d.url+"/agents/"+id+"/deployments?limit=1", key, nil, 200)["data"].([]any)
		require.True(t, ok, "%s: deployments have no data", id)
		require.NotEmpty(t, deps, "%s: no deployment, published %v", id, pub)
		last, ok := deps[0].(map[string]any)
		require.True(t, ok, "%s: deployment %v is not an object", id, deps[0])
		assert.Equal(t, pub, last["to"], "%s: last deployment %v, want it to name the published version", id, last)
	}
}
