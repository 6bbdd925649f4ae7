package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/valyala/fasthttp"
	"golang.org/x/time/rate"
)

// The one pipeline every API call passes, whoever makes it: a Bearer key
// (API), a dashboard session or a share link (package dashboard). Each door
// brings its Authorizer; the steps are the same: the method, who is asking,
// their rate limit, the query, their access to its site, a turn to run,
// the answer, and errors mapped to status codes in one place (writeError).

// Principal is who is asking, as an Authorizer found them.
type Principal struct {
	// ID names the caller for the rate limiter, prefixed by its kind
	// ("key:", "session:", "share:"), so that callers of different kinds
	// never share a bucket.
	ID string
	// Sites are the sites the caller may read.
	Sites []string
	// Denied is the error for a site not in Sites.
	Denied error
	// Lane is whose slots the caller's queries wait for (limits.go).
	Lane Lane
}

// Authorizer finds who sent a request. It returns an error that
// writeError maps (an *HTTPError, say) when the request's credential is
// missing or wrong.
type Authorizer interface {
	Authorize(ctx context.Context, req *fasthttp.RequestCtx) (*Principal, error)
}

// Runner runs validated queries; *Engine is one.
type Runner interface {
	Run(ctx context.Context, q *Query) (*Response, error)
	Realtime(ctx context.Context, site string) (int64, error)
}

// PipelineConfig configures one door of the pipeline.
type PipelineConfig struct {
	// RateLimit is the calls per second one principal may make on average,
	// Burst how many at once.
	RateLimit float64
	Burst     int
	// QueryTimeout bounds one call, waiting for a turn included.
	QueryTimeout time.Duration
	// Gate holds the lanes' slots and the cost limits every statement
	// carries; share one between the pipelines of a process. nil: a gate
	// of its own with the default Limits.
	Gate *Gate
	Now  func() time.Time
	Logf func(format string, args ...any)
}

// Pipeline serves the API's paths through one Authorizer.
type Pipeline struct {
	cfg    PipelineConfig
	engine Runner
	auth   Authorizer
	limits *Limiter
}

// NewPipeline returns the pipeline over engine for the callers auth
// recognises. cfg must be complete (New and dashboard.New fill in the
// defaults).
func NewPipeline(cfg PipelineConfig, engine Runner, auth Authorizer) *Pipeline {
	if cfg.Gate == nil {
		cfg.Gate = NewGate(Limits{})
	}
	return &Pipeline{cfg: cfg, engine: engine, auth: auth, limits: NewLimiter(rate.Limit(cfg.RateLimit), cfg.Burst)}
}

// The API's paths.
const (
	QueryPath    = "/api/v2/query"
	RealtimePath = "/api/v1/stats/realtime/visitors"
)

// Serve serves the API's paths and reports false for any other path.
func (p *Pipeline) Serve(ctx *fasthttp.RequestCtx) bool {
	path := string(ctx.Path())
	if path != QueryPath && path != RealtimePath {
		return false
	}
	if err := p.serve(ctx, path); err != nil {
		p.writeError(ctx, err)
	}
	return true
}

func (p *Pipeline) serve(ctx *fasthttp.RequestCtx, path string) error {
	if path == QueryPath && !ctx.IsPost() {
		return &HTTPError{fasthttp.StatusMethodNotAllowed, "use POST"}
	}
	if path == RealtimePath && !ctx.IsGet() {
		return &HTTPError{fasthttp.StatusMethodNotAllowed, "use GET"}
	}
	c, cancel := context.WithTimeout(context.Background(), p.cfg.QueryTimeout)
	defer cancel()
	// Authenticate before parsing so that an anonymous caller learns
	// nothing from validation messages; the site is checked after.
	who, err := p.auth.Authorize(c, ctx)
	if err != nil {
		return err
	}
	if !p.limits.Allow(who.ID, p.cfg.Now()) {
		return errRateLimited
	}
	// Every statement of the call carries the cost limits. The driver
	// would replace max_execution_time by the context's deadline plus 5s,
	// so statements get a context that has no deadline but ends with c.
	c = clickhouse.Context(c, clickhouse.WithSettings(p.cfg.Gate.limits.settings()))
	c, stop := withoutDeadline(c)
	defer stop()
	var body []byte
	if path == RealtimePath {
		body, err = p.realtime(c, ctx, who)
	} else {
		body, err = p.query(c, ctx, who)
	}
	if err != nil {
		return err
	}
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(body)
	return nil
}

// admit checks the caller's access to site and waits for a slot of its
// lane (Gate); release ends the call's turn.
func (p *Pipeline) admit(c context.Context, who *Principal, site string) (release func(), err error) {
	if !slices.Contains(who.Sites, site) {
		return nil, who.Denied
	}
	return p.cfg.Gate.acquire(c, who)
}

func (p *Pipeline) query(c context.Context, ctx *fasthttp.RequestCtx, who *Principal) ([]byte, error) {
	q, err := ParseRequest(ctx.PostBody())
	if err != nil {
		return nil, err
	}
	if err := checkRegexes(q, p.cfg.Gate.limits); err != nil {
		return nil, err
	}
	release, err := p.admit(c, who, q.Site)
	if err != nil {
		return nil, err
	}
	defer release()
	resp, err := p.engine.Run(c, q)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("BUG: cannot encode response: %w", err)
	}
	return body, nil
}

func (p *Pipeline) realtime(c context.Context, ctx *fasthttp.RequestCtx, who *Principal) ([]byte, error) {
	site := string(ctx.QueryArgs().Peek("site_id"))
	if site == "" {
		return nil, badf("site_id: is required")
	}
	release, err := p.admit(c, who, site)
	if err != nil {
		return nil, err
	}
	defer release()
	n, err := p.engine.Realtime(c, site)
	if err != nil {
		return nil, err
	}
	return strconv.AppendInt(nil, n, 10), nil
}

// withoutDeadline returns a context with c's values and no deadline that
// is cancelled when c is done.
func withoutDeadline(c context.Context) (context.Context, func()) {
	out, cancel := context.WithCancel(context.WithoutCancel(c))
	stop := context.AfterFunc(c, cancel)
	return out, func() { stop(); cancel() }
}

// HTTPError is an error with the status code and message the caller gets.
type HTTPError struct {
	Status int
	Msg    string
}

func (e *HTTPError) Error() string { return e.Msg }

var errRateLimited = &HTTPError{fasthttp.StatusTooManyRequests, "too many requests; slow down"}

// writeError is the one place errors become status codes.
func (p *Pipeline) writeError(ctx *fasthttp.RequestCtx, err error) {
	status := fasthttp.StatusInternalServerError
	msg := "internal error"
	var br *BadRequest
	var he *HTTPError
	if le := limitError(err, p.cfg.Gate.limits); le != nil {
		p.cfg.Logf("query: stopped by its limits: %v", err)
		err = le
	}
	switch {
	case errors.As(err, &br):
		status, msg = fasthttp.StatusBadRequest, br.Msg
	case errors.As(err, &he):
		status, msg = he.Status, he.Msg
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		status, msg = fasthttp.StatusServiceUnavailable, "the query took too long"
		p.cfg.Logf("query: %v", err)
	default:
		p.cfg.Logf("query: %v", err)
	}
	switch status {
	case fasthttp.StatusTooManyRequests:
		ctx.Response.Header.Set("Retry-After", "1")
	case fasthttp.StatusServiceUnavailable:
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(max(1, int(p.cfg.Gate.limits.RetryAfter/time.Second))))
	}
	if errors.Is(err, errNoKey) || errors.Is(err, errBadKey) {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="turf"`)
	}
	body, _ := json.Marshal(map[string]string{"error": msg})
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(body)
}

// Limiter hands out one token bucket per key (a principal, a client
// address, a user name), forgetting them all when there are too many: the
// map stays bounded and a forgotten key only gets a fresh bucket.
type Limiter struct {
	r     rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

// NewLimiter returns a limiter of r per second and burst at once per key.
func NewLimiter(r rate.Limit, burst int) *Limiter {
	return &Limiter{r: r, burst: burst, m: map[string]*rate.Limiter{}}
}

// Allow takes a token of key's bucket, if it has one.
func (l *Limiter) Allow(key string, now time.Time) bool {
	return l.get(key).AllowN(now, 1)
}

// Has reports whether key's bucket holds a token, without taking it (the
// dashboard's log-in spends a user's token only once the password failed).
func (l *Limiter) Has(key string, now time.Time) bool {
	return l.get(key).TokensAt(now) >= 1
}

func (l *Limiter) get(key string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[key]
	if !ok {
		if len(l.m) > 50000 {
			clear(l.m)
		}
		lim = rate.NewLimiter(l.r, l.burst)
		l.m[key] = lim
	}
	return lim
}
