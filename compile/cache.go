package compile

import (
	"container/list"
	"hash/maphash"
	"sync"
)

// Cache keeps the per-file results of a Compiler (the parsed view, its
// diagnostics and its encoded part of the artifact), keyed by the file's
// path and content, so that compiling a draft after a one-file edit parses
// one file. It holds at most a configured number of bytes, dropping the
// least recently used files first. A Cache is safe for concurrent use; one
// Cache may serve every agent of a process.
type Cache struct {
	max   int64
	seeds [2]maphash.Seed

	mu      sync.Mutex
	size    int64
	entries map[cacheKey]*list.Element // of *cacheEntry
	lru     *list.List                 // front: most recently used
	hits    uint64
	misses  uint64
}

// CacheStats describes a Cache at one moment.
type CacheStats struct {
	// Entries is the number of files held.
	Entries int
	// Bytes is the estimated memory the entries hold.
	Bytes int64
	// MaxBytes is the bound given to NewCache.
	MaxBytes int64
	// Hits and Misses count look-ups since the Cache was made.
	Hits, Misses uint64
}

// cacheKey names one file content at one path. The content is identified
// by its length and two 64-bit hashes with secret per-Cache seeds, so
// telling two contents apart does not depend on their authors.
type cacheKey struct {
	path   string
	length int
	h1, h2 uint64
}

type cacheEntry struct {
	key  cacheKey
	file *fileResult
	size int64
}

// NewCache returns a cache holding at most maxBytes of estimated memory
// (about three times the size of the files it holds). A maxBytes of 0 or
// less makes a cache that keeps nothing.
func NewCache(maxBytes int64) *Cache {
	return &Cache{
		max:     maxBytes,
		seeds:   [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		entries: map[cacheKey]*list.Element{},
		lru:     list.New(),
	}
}

// Stats returns the cache's counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Entries: len(c.entries), Bytes: c.size, MaxBytes: c.max, Hits: c.hits, Misses: c.misses}
}

func (c *Cache) key(path string, data []byte) cacheKey {
	return cacheKey{
		path:   path,
		length: len(data),
		h1:     maphash.Bytes(c.seeds[0], data),
		h2:     maphash.Bytes(c.seeds[1], data),
	}
}

func (c *Cache) get(k cacheKey) *fileResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if !ok {
		c.misses++
		return nil
	}
	c.hits++
	c.lru.MoveToFront(el)
	return el.Value.(*cacheEntry).file
}

func (c *Cache) put(k cacheKey, f *fileResult) {
	size := f.size()
	c.mu.Lock()
	defer c.mu.Unlock()
	if size > c.max {
		return
	}
	if el, ok := c.entries[k]; ok {
		c.lru.MoveToFront(el)
		return
	}
	c.entries[k] = c.lru.PushFront(&cacheEntry{key: k, file: f, size: size})
	c.size += size
	for c.size > c.max {
		el := c.lru.Back()
		e := el.Value.(*cacheEntry)
		c.lru.Remove(el)
		delete(c.entries, e.key)
		c.size -= e.size
	}
}
