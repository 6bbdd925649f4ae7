// Package dashboard serves turf's web dashboard: the page and its assets
// (embedded, no CDN), log-in with user name and password, sessions, and
// read-only share links.
//
// The page gets every number from the public Stats API (POST /api/v2/query),
// so whatever it shows an analyst can fetch too. The API itself takes Bearer
// keys; the dashboard answers the same paths for callers that bring a
// session cookie or a share token instead (see Handle), through the very
// same pipeline (query.Pipeline: one parser, engine, rate limiter and error
// mapper), with the Dashboard as its Authorizer.
package dashboard

import (
	"context"
	"log"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/valyala/fasthttp"
	"golang.org/x/time/rate"

	"turf/internal/clientip"
	"turf/internal/linksign"
	"turf/query"
)

// Engine is what the dashboard needs of the query side; *query.Engine
// (query.API.Engine()) is one.
type Engine = query.Runner

// Config configures the dashboard.
type Config struct {
	// Sites are the sites turf serves at start, in the order the site
	// switcher lists them (SetSites replaces them when the settings
	// change). A user without a site list sees all of them.
	Sites []string
	// SessionTTL is how long a log-in lasts. Default: 14 days.
	SessionTTL time.Duration
	// AuthCacheTTL bounds how late a log-out or revocation made by another
	// turf process takes effect here. Default: 10s.
	AuthCacheTTL time.Duration
	// TrustedProxies are the proxies whose X-Forwarded-For names the client
	// for log-in rate limits (as the collector's --trusted-proxy).
	TrustedProxies []netip.Prefix
	// LoginRate is log-in attempts per minute per client network (/24,
	// /48) and failed ones per user name from networks the user has not
	// logged in from (see loginPrefix), LoginBurst how many at once.
	// Defaults: 5 and 10.
	LoginRate  float64
	LoginBurst int
	// MaxConcurrentLogins is how many password checks (bcrypt, about
	// 0.25s of a core each) run at once; LoginWait how long an attempt waits
	// for its turn before a 503. Defaults: 1 and 5s.
	MaxConcurrentLogins int
	LoginWait           time.Duration
	// QueryRate and QueryBurst limit API calls per session or share link.
	// Defaults: 20/s and 60 (one dashboard load makes about fifteen).
	QueryRate  float64
	QueryBurst int
	// QueryTimeout bounds one API call, waiting included. Default: 30s.
	QueryTimeout time.Duration
	// Gate holds the query slots (staff and share links in lanes of their
	// own) and cost limits, shared with the API: query.API.Gate(). nil: a
	// gate of its own with the default query.Limits.
	Gate *query.Gate
	// InsecureCookie drops the Secure flag from the session cookie even on
	// HTTPS; only for plain-HTTP test setups. Without it the cookie is
	// Secure whenever the request came over HTTPS (directly or, by
	// X-Forwarded-Proto, through a proxy).
	InsecureCookie bool
	// PublicURL is turf's address as mail clients reach it, which links
	// made on the link page start with (as `turf link --public-url`).
	// Empty: the link page's own origin.
	PublicURL string
	// Settings, when set, enables the settings page for admins.
	Settings *Settings
	Now      func() time.Time
	Logf     func(format string, args ...any)
}

// Dashboard serves the dashboard's paths.
type Dashboard struct {
	cfg    Config
	conn   driver.Conn
	db     string
	engine Engine
	auth   *authCache
	ips    *clientip.Resolver
	byNet  *query.Limiter // log-in attempts per client prefix
	byUser *query.Limiter // failed log-ins per user from unknown prefixes
	known  knownPrefixes
	bcrypt chan struct{} // one token per password check running
	api    *query.Pipeline
	assets map[string]*asset
	links  *linksign.Keys // the newsletter link key, for the link page
	sites  atomic.Pointer[[]string]
	setup  setupLink
	// Settings, when set, is how the settings page reads and changes
	// settings (see settings.go); nil: no settings page.
	settings *Settings
}

// New checks cfg and returns the dashboard over database db.
func New(cfg Config, conn driver.Conn, db string, engine Engine) (*Dashboard, error) {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 14 * 24 * time.Hour
	}
	if cfg.AuthCacheTTL <= 0 {
		cfg.AuthCacheTTL = 10 * time.Second
	}
	if cfg.LoginRate <= 0 {
		cfg.LoginRate = 5
	}
	if cfg.LoginBurst <= 0 {
		cfg.LoginBurst = 10
	}
	if cfg.MaxConcurrentLogins <= 0 {
		cfg.MaxConcurrentLogins = 1
	}
	if cfg.LoginWait <= 0 {
		cfg.LoginWait = 5 * time.Second
	}
	if cfg.QueryRate <= 0 {
		cfg.QueryRate = 20
	}
	if cfg.QueryBurst <= 0 {
		cfg.QueryBurst = 60
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logf == nil {
		cfg.Logf = log.Printf
	}
	assets, err := loadAssets()
	if err != nil {
		return nil, err
	}
	d := &Dashboard{
		cfg: cfg, conn: conn, db: db, engine: engine,
		auth:     &authCache{ttl: cfg.AuthCacheTTL, m: map[string]cachedAuth{}},
		ips:      clientip.NewResolver(cfg.TrustedProxies),
		byNet:    query.NewLimiter(rate.Limit(cfg.LoginRate/60), cfg.LoginBurst),
		byUser:   query.NewLimiter(rate.Limit(cfg.LoginRate/60), cfg.LoginBurst),
		bcrypt:   make(chan struct{}, cfg.MaxConcurrentLogins),
		assets:   assets,
		links:    linksign.NewKeys(conn, db, cfg.Now),
		settings: cfg.Settings,
	}
	d.SetSites(cfg.Sites)
	d.api = query.NewPipeline(query.PipelineConfig{RateLimit: cfg.QueryRate, Burst: cfg.QueryBurst, QueryTimeout: cfg.QueryTimeout,
		Gate: cfg.Gate, Now: cfg.Now, Logf: cfg.Logf}, engine, d)
	return d, nil
}

const (
	cookieName   = "turf_session"
	csrfHeader   = "X-Turf-CSRF"
	shareHeader  = "X-Turf-Share"
	queryPath    = query.QueryPath
	realtimePath = query.RealtimePath
)

// The errors of the dashboard's door, with the status codes the pipeline
// answers them with.
var (
	errNoSession = &query.HTTPError{Status: fasthttp.StatusUnauthorized, Msg: "not logged in or the session has expired"}
	errBadShare  = &query.HTTPError{Status: fasthttp.StatusUnauthorized, Msg: "this share link does not exist or was revoked"}
	errCSRF      = &query.HTTPError{Status: fasthttp.StatusForbidden, Msg: "missing or wrong X-Turf-CSRF header"}
	errSite      = &query.HTTPError{Status: fasthttp.StatusForbidden, Msg: "no access to this site"}
)

// SetSites replaces the list of sites turf serves; sessions and share links
// checked before see the new list within Config.AuthCacheTTL.
func (d *Dashboard) SetSites(sites []string) {
	cp := slices.Clone(sites)
	if old := d.sites.Load(); old != nil && slices.Equal(*old, cp) {
		return
	}
	d.sites.Store(&cp)
	// Checked sessions carry their site lists: check them again.
	d.auth.mu.Lock()
	clear(d.auth.m)
	d.auth.mu.Unlock()
}

func (d *Dashboard) allSites() []string { return *d.sites.Load() }

// Handle serves the dashboard's paths and reports false for any other.
//
// On the API paths it only answers calls that carry a session cookie or a
// share token and no Authorization header; Bearer calls (and anonymous
// ones, which get the API's own 401) are left to query.API, so it must be
// asked before the API.
func (d *Dashboard) Handle(ctx *fasthttp.RequestCtx) bool {
	path := string(ctx.Path())
	switch {
	case path == queryPath || path == realtimePath:
		if len(ctx.Request.Header.Peek("Authorization")) > 0 ||
			(len(ctx.Request.Header.Cookie(cookieName)) == 0 && len(ctx.Request.Header.Peek(shareHeader)) == 0) {
			return false
		}
		d.api.Serve(ctx)
	case path == "/":
		d.serveIndex(ctx)
	case path == "/login":
		d.serveLogin(ctx)
	case path == "/logout":
		d.serveLogout(ctx)
	case path == linksPath:
		d.serveLinks(ctx)
	case strings.HasPrefix(path, setupPrefix):
		d.serveSetup(ctx, strings.TrimPrefix(path, setupPrefix))
	case strings.HasPrefix(path, invitePrefix):
		d.serveInvite(ctx, strings.TrimPrefix(path, invitePrefix))
	case path == settingsPath || strings.HasPrefix(path, settingsAPI):
		d.serveSettings(ctx, path)
	case strings.HasPrefix(path, "/share/"):
		d.serveShare(ctx, strings.TrimPrefix(path, "/share/"))
	case strings.HasPrefix(path, assetPrefix):
		d.serveAsset(ctx, strings.TrimPrefix(path, assetPrefix))
	case path == "/favicon.ico":
		d.serveAsset(ctx, "favicon.svg")
	default:
		return false
	}
	return true
}

// securityHeaders go on every page: nothing but our own origin may run,
// load or frame anything, and share tokens in URLs leak to no one.
func securityHeaders(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: with no-referrer a form POST carries
	// "Origin: null" and the log-in could not be told from a cross-site one.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

// Authorize is the dashboard's query.Authorizer: a share token (header) or
// a session cookie plus its CSRF token (header).
func (d *Dashboard) Authorize(c context.Context, ctx *fasthttp.RequestCtx) (*query.Principal, error) {
	p, err := d.principalOf(c, ctx)
	if err != nil {
		return nil, err
	}
	lane := query.LaneStaff
	if p.share != "" {
		lane = query.LaneShare
	}
	return &query.Principal{ID: p.key(), Sites: p.sites, Denied: errSite, Lane: lane}, nil
}

func (d *Dashboard) principalOf(c context.Context, ctx *fasthttp.RequestCtx) (*principal, error) {
	if tok := string(ctx.Request.Header.Peek(shareHeader)); tok != "" {
		return d.share(c, tok)
	}
	p, err := d.session(c, string(ctx.Request.Header.Cookie(cookieName)))
	if err != nil {
		return nil, err
	}
	// A custom header cannot be sent cross-site without a CORS preflight,
	// which turf never grants; the token ties it to this session too.
	if !sameToken(string(ctx.Request.Header.Peek(csrfHeader)), p.csrf) || !sameOrigin(ctx) {
		return nil, errCSRF
	}
	return p, nil
}

// sameOrigin reports whether a state-changing request comes from a page of
// this origin. Browsers send Origin on every POST and on cross-origin
// fetches; a request without Origin and Referer is not from a browser page
// and carries no ambient cookie risk worth refusing.
func sameOrigin(ctx *fasthttp.RequestCtx) bool {
	o := string(ctx.Request.Header.Peek("Origin"))
	if o == "" {
		o = string(ctx.Request.Header.Referer())
		if o == "" {
			return true
		}
	}
	rest, ok := strings.CutPrefix(o, "https://")
	if !ok {
		if rest, ok = strings.CutPrefix(o, "http://"); !ok {
			return false
		}
	}
	host, _, _ := strings.Cut(rest, "/")
	return host == string(ctx.Host())
}

// secure reports whether the browser reached us over HTTPS.
func (d *Dashboard) secure(ctx *fasthttp.RequestCtx) bool {
	if d.cfg.InsecureCookie {
		return false
	}
	return ctx.IsTLS() || strings.EqualFold(string(ctx.Request.Header.Peek("X-Forwarded-Proto")), "https")
}

func (d *Dashboard) clientAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	peer, _ := netip.AddrFromSlice(ctx.RemoteIP())
	return d.ips.Client(peer.Unmap(), string(ctx.Request.Header.Peek("X-Forwarded-For")), string(ctx.Request.Header.Peek("X-Real-IP")))
}
