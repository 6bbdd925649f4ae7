package query

import (
	"log"
	"net/netip"
	"time"

	"turf/internal/clientip"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/valyala/fasthttp"
	"golang.org/x/time/rate"
)

// Config configures the query API.
type Config struct {
	// Sites holds per-site settings (time zone, goals, currency). A site
	// not listed here is served with the defaults (UTC).
	Sites map[string]SiteConfig
	// RateLimit is the number of queries per second one key may make on
	// average, Burst how many it may make at once. Defaults: 10 and 30.
	RateLimit float64
	Burst     int
	// KeyCacheTTL is how long a verified key is trusted without asking
	// ClickHouse again, which bounds how late a revocation takes effect.
	// Default: 10s.
	KeyCacheTTL time.Duration
	// KeyLookupRate is how many keys per second, over all clients, may be
	// looked up in ClickHouse because they are not in the cache (made-up
	// keys are never in it), KeyLookupBurst how many at once; past that an
	// uncached key gets 429. Defaults: 20 and 40. One client network may
	// spend a quarter of both (keyCache).
	KeyLookupRate  float64
	KeyLookupBurst int
	// TrustedProxies are the peers whose X-Forwarded-For names the client
	// whose network an uncached key's lookup is charged to.
	TrustedProxies []netip.Prefix
	// RollupCheckTTL is how long the check of which days the rollups
	// answer is reused (see markerCache): an event arriving late for a
	// finished day shows up at most this much later. Default 15s; negative:
	// check on every query.
	RollupCheckTTL time.Duration
	// QueryTimeout bounds one request, waiting for a slot included.
	// Default: 30s.
	QueryTimeout time.Duration
	// Limits are the cost limits of every query and the slots of the
	// lanes (keys, staff, share links; limits.go), for the API and, through
	// Gate(), the dashboard.
	Limits Limits
	// Now is the clock; tests fix it.
	Now func() time.Time
	// Logf reports server-side errors; default log.Printf.
	Logf func(format string, args ...any)
	// Debugf, when set, logs every statement's route (plan.Route).
	Debugf func(format string, args ...any)
}

// API serves /api/v2/query and /api/v1/stats/realtime/visitors to callers
// with a Bearer key, through the one pipeline (pipeline.go).
type API struct {
	engine *Engine
	pipe   *Pipeline
	gate   *Gate
}

// New checks cfg and returns the API over the events in database db.
func New(cfg Config, conn driver.Conn, db string) (*API, error) {
	if cfg.RateLimit <= 0 {
		cfg.RateLimit = 10
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 30
	}
	if cfg.KeyCacheTTL <= 0 {
		cfg.KeyCacheTTL = 10 * time.Second
	}
	if cfg.KeyLookupRate <= 0 {
		cfg.KeyLookupRate = 20
	}
	if cfg.KeyLookupBurst <= 0 {
		cfg.KeyLookupBurst = 40
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = 30 * time.Second
	}
	if cfg.RollupCheckTTL == 0 {
		cfg.RollupCheckTTL = 15 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logf == nil {
		cfg.Logf = log.Printf
	}
	e, err := NewEngine(conn, db, cfg.Sites, cfg.Now)
	if err != nil {
		return nil, err
	}
	e.markers = newMarkerCache(cfg.RollupCheckTTL)
	e.debugf = cfg.Debugf
	keys := &keyCache{conn: conn, db: db, ttl: cfg.KeyCacheTTL, now: cfg.Now, keys: map[string]cachedKey{},
		lookups:  rate.NewLimiter(rate.Limit(cfg.KeyLookupRate), cfg.KeyLookupBurst),
		networks: newNetworkLimiter(cfg.KeyLookupRate/4, cfg.KeyLookupBurst/4),
		ips:      clientip.NewResolver(cfg.TrustedProxies)}
	gate := NewGate(cfg.Limits)
	pc := PipelineConfig{RateLimit: cfg.RateLimit, Burst: cfg.Burst, QueryTimeout: cfg.QueryTimeout, Gate: gate, Now: cfg.Now, Logf: cfg.Logf}
	return &API{engine: e, pipe: NewPipeline(pc, e, keys), gate: gate}, nil
}

// Gate returns the API's lanes and cost limits, for the dashboard's
// pipeline (dashboard.Config.Gate): one set of slots for the process.
func (a *API) Gate() *Gate { return a.gate }

// Engine returns the query engine, for callers that run queries in-process.
func (a *API) Engine() *Engine { return a.engine }

// Handler serves the API's paths and reports false for any other path, so
// it can share a server with the collector.
func (a *API) Handler(ctx *fasthttp.RequestCtx) bool { return a.pipe.Serve(ctx) }
