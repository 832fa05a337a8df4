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
// compiled cleanly. The artifact's bytes are not kept, nor made unless
// something needs them (a publish, or the digest for a report).
type compiledDraft struct {
	result compile.Result // without JSON and Digest
	engine *loadedEngine
	weight uint32
	tests  draftSuite // its test run, made on first use

	mu     sync.Mutex
	digest string // the artifact's digest, once known
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

// draftSource reads a draft tree to compile it: the changes since an
// earlier tree of the same agent (see [repo.Store.TreeChanges]), or all
// its files. changes may be nil.
type draftSource struct {
	changes func(from string) (changed map[string][]byte, removed []string, err error)
	files   func() (map[string][]byte, error)
}

// treeSource reads tree of agentID through the repository's read path.
// The reads are not cancelled with ctx: a compile is shared by every
// request that wants the tree (a publish may be waiting for it), so one
// client hanging up must not fail it.
func (b *Backend) treeSource(ctx context.Context, agentID, tree string) draftSource {
	ctx = context.WithoutCancel(ctx)
	return draftSource{
		changes: func(from string) (map[string][]byte, []string, error) {
			return b.repos.TreeChanges(ctx, agentID, from, tree)
		},
		files: func() (map[string][]byte, error) {
			all, _, err := b.repos.TreeChanges(ctx, agentID, "", tree)
			return all, err
		},
	}
}

// compiled returns the compiled draft tree of agentID, compiling it once;
// latest says it is the agent's newest draft (then the agent's previous
// draft tree is dropped). A tree is compiled from the agent's newest
// compiled draft when it is still cached, through the changes since its
// tree: only changed files are read and parsed, and the responder is
// built from that draft's (see [responder.NewFrom]), so it indexes only
// the articles that changed. Otherwise every file is read.
func (c *caches) compiled(ctx context.Context, agentID, tree string, src draftSource, latest bool) (*compiledDraft, error) {
	cd, err := c.drafts.Get(ctx, tree, otter.LoaderFunc[string, *compiledDraft](func(context.Context, string) (*compiledDraft, error) {
		prevTree, prev := c.latestDraft(agentID)
		var prevEngine *responder.Engine
		if prev != nil && prev.engine != nil {
			prevEngine = prev.engine.engine
		}
		if prev != nil && src.changes != nil {
			if changed, removed, err := src.changes(prevTree); err == nil {
				if res, ok := c.compiler.CompileEdit(prev.result, changed, removed); ok {
					return newCompiledDraft(res, prevEngine), nil
				}
			}
		}
		files, err := src.files()
		if err != nil {
			return nil, err
		}
		return newCompiledDraft(c.compiler.CompileDraft(files), prevEngine), nil
	}))
	if err != nil {
		return nil, err
	}
	if latest {
		c.noteLatest(agentID, tree)
	}
	return cd, nil
}

// latestDraft returns agentID's newest compiled draft and its tree, if it
// is still cached: a new draft is compiled from it, so only what changed
// is parsed and indexed again.
func (c *caches) latestDraft(agentID string) (string, *compiledDraft) {
	c.mu.Lock()
	tree := c.latest[agentID]
	c.mu.Unlock()
	if tree == "" {
		return "", nil
	}
	if cd, ok := c.drafts.GetIfPresent(tree); ok {
		return tree, cd
	}
	return "", nil
}

// newCompiledDraft wraps a compile result with its responder, built from
// prev's (nil for none).
func newCompiledDraft(res compile.Result, prev *responder.Engine) *compiledDraft {
	cd := &compiledDraft{result: res}
	size := res.SourceBytes()
	if res.OK() && res.Artifact != nil {
		if eng, err := newEngine(prev, res.Artifact, size); err == nil {
			cd.engine = eng
		} else {
			cd.result.Errors = append(slices.Clone(cd.result.Errors), compile.Diagnostic{Code: "responder", Message: err.Error()})
		}
	}
	for _, t := range res.Tests {
		size += len(t.Turns) * 2048 // the suite's run, kept once made (about 2 KiB a turn)
	}
	// The files' views and their parts of the artifact, shared with the
	// compile cache while it keeps them.
	cd.weight = uint32(min(size*3+64<<10, 1<<31))
	return cd
}

// artifactDigest returns the digest of cd's artifact ("" when it does not
// compile), encoding and hashing it the first time (the bytes are not
// kept), and shares cd's responder as the engine of that digest.
func (c *caches) artifactDigest(cd *compiledDraft) string {
	cd.mu.Lock()
	defer cd.mu.Unlock()
	if cd.digest == "" && cd.result.OK() {
		cd.digest = compile.Digest(cd.result.Encode())
	}
	if cd.digest != "" && cd.engine != nil {
		c.engines.SetIfAbsent(cd.digest, cd.engine)
	}
	return cd.digest
}

// knownDigest returns the digest of cd's artifact if it was computed.
func (cd *compiledDraft) knownDigest() string {
	cd.mu.Lock()
	defer cd.mu.Unlock()
	return cd.digest
}

// published records the digest a publish of cd computed, and shares cd's
// responder as that digest's engine (the version's live sessions use it).
func (c *caches) published(cd *compiledDraft, digest string) {
	cd.mu.Lock()
	if cd.digest == "" {
		cd.digest = digest
	}
	cd.mu.Unlock()
	if cd.engine != nil {
		c.engines.SetIfAbsent(digest, cd.engine)
	}
}

// currentDraft compiles the agent's current draft: the head is read first
// and the files only when that tree was never compiled (then only the
// files changed since the agent's newest compiled draft), so a session or
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
	cd, err = b.cache.compiled(ctx, agentID, tree, b.treeSource(ctx, agentID, tree), true)
	if err != nil {
		return "", "", nil, err
	}
	return rev, tree, cd, nil
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
	return c.compiled(ctx, agentID, tree, draftSource{files: func() (map[string][]byte, error) { return files, nil }}, false)
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
		// A format-2 artifact names its knowledge files by blob id: the
		// bodies are read from the version's own knowledge/ directory.
		size := len(data)
		art, err := compile.LoadArtifact(data, func(ids []string) (map[string][]byte, error) {
			blobs, err := b.repos.ReadDirBlobs(ctx, v.AgentID, repo.Rev{Kind: repo.RevVersion, Number: v.Number}, string(compile.KindKnowledge), ids)
			for _, b := range blobs {
				size += len(b)
			}
			return blobs, err
		})
		if err != nil {
			return nil, fmt.Errorf("load v%d artifact: %w", n, err)
		}
		e, err := newEngine(nil, art, size)
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
