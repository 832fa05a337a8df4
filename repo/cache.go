package repo

import (
	"container/list"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// objectCache is an LRU of decoded blobs and trees shared by all open
// repositories and bounded in bytes. Objects are content addressed, so one
// hash means the same bytes in every repository; a hash is only looked up
// after it was read from a tree or ref of the repository being read.
// Cached values are never modified; callers that hand bytes out copy them.
type objectCache struct {
	mu   sync.Mutex
	max  int64
	size int64
	ll   *list.List // of *cacheItem, most recent first
	m    map[plumbing.Hash]*list.Element
	// stats are the files and bytes below trees, by tree id, for the draft
	// limits, in two generations: when stats reaches maxStats it becomes
	// oldStats (the previous one is dropped), and a hit in oldStats moves
	// back to stats, so what is in use survives.
	stats, oldStats map[plumbing.Hash]treeStat
}

// maxStats bounds each generation of objectCache.stats (some 60 bytes an
// entry).
const maxStats = 1 << 15

type cacheItem struct {
	hash plumbing.Hash
	blob []byte
	tree []object.TreeEntry
	size int64
	// isTree tells a tree (possibly empty) from a blob.
	isTree bool
}

func newObjectCache(max int64) *objectCache {
	return &objectCache{max: max, ll: list.New(), m: map[plumbing.Hash]*list.Element{}, stats: map[plumbing.Hash]treeStat{}}
}

func (c *objectCache) get(h plumbing.Hash) (*cacheItem, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[h]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(e)
	return e.Value.(*cacheItem), true
}

func (c *objectCache) put(it *cacheItem) {
	if it.size > c.max/8 {
		return // large objects would evict too much
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[it.hash]; ok {
		return
	}
	c.m[it.hash] = c.ll.PushFront(it)
	c.size += it.size
	for c.size > c.max {
		old := c.ll.Remove(c.ll.Back()).(*cacheItem)
		delete(c.m, old.hash)
		c.size -= old.size
	}
}

func (c *objectCache) putBlob(h plumbing.Hash, data []byte) {
	c.put(&cacheItem{hash: h, blob: data, size: int64(len(data)) + 64})
}

func (c *objectCache) putTree(h plumbing.Hash, entries []object.TreeEntry) {
	size := int64(64)
	for _, e := range entries {
		size += int64(len(e.Name)) + 48
	}
	c.put(&cacheItem{hash: h, tree: entries, size: size, isTree: true})
}

func (c *objectCache) stat(t plumbing.Hash) (treeStat, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stats[t]; ok {
		return st, true
	}
	st, ok := c.oldStats[t]
	if ok {
		c.setStat(t, st)
	}
	return st, ok
}

func (c *objectCache) putStat(t plumbing.Hash, st treeStat) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setStat(t, st)
}

// setStat records st under c.mu.
func (c *objectCache) setStat(t plumbing.Hash, st treeStat) {
	if len(c.stats) >= maxStats {
		c.oldStats, c.stats = c.stats, make(map[plumbing.Hash]treeStat, maxStats)
	}
	c.stats[t] = st
}
