package useragent

import (
	"hash/maphash"
	"sync"
)

// The cache holds at most shards*shardCap = 65,536 results, about 20 MB at
// some 300 bytes per entry with its key. A full shard is simply
// emptied: the User-Agents that matter come back within seconds, and a
// reset needs no bookkeeping on the hit path, unlike an LRU.
const (
	shards   = 32
	shardCap = 2048
	// maxCached keeps junk headers out of the cache; real User-Agents are
	// rarely longer than 300 bytes.
	maxCached = 512
)

type shard struct {
	mu sync.RWMutex
	m  map[string]Info
}

type uaCache struct {
	seed   maphash.Seed
	shards [shards]shard
}

var cache = newCache()

func newCache() *uaCache {
	c := &uaCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[string]Info)
	}
	return c
}

func (c *uaCache) shard(ua string) *shard {
	return &c.shards[maphash.String(c.seed, ua)%shards]
}

func (c *uaCache) get(ua string) (Info, bool) {
	s := c.shard(ua)
	s.mu.RLock()
	info, ok := s.m[ua]
	s.mu.RUnlock()
	return info, ok
}

func (c *uaCache) getBytes(ua []byte) (Info, bool) {
	s := &c.shards[maphash.Bytes(c.seed, ua)%shards]
	s.mu.RLock()
	info, ok := s.m[string(ua)] // a lookup, not a conversion: no allocation
	s.mu.RUnlock()
	return info, ok
}

// put stores info under ua. The caller must pass an owned ua (see Classify):
// both the key and info's strings outlive the request.
func (c *uaCache) put(ua string, info Info) {
	if len(ua) > maxCached {
		return
	}
	s := c.shard(ua)
	s.mu.Lock()
	if len(s.m) >= shardCap {
		clear(s.m)
	}
	s.m[ua] = info
	s.mu.Unlock()
}

// reset empties the cache; benchmarks use it to measure misses.
func (c *uaCache) reset() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.mu.Unlock()
	}
}
