// Package collector is turf's beacon endpoint. Its hot path reads top to
// bottom in handleEvent: limits, parse, opt-out and bot checks, enrich
// (client IP -> visitor id -> truncation -> geo, user agent, page, referrer),
// queue. A request never waits on ClickHouse.
package collector

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"turf/collector/beacon"
	"turf/collector/geo"
	"turf/collector/referrer"
	"turf/collector/sink"
	"turf/collector/useragent"
	"turf/collector/visitor"
	"turf/internal/clientip"
	"turf/internal/linksign"
)

// Config is the collector's part of `turf serve`'s configuration.
type Config struct {
	Sites          []string // domains whose events are stored; others are dropped
	TrustedProxies []netip.Prefix
	IPv4Prefix     int
	IPv6Prefix     int
	KeepFragment   bool
	HonourGPC      bool // Sec-GPC: 1 means "do not store"
	HonourDNT      bool // DNT: 1 likewise, when the operator opts in
	// TestMode lets test harnesses set the event time, client address and
	// peer through X-Turf-Test-* headers. Never enable it in production: a
	// client could then choose its own time and address.
	TestMode bool
}

// Deps are the collector's collaborators, made by cmd/turf.
type Deps struct {
	Sink  *sink.Sink
	Salts *visitor.Store
	Geo   *geo.DB // nil: no country lookup
	// City places a client's network in a region and city (nil: both
	// "(not set)").
	City *geo.CityDB
	// Engagements stores engagement beacons (beacon.Engagement) in their
	// own table: they are never events, page views or interactions.
	Engagements *sink.Sink
	// Links verifies newsletter links and pixels (nil: their paths are not
	// served). Its keys are loaded and refreshed by the caller.
	Links *linksign.Keys
	// Sites, when set, are the sites whose events are stored, kept fresh by
	// the caller (Sites.Run); nil: Config.Sites only.
	Sites   *Sites
	Metrics *metrics.Set
	Now     func() time.Time
}

// Collector handles /api/event.
type Collector struct {
	cfg      Config
	sites    *Sites
	resolver *clientip.Resolver
	d        Deps

	accepted *metrics.Counter
	engaged  *metrics.Counter // engagement beacons stored (not events)
	optedOut *metrics.Counter
	dropped  sync.Map // reason -> *metrics.Counter
}

// New checks cfg and makes a collector.
func New(cfg Config, d Deps) (*Collector, error) {
	if err := clientip.ValidateBits(cfg.IPv4Prefix, cfg.IPv6Prefix); err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	c := &Collector{cfg: cfg, sites: d.Sites, resolver: clientip.NewResolver(cfg.TrustedProxies), d: d,
		accepted: d.Metrics.NewCounter("turf_events_accepted_total"),
		optedOut: d.Metrics.NewCounter("turf_events_opted_out_total"),
		engaged:  d.Metrics.NewCounter("turf_engagements_accepted_total"),
	}
	if c.sites == nil {
		var err error
		if c.sites, err = NewSites(nil, "", cfg.Sites); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Handle serves the collector's routes and reports whether path was one.
func (c *Collector) Handle(ctx *fasthttp.RequestCtx) bool {
	if string(ctx.Path()) != "/api/event" {
		if c.d.Links == nil {
			return false
		}
		tok, kind, ok := linksign.TokenOf(string(ctx.Path()))
		if ok {
			c.handleLink(ctx, tok, kind)
		}
		return ok
	}
	// Any origin may send events. The other CORS headers matter only in a
	// preflight's answer, so the hot path does not write them.
	ctx.Response.Header.SetCanonical(hdrAllowOrigin, star)
	switch string(ctx.Method()) {
	case fasthttp.MethodOptions:
		h := &ctx.Response.Header
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		h.Set("Access-Control-Max-Age", "86400")
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	case fasthttp.MethodPost:
		c.handleEvent(ctx, false)
	case fasthttp.MethodGet, fasthttp.MethodHead:
		c.handleEvent(ctx, true)
	default:
		ctx.Response.Header.Set("Allow", "GET, POST, OPTIONS")
		answer(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed")
	}
	return true
}

var hdrAllowOrigin, star = []byte("Access-Control-Allow-Origin"), []byte("*")

// handleEvent is the hot path.
func (c *Collector) handleEvent(ctx *fasthttp.RequestCtx, pixel bool) {
	b, err := c.parse(ctx, pixel)
	if err != nil {
		var be *beacon.Error
		if !errors.As(err, &be) {
			panic("BUG: parser returned a non-beacon error: " + err.Error())
		}
		c.reject(ctx, be.Reason, be.Status, be.Msg)
		return
	}
	h := &ctx.Request.Header
	if (c.cfg.HonourGPC && string(h.Peek("Sec-GPC")) == "1") || (c.cfg.HonourDNT && string(h.Peek("DNT")) == "1") {
		// Answered exactly like a stored event, so the choice is not
		// observable from outside; only counted.
		c.optedOut.Inc()
		c.ok(ctx, pixel)
		return
	}
	ua := useragent.ClassifyBytes(h.UserAgent())
	if ua.Bot {
		c.drop("bot")
		c.ok(ctx, pixel) // bots learn nothing from the answer
		return
	}
	var siteBuf [beacon.MaxDomains]string // on the stack, like ids below
	sites := siteBuf[:0]
	for _, d := range b.Domains {
		if c.sites.Has(d) {
			sites = append(sites, d)
		}
	}
	if len(sites) == 0 {
		c.reject(ctx, "unknown_site", fasthttp.StatusBadRequest, "domain is not a site configured in this turf")
		return
	}
	page, err := beacon.ParsePage(b.URL, c.cfg.KeepFragment || b.HashMode)
	if err != nil {
		var be *beacon.Error
		if errors.As(err, &be) {
			c.reject(ctx, be.Reason, be.Status, be.Msg)
		} else {
			c.reject(ctx, "bad_url", fasthttp.StatusBadRequest, "url does not parse")
		}
		return
	}
	now, ip := c.now(ctx), c.clientIP(ctx)

	// The full address is used for the visitor id and the truncation, then
	// forgotten: ip goes out of scope with this function and is never
	// stored, logged or put in an error.
	salt := c.d.Salts.Get(now)
	var ids [beacon.MaxDomains]uint64
	for i, s := range sites {
		ids[i] = visitor.ID(salt, s, ip, h.UserAgent())
	}
	prefix := clientip.Truncate(ip, c.cfg.IPv4Prefix, c.cfg.IPv6Prefix)
	ip = netip.Addr{}

	if b.Name == beacon.Engagement {
		c.engagement(ctx, pixel, b, page, now, sites, ids[:len(sites)])
		return
	}

	if b.Name == outboundClick {
		b.PropKeys, b.PropValues = socialProps(b.PropKeys, b.PropValues)
	}
	b.PropKeys, b.PropValues = withoutMachine(b.PropKeys, b.PropValues)

	region, city := c.d.City.Location(prefix.Addr())
	pc := page.Campaign
	ref := referrer.Classify(b.Referrer, page.Host, referrer.Campaign{
		Source: pc.Source, Medium: pc.Medium, Campaign: pc.Campaign, Content: pc.Content, Term: pc.Term, ClickID: pc.ClickID})
	e := sink.Event{
		TS: now, Name: b.Name, Hostname: page.Host, Pathname: page.Path,
		ReferrerHost: ref.Host, ReferrerPath: ref.Path, Source: ref.Source, Channel: ref.Channel,
		UTMSource: page.Campaign.Source, UTMMedium: page.Campaign.Medium, UTMCampaign: page.Campaign.Campaign,
		UTMContent: page.Campaign.Content, UTMTerm: page.Campaign.Term,
		Country: c.d.Geo.Country(prefix.Addr()),
		Region:  region, City: city,
		Browser: ua.Browser, BrowserVersion: ua.BrowserVersion, OS: ua.OS, OSVersion: ua.OSVersion, Device: ua.Device,
		IPPrefix: prefix, PropKeys: b.PropKeys, PropValues: b.PropValues,
		RevenueMicros: b.RevenueMicros, RevenueCurrency: b.RevenueCurrency, Interactive: b.Interactive,
	}
	for i, s := range sites {
		e.Site, e.VisitorID = s, ids[i]
		if err := c.d.Sink.Add(e); err != nil {
			c.drop(queueReason(err))
			ctx.Response.Header.Set("Retry-After", "5")
			answer(ctx, fasthttp.StatusServiceUnavailable, "turf is busy, try again later")
			return
		}
		c.accepted.Inc()
	}
	c.ok(ctx, pixel)
}

// engagement stores an engagement beacon: the page, the visitor and the
// two figures, nothing of the request beyond what the visitor id took.
// Without an engagement sink (a harness that wires none) it is dropped and
// counted, never stored as an event.
func (c *Collector) engagement(ctx *fasthttp.RequestCtx, pixel bool, b beacon.Beacon, page beacon.Page, now time.Time, sites []string, ids []uint64) {
	if c.d.Engagements == nil {
		c.drop("no_engagement_sink")
		c.ok(ctx, pixel)
		return
	}
	e := sink.Event{TS: now, Name: b.Name, Hostname: page.Host, Pathname: page.Path,
		ScrollDepth: b.ScrollDepth, EngagementMS: b.EngagementMS}
	for i, s := range sites {
		e.Site, e.VisitorID = s, ids[i]
		if err := c.d.Engagements.Add(e); err != nil {
			c.drop(queueReason(err))
			ctx.Response.Header.Set("Retry-After", "5")
			answer(ctx, fasthttp.StatusServiceUnavailable, "turf is busy, try again later")
			return
		}
		c.engaged.Inc()
	}
	c.ok(ctx, pixel)
}

func queueReason(err error) string {
	switch {
	case errors.Is(err, sink.ErrClosed):
		return "shutting_down"
	case errors.Is(err, sink.ErrFull):
		return "spool_full"
	}
	return "spool_error"
}

func (c *Collector) parse(ctx *fasthttp.RequestCtx, pixel bool) (beacon.Beacon, error) {
	if pixel {
		args := ctx.QueryArgs()
		return beacon.ParseQuery(func(k string) string { return string(args.Peek(k)) })
	}
	ct := string(ctx.Request.Header.ContentType())
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	switch strings.TrimSpace(strings.ToLower(ct)) {
	case "application/json", "text/plain", "":
	default:
		return beacon.Beacon{}, &beacon.Error{Reason: "content_type", Msg: "send the event as application/json or text/plain", Status: fasthttp.StatusUnsupportedMediaType}
	}
	if ctx.Request.Header.ContentLength() > beacon.MaxBody {
		return beacon.Parse(make([]byte, beacon.MaxBody+1)) // the parser owns the limit and its error
	}
	return beacon.Parse(ctx.PostBody())
}

func (c *Collector) now(ctx *fasthttp.RequestCtx) time.Time {
	if c.cfg.TestMode {
		if v := ctx.Request.Header.Peek("X-Turf-Test-Time"); len(v) > 0 {
			if t, err := time.Parse(time.RFC3339, string(v)); err == nil {
				return t.UTC().Truncate(time.Second)
			}
		}
	}
	return c.d.Now().UTC().Truncate(time.Second)
}

func (c *Collector) clientIP(ctx *fasthttp.RequestCtx) netip.Addr {
	var peer netip.Addr
	if tcp, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		peer, _ = netip.AddrFromSlice(tcp.IP)
	}
	h := &ctx.Request.Header
	if c.cfg.TestMode {
		if v := h.Peek("X-Turf-Test-Peer"); len(v) > 0 {
			if a, err := netip.ParseAddr(string(v)); err == nil {
				peer = a
			}
		}
	}
	return c.resolver.Client(peer, string(h.Peek("X-Forwarded-For")), string(h.Peek("X-Real-IP")))
}

// gif is a 1x1 transparent GIF.
var gif = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

func (c *Collector) ok(ctx *fasthttp.RequestCtx, pixel bool) {
	if pixel {
		h := &ctx.Response.Header
		h.Set("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0")
		h.Set("Pragma", "no-cache")
		h.Set("Expires", "0")
		ctx.SetContentType("image/gif")
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetBody(gif)
		return
	}
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	ctx.SetBodyString("ok")
}

func (c *Collector) reject(ctx *fasthttp.RequestCtx, reason string, status int, msg string) {
	c.drop(reason)
	ctx.Response.Header.Set("X-Turf-Reject", reason)
	answer(ctx, status, msg)
}

// answer is fasthttp's ctx.Error without its reset of the headers set so
// far (CORS, Allow, Retry-After, X-Turf-Reject).
func answer(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(msg)
}

func (c *Collector) drop(reason string) {
	if v, ok := c.dropped.Load(reason); ok {
		v.(*metrics.Counter).Inc()
		return
	}
	// Reasons are a small fixed set from this package and beacon, so the
	// label never carries request data.
	ctr := c.d.Metrics.GetOrCreateCounter(`turf_events_dropped_total{reason="` + reason + `"}`)
	c.dropped.Store(reason, ctr)
	ctr.Inc()
}
