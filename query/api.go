package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"strconv"
	"strings"
	"sync"
	"time"

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
	// uncached key gets 429. Defaults: 20 and 40.
	KeyLookupRate  float64
	KeyLookupBurst int
	// RollupCheckTTL is how long the check of which days the rollups
	// answer is reused (see markerCache): an event arriving late for a
	// finished day shows up at most this much later. Default 15s; negative:
	// check on every query.
	RollupCheckTTL time.Duration
	// QueryTimeout bounds one request. Default: 30s.
	QueryTimeout time.Duration
	// Now is the clock; tests fix it.
	Now func() time.Time
	// Logf reports server-side errors; default log.Printf.
	Logf func(format string, args ...any)
}

// API serves /api/v2/query and /api/v1/stats/realtime/visitors.
type API struct {
	cfg    Config
	engine *Engine
	keys   *keyCache

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
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
	return &API{
		cfg:    cfg,
		engine: e,
		keys: &keyCache{conn: conn, db: db, ttl: cfg.KeyCacheTTL, now: cfg.Now, keys: map[string]cachedKey{},
			lookups: rate.NewLimiter(rate.Limit(cfg.KeyLookupRate), cfg.KeyLookupBurst)},
		limiters: map[string]*rate.Limiter{},
	}, nil
}

// Engine returns the query engine, for callers that run queries in-process.
func (a *API) Engine() *Engine { return a.engine }

type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

var (
	errRateLimited   = &httpError{fasthttp.StatusTooManyRequests, "too many requests for this API key; slow down"}
	errLookupLimited = &httpError{fasthttp.StatusTooManyRequests, "too many requests with unknown API keys; slow down"}
)

// Handler serves the API's paths and reports false for any other path, so
// it can share a server with the collector.
func (a *API) Handler(ctx *fasthttp.RequestCtx) bool {
	var err error
	switch string(ctx.Path()) {
	case "/api/v2/query":
		if !ctx.IsPost() {
			err = &httpError{fasthttp.StatusMethodNotAllowed, "use POST"}
			break
		}
		err = a.query(ctx)
	case "/api/v1/stats/realtime/visitors":
		if !ctx.IsGet() {
			err = &httpError{fasthttp.StatusMethodNotAllowed, "use GET"}
			break
		}
		err = a.realtime(ctx)
	default:
		return false
	}
	if err != nil {
		a.writeError(ctx, err)
	}
	return true
}

// writeError is the one place errors become status codes.
func (a *API) writeError(ctx *fasthttp.RequestCtx, err error) {
	status := fasthttp.StatusInternalServerError
	msg := "internal error"
	var br *BadRequest
	var he *httpError
	switch {
	case errors.As(err, &br):
		status, msg = fasthttp.StatusBadRequest, br.Msg
	case errors.As(err, &he):
		status, msg = he.status, he.msg
	case errors.Is(err, errNoKey), errors.Is(err, errBadKey):
		status, msg = fasthttp.StatusUnauthorized, err.Error()
	case errors.Is(err, errWrongSite):
		status, msg = fasthttp.StatusForbidden, err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		status, msg = fasthttp.StatusServiceUnavailable, "the query took too long"
		a.cfg.Logf("query: %v", err)
	default:
		a.cfg.Logf("query: %v", err)
	}
	if status == fasthttp.StatusTooManyRequests {
		ctx.Response.Header.Set("Retry-After", "1")
	}
	if status == fasthttp.StatusUnauthorized {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="turf"`)
	}
	body, _ := json.Marshal(map[string]string{"error": msg})
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

func bearer(ctx *fasthttp.RequestCtx) string {
	h := string(ctx.Request.Header.Peek("Authorization"))
	if k, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(k)
	}
	return ""
}

// authorize checks the key for the site and its rate limit.
func (a *API) authorize(c context.Context, ctx *fasthttp.RequestCtx, site string) error {
	id, err := a.keys.check(c, bearer(ctx), site)
	if err != nil {
		return err
	}
	a.mu.Lock()
	l, ok := a.limiters[id]
	if !ok {
		l = rate.NewLimiter(rate.Limit(a.cfg.RateLimit), a.cfg.Burst)
		a.limiters[id] = l
	}
	a.mu.Unlock()
	if !l.AllowN(a.cfg.Now(), 1) {
		return errRateLimited
	}
	return nil
}

func (a *API) query(ctx *fasthttp.RequestCtx) error {
	c, cancel := context.WithTimeout(context.Background(), a.cfg.QueryTimeout)
	defer cancel()
	// Authenticate before parsing so that an anonymous caller learns
	// nothing from validation messages; the site is checked after.
	if _, err := a.keys.check(c, bearer(ctx), ""); err != nil {
		return err
	}
	q, err := ParseRequest(ctx.PostBody())
	if err != nil {
		return err
	}
	if err := a.authorize(c, ctx, q.Site); err != nil {
		return err
	}
	resp, err := a.engine.Run(c, q)
	if err != nil {
		return err
	}
	body, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("BUG: cannot encode response: %w", err)
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
	return nil
}

func (a *API) realtime(ctx *fasthttp.RequestCtx) error {
	c, cancel := context.WithTimeout(context.Background(), a.cfg.QueryTimeout)
	defer cancel()
	site := string(ctx.QueryArgs().Peek("site_id"))
	if site == "" {
		if _, err := a.keys.check(c, bearer(ctx), ""); err != nil {
			return err
		}
		return badf("site_id: is required")
	}
	if err := a.authorize(c, ctx, site); err != nil {
		return err
	}
	n, err := a.engine.Realtime(c, site)
	if err != nil {
		return err
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(strconv.AppendInt(nil, n, 10))
	return nil
}
