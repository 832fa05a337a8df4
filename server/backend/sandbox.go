package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowyte/flowyte/compile"
	"github.com/flowyte/flowyte/repo"
	"github.com/flowyte/flowyte/server/responder"
	"github.com/flowyte/flowyte/server/store"
)

// compiledDraft is one draft tree compiled, with its responder when it
// compiled cleanly. The artifact's JSON is not kept (only its digest).
type compiledDraft struct {
	result compile.Result
	engine *loadedEngine
	weight uint32
	tests  draftSuite // its test run, made on first use
}

// frozenFile is a file of a version, immutable once read.
type frozenFile struct {
	data []byte
	blob string
}

// caches holds everything the backend keeps in memory, each bounded in
// bytes (estimated) or in entries, all within one configurable budget:
//
//   - drafts: compiled drafts by tree id; when an agent's draft moves on,
//     its previous tree is dropped at once;
//   - engines: responders by artifact digest, so every version (and
//     draft) with the same artifact shares one;
//   - files: immutable bytes read from versions (artifacts by digest,
//     other files by agent, version and path), so a repeated read, or a
//     conditional one, does no git work and takes no lock;
//   - versions: version rows (immutable), and draft revision → tree ids.
//
// Entries never go stale (trees, digests and tags never change); only the
// budget evicts them.
type caches struct {
	drafts   *otter.Cache[string, *compiledDraft]
	engines  *otter.Cache[string, *loadedEngine]
	files    *otter.Cache[string, frozenFile]
	versions *otter.Cache[string, store.Version]
	// diffs are diffs between versions (immutable), by agent and sides.
	diffs *otter.Cache[string, repo.Diff]
	// views are typed views of draft files by kind, slug and blob id.
	views *otter.Cache[string, json.RawMessage]
	trees *otter.Cache[string, string]

	mu     sync.Mutex
	latest map[string]string // agent → tree of its newest compiled draft

	compiler *compile.Compiler
}

// DefaultCacheBytes is the default memory budget of the backend's caches,
// fit for a 1 GiB container beside the repository object cache.
const DefaultCacheBytes = 256 << 20

func newCaches(budget int64, compiler *compile.Compiler, reg *prometheus.Registry) *caches {
	if budget <= 0 {
		budget = DefaultCacheBytes
	}
	counter := func(name string) *stats.Counter {
		c := stats.NewCounter()
		registerCacheMetrics(reg, name, c)
		return c
	}
	if compiler == nil {
		compiler = compile.NewCompiler(compile.NewCache(budget / 8))
	}
	c := &caches{latest: map[string]string{}, compiler: compiler}
	c.drafts = otter.Must(&otter.Options[string, *compiledDraft]{
		MaximumWeight: uint64(budget * 4 / 10),
		Weigher:       func(_ string, d *compiledDraft) uint32 { return d.weight },
		StatsRecorder: counter("drafts"),
	})
	c.engines = otter.Must(&otter.Options[string, *loadedEngine]{
		MaximumWeight: uint64(budget * 4 / 10),
		Weigher:       func(_ string, e *loadedEngine) uint32 { return e.weight },
		StatsRecorder: counter("engines"),
	})
	c.files = otter.Must(&otter.Options[string, frozenFile]{
		MaximumWeight: uint64(budget * 15 / 100),
		Weigher:       func(k string, f frozenFile) uint32 { return uint32(min(len(f.data)+len(k)+len(f.blob)+64, 1<<31)) },
		StatsRecorder: counter("files"),
	})
	c.diffs = otter.Must(&otter.Options[string, repo.Diff]{
		MaximumWeight: uint64(max(budget/10, 1<<20)),
		Weigher:       func(k string, d repo.Diff) uint32 { return uint32(min(diffWeight(d)+len(k), 1<<31)) },
		StatsRecorder: counter("diffs"),
	})
	c.views = otter.Must(&otter.Options[string, json.RawMessage]{
		MaximumWeight: uint64(max(budget/20, 1<<20)),
		Weigher:       func(k string, v json.RawMessage) uint32 { return uint32(min(len(k)+len(v)+64, 1<<31)) },
		StatsRecorder: counter("views"),
	})
	c.versions = otter.Must(&otter.Options[string, store.Version]{MaximumSize: 100_000, StatsRecorder: counter("versions")})
	c.trees = otter.Must(&otter.Options[string, string]{MaximumSize: 100_000})
	registerWeightGauges(reg, c)
	return c
}

// loadedEngine is a responder with its estimated size: the artifact's
// size times a factor for the decoded structures and the retrieval index.
type loadedEngine struct {
	engine *responder.Engine
	weight uint32
}

func newEngine(prev *responder.Engine, a *compile.Artifact, artifactBytes int) (*loadedEngine, error) {
	e, err := responder.NewFrom(prev, a)
	if err != nil {
		return nil, err
	}
	return &loadedEngine{engine: e, weight: uint32(min(artifactBytes*4+64<<10, 1<<31))}, nil
}

func registerCacheMetrics(reg *prometheus.Registry, name string, c *stats.Counter) {
	_ = reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "flowyte_cache_hits_total", Help: "Backend cache hits by cache.", ConstLabels: prometheus.Labels{"cache": name},
	}, func() float64 { return float64(c.Snapshot().Hits) }))
	_ = reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "flowyte_cache_misses_total", Help: "Backend cache misses by cache.", ConstLabels: prometheus.Labels{"cache": name},
	}, func() float64 { return float64(c.Snapshot().Misses) }))
	_ = reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "flowyte_cache_evictions_total", Help: "Backend cache evictions by cache.", ConstLabels: prometheus.Labels{"cache": name},
	}, func() float64 { return float64(c.Snapshot().Evictions) }))
}

func registerWeightGauges(reg *prometheus.Registry, c *caches) {
	for name, f := range map[string]func() uint64{
		"drafts": c.drafts.WeightedSize, "engines": c.engines.WeightedSize, "files": c.files.WeightedSize,
	} {
		_ = reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flowyte_cache_bytes", Help: "Estimated bytes held by each backend cache.", ConstLabels: prometheus.Labels{"cache": name},
		}, func() float64 { return float64(f()) }))
	}
}

// draft compiles files (the draft tree with id tree of agentID) once,
// and drops the agent's previous draft tree.
func (c *caches) draft(ctx context.Context, agentID, tree string, files map[string][]byte) *compiledDraft {
	cd, _ := c.draftJSON(ctx, agentID, tree, files)
	return cd
}

// draftJSON is draft that also returns the artifact's JSON when this call
// compiled the tree (nil when the compile was cached, whose JSON is not
// kept): a publish writes it rather than compiling the tree again.
func (c *caches) draftJSON(ctx context.Context, agentID, tree string, files map[string][]byte) (*compiledDraft, []byte) {
	var js []byte
	cd, _ := c.drafts.Get(ctx, tree, otter.LoaderFunc[string, *compiledDraft](func(context.Context, string) (*compiledDraft, error) {
		cd, j := c.compileDraft(files, c.latestEngine(agentID))
		js = j
		return cd, nil
	}))
	c.noteLatest(agentID, tree)
	if cd.engine != nil {
		c.engines.SetIfAbsent(cd.result.Digest, cd.engine)
	}
	return cd, js
}

// latestEngine returns the responder of agentID's newest compiled draft,
// if it is still cached: a new draft's responder is built from it, so only
// what changed is indexed again.
func (c *caches) latestEngine(agentID string) *responder.Engine {
	c.mu.Lock()
	tree := c.latest[agentID]
	c.mu.Unlock()
	if tree == "" {
		return nil
	}
	if cd, ok := c.drafts.GetIfPresent(tree); ok && cd.engine != nil {
		return cd.engine.engine
	}
	return nil
}

// compileDraft compiles through the shared compiler, whose per-file cache
// makes a one-file edit re-parse one file; the responder reuses prev's
// knowledge index (see [responder.NewFrom]), so it indexes only the
// articles that changed.
//
// The artifact's JSON is returned, not kept: a draft's bytes would
// otherwise sit in memory twice (its files and its artifact).
func (c *caches) compileDraft(files map[string][]byte, prev *responder.Engine) (*compiledDraft, []byte) {
	size := 0
	for p, data := range files {
		size += len(p) + len(data)
	}
	res := c.compiler.Compile(files)
	cd := &compiledDraft{result: res}
	if res.OK() && res.Artifact != nil {
		if eng, err := newEngine(prev, res.Artifact, len(res.JSON)); err == nil {
			cd.engine = eng
		} else {
			cd.result.Errors = append(slices.Clone(cd.result.Errors), compile.Diagnostic{Code: "responder", Message: err.Error()})
		}
	}
	js := res.JSON
	cd.result.JSON = nil
	for _, t := range res.Tests {
		size += len(t.Turns) * 2048 // the suite's run, kept once made (about 2 KiB a turn)
	}
	cd.weight = uint32(min(size*2+64<<10, 1<<31))
	return cd, js
}

// currentDraft compiles the agent's current draft: the head is read first
// and the files only when that tree was never compiled, so a session or
// a report on an unchanged draft reads no file.
func (b *Backend) currentDraft(ctx context.Context, agentID string) (rev, tree string, cd *compiledDraft, err error) {
	rev, tree, err = b.repos.DraftHead(ctx, agentID)
	if err != nil {
		return "", "", nil, err
	}
	b.cache.rememberRevision(agentID, rev, tree)
	if cd, ok := b.cache.drafts.GetIfPresent(tree); ok {
		b.cache.noteLatest(agentID, tree)
		return rev, tree, cd, nil
	}
	// The draft may move in between: compile (and report) what is read.
	rev, tree, files, err := b.repos.DraftFiles(ctx, agentID)
	if err != nil {
		return "", "", nil, err
	}
	b.cache.rememberRevision(agentID, rev, tree)
	return rev, tree, b.cache.draft(ctx, agentID, tree, files), nil
}

// noteLatest records tree as agentID's newest draft, dropping the one
// before.
func (c *caches) noteLatest(agentID, tree string) {
	c.mu.Lock()
	prev := c.latest[agentID]
	c.latest[agentID] = tree
	c.mu.Unlock()
	if prev != "" && prev != tree {
		c.drafts.Invalidate(prev)
	}
}

// rememberRevision records which tree a draft revision has.
func (c *caches) rememberRevision(agentID, rev, tree string) {
	c.trees.Set(agentID+"@"+rev, tree)
}

// draftAt returns the compiled draft of one draft revision: from memory
// when the revision's tree was compiled before, else read from git once.
func (c *caches) draftAt(ctx context.Context, repos *repo.Store, agentID, rev string) (*compiledDraft, error) {
	if tree, ok := c.trees.GetIfPresent(agentID + "@" + rev); ok {
		if cd, ok := c.drafts.GetIfPresent(tree); ok {
			return cd, nil
		}
	}
	tree, files, err := repos.FilesAt(ctx, agentID, rev)
	if err != nil {
		return nil, err
	}
	c.rememberRevision(agentID, rev, tree)
	cd, _ := c.drafts.Get(ctx, tree, otter.LoaderFunc[string, *compiledDraft](func(context.Context, string) (*compiledDraft, error) {
		cd, _ := c.compileDraft(files, c.latestEngine(agentID))
		return cd, nil
	}))
	return cd, nil
}

// versionRow returns version n of agentID: rows never change once
// written, so they are kept.
func (b *Backend) versionRow(ctx context.Context, agentID string, n int) (store.Version, error) {
	key := agentID + "@" + strconv.Itoa(n)
	if v, ok := b.cache.versions.GetIfPresent(key); ok {
		return v, nil
	}
	v, err := b.store.Version(ctx, agentID, n)
	if err != nil {
		return store.Version{}, err
	}
	b.cache.versions.Set(key, v)
	return v, nil
}

// artifact returns the bytes of a version's compiled/agent.json, by
// digest, reading git once.
func (b *Backend) artifact(ctx context.Context, v store.Version) ([]byte, error) {
	f, err := b.cache.files.Get(ctx, v.Digest, otter.LoaderFunc[string, frozenFile](func(ctx context.Context, _ string) (frozenFile, error) {
		data, blob, err := b.repos.ReadFile(ctx, v.AgentID, repo.Rev{Kind: repo.RevVersion, Number: v.Number}, compile.ArtifactPath)
		return frozenFile{data: data, blob: blob}, err
	}))
	return f.data, err
}

// frozen returns one file of a version, reading git once.
func (b *Backend) frozen(ctx context.Context, v store.Version, path string) (frozenFile, error) {
	if path == compile.ArtifactPath {
		data, err := b.artifact(ctx, v)
		return frozenFile{data: data, blob: v.Digest}, err
	}
	key := v.AgentID + "@" + strconv.Itoa(v.Number) + ":" + path
	return b.cache.files.Get(ctx, key, otter.LoaderFunc[string, frozenFile](func(ctx context.Context, _ string) (frozenFile, error) {
		data, blob, err := b.repos.ReadFile(ctx, v.AgentID, repo.Rev{Kind: repo.RevVersion, Number: v.Number}, path)
		return frozenFile{data: data, blob: blob}, err
	}))
}

// versionEngine returns the responder of a published version, shared by
// every version with the same artifact.
func (b *Backend) versionEngine(ctx context.Context, agentID string, n int) (*responder.Engine, error) {
	v, err := b.versionRow(ctx, agentID, n)
	if err != nil {
		return nil, err
	}
	le, err := b.cache.engines.Get(ctx, v.Digest, otter.LoaderFunc[string, *loadedEngine](func(ctx context.Context, _ string) (*loadedEngine, error) {
		data, err := b.artifact(ctx, v)
		if err != nil {
			return nil, err
		}
		var art compile.Artifact
		if err := json.Unmarshal(data, &art); err != nil {
			return nil, fmt.Errorf("decode v%d artifact: %w", n, err)
		}
		e, err := newEngine(nil, &art, len(data))
		if err != nil {
			return nil, fmt.Errorf("load v%d: %w", n, err)
		}
		return e, nil
	}))
	if err != nil {
		return nil, err
	}
	return le.engine, nil
}

// forget drops a deleted agent's draft entry early; the rest is keyed by
// content and ages out.
func (c *caches) forget(agentID string) {
	c.mu.Lock()
	prev := c.latest[agentID]
	delete(c.latest, agentID)
	c.mu.Unlock()
	if prev != "" {
		c.drafts.Invalidate(prev)
	}
}

// diffWeight estimates a diff's memory: its patch text twice (whole and
// per file) and a little per file.
func diffWeight(d repo.Diff) int {
	n := 2*len(d.Patch) + 256
	for _, f := range d.Files {
		n += len(f.Path) + len(f.OldPath) + 128
	}
	return n
}
