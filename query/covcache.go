package query

import (
	"context"
	"sync"
	"time"

	"turf/query/rollup"
)

// markerCache remembers for a short while which days of a range the rollups
// answer. Checking that counts the raw events of every day in the range,
// which costs about as much as a dashboard query itself, and a dashboard
// makes a dozen queries over the same two ranges at once: they share one
// check. The price is that an event arriving late for a finished day, or
// the first event of a day that had none, shows up in the figures at most
// TTL later. TTL must stay well below
// supersededAge, so that a cached build's rows are never deleted while it is
// being read.
type markerCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[markerKey]*markerEntry
}

type markerKey struct {
	site     string
	from, to int64
}

type markerEntry struct {
	done  chan struct{} // closed when built and err are set
	built map[time.Time]rollup.Built
	err   error
	at    time.Time
}

func newMarkerCache(ttl time.Duration) *markerCache {
	return &markerCache{ttl: ttl, m: map[markerKey]*markerEntry{}}
}

// get returns the valid builds of site's days in [from, to), from the cache
// or from load; concurrent callers with the same key wait for one load.
// Wall-clock time, not the engine's clock: tests fix that one.
func (c *markerCache) get(ctx context.Context, site string, from, to time.Time, load func() (map[time.Time]rollup.Built, error)) (map[time.Time]rollup.Built, error) {
	if c == nil || c.ttl <= 0 {
		return load()
	}
	k := markerKey{site, from.Unix(), to.Unix()}
	c.mu.Lock()
	e, ok := c.m[k]
	if ok {
		select {
		case <-e.done:
			if time.Since(e.at) > c.ttl {
				ok = false
			}
		default: // being loaded: wait for it
		}
	}
	if !ok {
		c.expire()
		e = &markerEntry{done: make(chan struct{})}
		c.m[k] = e
		c.mu.Unlock()
		e.built, e.err = load()
		e.at = time.Now()
		close(e.done)
		if e.err != nil {
			c.mu.Lock()
			if c.m[k] == e {
				delete(c.m, k)
			}
			c.mu.Unlock()
		}
		return e.built, e.err
	}
	c.mu.Unlock()
	select {
	case <-e.done:
		return e.built, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// expire drops finished entries past their TTL, so the map holds only the
// ranges asked about lately. Called with mu held.
func (c *markerCache) expire() {
	for k, e := range c.m {
		select {
		case <-e.done:
			if time.Since(e.at) > c.ttl {
				delete(c.m, k)
			}
		default:
		}
	}
}
