package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/responder"
)

// compiledDraft is one draft tree compiled, with its responder when it
// compiled cleanly.
type compiledDraft struct {
	result compile.Result
	engine *responder.Engine
}

// sandboxCache holds compiled drafts by tree id and loaded versions by
// agent and number, both bounded. A tree or a version never changes, so
// entries never go stale; only memory bounds them.
type sandboxCache struct {
	drafts   *lru.Cache[string, *compiledDraft]
	versions *lru.Cache[string, *responder.Engine]
	// trees maps "agent@revision" of draft commits to their tree id, so a
	// turn of a draft session finds its compiled draft without git.
	trees *lru.Cache[string, string]
	// flight makes concurrent misses on one key compile once.
	mu     sync.Mutex
	flight map[string]*sync.Mutex
}

func newSandboxCache(size int) *sandboxCache {
	d, _ := lru.New[string, *compiledDraft](size)
	v, _ := lru.New[string, *responder.Engine](size)
	t, _ := lru.New[string, string](size * 16)
	return &sandboxCache{drafts: d, versions: v, trees: t, flight: map[string]*sync.Mutex{}}
}

// keyLock serialises work on one cache key.
func (sc *sandboxCache) keyLock(key string) func() {
	sc.mu.Lock()
	m, ok := sc.flight[key]
	if !ok {
		m = &sync.Mutex{}
		sc.flight[key] = m
	}
	sc.mu.Unlock()
	m.Lock()
	return func() {
		m.Unlock()
		sc.mu.Lock()
		if sc.flight[key] == m && m.TryLock() {
			delete(sc.flight, key)
			m.Unlock()
		}
		sc.mu.Unlock()
	}
}

// draft compiles files (the draft tree with id tree) once.
func (sc *sandboxCache) draft(tree string, files map[string][]byte) *compiledDraft {
	if cd, ok := sc.drafts.Get(tree); ok {
		return cd
	}
	unlock := sc.keyLock("d:" + tree)
	defer unlock()
	if cd, ok := sc.drafts.Get(tree); ok {
		return cd
	}
	res := compile.Compile(files)
	cd := &compiledDraft{result: res}
	if res.OK() && res.Artifact != nil {
		if eng, err := responder.New(res.Artifact); err == nil {
			cd.engine = eng
		} else {
			cd.result.Errors = append(cd.result.Errors, compile.Diagnostic{Code: "responder", Message: err.Error()})
		}
	}
	sc.drafts.Add(tree, cd)
	return cd
}

// rememberRevision records which tree a draft revision has.
func (sc *sandboxCache) rememberRevision(agentID, rev, tree string) {
	sc.trees.Add(agentID+"@"+rev, tree)
}

// draftAt returns the compiled draft of one draft revision: from memory
// when the revision's tree was compiled before, else read from git once.
func (sc *sandboxCache) draftAt(ctx context.Context, repos *repo.Store, agentID, rev string) (*compiledDraft, error) {
	if tree, ok := sc.trees.Get(agentID + "@" + rev); ok {
		if cd, ok := sc.drafts.Get(tree); ok {
			return cd, nil
		}
	}
	tree, files, err := repos.FilesAt(ctx, agentID, rev)
	if err != nil {
		return nil, err
	}
	sc.rememberRevision(agentID, rev, tree)
	return sc.draft(tree, files), nil
}

// compiled returns the compile result of a draft tree.
func (sc *sandboxCache) compiled(tree string, files map[string][]byte) compile.Result {
	return sc.draft(tree, files).result
}

// version loads the responder of a published version once.
func (sc *sandboxCache) version(ctx context.Context, repos *repo.Store, agentID string, n int) (*responder.Engine, error) {
	key := agentID + "@" + strconv.Itoa(n)
	if e, ok := sc.versions.Get(key); ok {
		return e, nil
	}
	unlock := sc.keyLock("v:" + key)
	defer unlock()
	if e, ok := sc.versions.Get(key); ok {
		return e, nil
	}
	data, _, err := repos.ReadFile(ctx, agentID, repo.Rev{Kind: repo.RevVersion, Number: n}, compile.ArtifactPath)
	if err != nil {
		return nil, err
	}
	var art compile.Artifact
	if err := json.Unmarshal(data, &art); err != nil {
		return nil, fmt.Errorf("decode v%d artifact: %w", n, err)
	}
	e, err := responder.New(&art)
	if err != nil {
		return nil, fmt.Errorf("load v%d: %w", n, err)
	}
	sc.versions.Add(key, e)
	return e, nil
}

// forget drops a deleted agent's loaded versions early; draft entries are
// keyed by tree id and age out of the LRU.
func (sc *sandboxCache) forget(agentID string) {
	for _, k := range sc.versions.Keys() {
		if len(k) > len(agentID) && k[:len(agentID)] == agentID && k[len(agentID)] == '@' {
			sc.versions.Remove(k)
		}
	}
}
