package collector

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"

	"turf/collector/beacon"
	"turf/collector/newsletter"
	"turf/collector/referrer"
	"turf/collector/sink"
	"turf/collector/useragent"
	"turf/collector/visitor"
	"turf/internal/clientip"
	"turf/internal/linksign"
)

// handleLink serves a newsletter link (302 to its destination) or open
// pixel (1x1 GIF). It reads top to bottom like handleEvent: verify the
// token from memory, answer, then record the event through the same sink
// as every other. Only the path is read: a query string appended by a
// newsletter tool (a recipient id, say) is ignored and never stored. The
// answer never depends on ClickHouse, and a token that does not verify is
// 404 without a Location, so turf is never an open redirect.
func (c *Collector) handleLink(ctx *fasthttp.RequestCtx, tok string, kind linksign.Kind) {
	method := string(ctx.Method())
	if method != fasthttp.MethodGet && method != fasthttp.MethodHead {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		c.reject(ctx, "link_method", fasthttp.StatusMethodNotAllowed, "method not allowed")
		return
	}
	keys := c.d.Links.Verifiers()
	if len(keys) == 0 {
		ctx.Response.Header.Set("Retry-After", "5")
		c.reject(ctx, "link_no_key", fasthttp.StatusServiceUnavailable, "turf is starting, try again later")
		return
	}
	l, ok := linksign.Verify(keys, tok, kind)
	if !ok {
		c.reject(ctx, "bad_link", fasthttp.StatusNotFound, "not found")
		return
	}
	h := &ctx.Response.Header
	h.Set("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "0")
	h.Set("Referrer-Policy", "no-referrer")
	name := linksign.OpenEvent
	if kind == linksign.Click {
		name = linksign.ClickEvent
		h.Set("Location", linksign.Destination(l, c.sites.Map()))
		ctx.SetStatusCode(fasthttp.StatusFound)
	} else {
		ctx.SetContentType("image/gif")
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetBody(gif)
	}
	c.recordLink(ctx, l, name)
}

// recordLink stores the event of a followed link or a loaded pixel. Every
// failure only drops the event (counted): the answer is already made.
func (c *Collector) recordLink(ctx *fasthttp.RequestCtx, l linksign.Link, name string) {
	rh := &ctx.Request.Header
	if (c.cfg.HonourGPC && string(rh.Peek("Sec-GPC")) == "1") || (c.cfg.HonourDNT && string(rh.Peek("DNT")) == "1") {
		c.optedOut.Inc()
		return
	}
	if !c.sites.Has(l.Site) {
		c.drop("unknown_site")
		return
	}
	uaStr := string(rh.UserAgent())
	purpose := string(rh.Peek("Sec-Purpose"))
	for _, k := range []string{"Purpose", "X-Purpose", "X-Moz"} {
		if purpose == "" {
			purpose = string(rh.Peek(k))
		}
	}
	machine := newsletter.Machine(newsletter.Request{Method: string(ctx.Method()), UserAgent: uaStr, Purpose: purpose})
	ua := useragent.Classify(uaStr)
	if machine == "" && ua.Bot {
		// A crawler the page-view path would drop: kept here, as a machine,
		// because following newsletter links is what scanners do.
		machine = "bot"
	}

	now, ip := c.now(ctx), c.clientIP(ctx)
	// As in handleEvent: the full address makes the visitor id and is
	// truncated, then forgotten.
	id := visitor.ID(c.d.Salts.Get(now), l.Site, ip, uaStr)
	prefix := clientip.Truncate(ip, c.cfg.IPv4Prefix, c.cfg.IPv6Prefix)
	ip = netip.Addr{}

	keys, vals := []string{"campaign"}, []string{l.Campaign}
	if l.URL != "" {
		keys, vals = append(keys, "url"), append(vals, l.URL)
	}
	if machine != "" {
		keys, vals = append(keys, machineProp), append(vals, machine)
	}
	host, path := eventPage(l, c.sites.Map())
	ref := referrer.Classify("", l.Site, referrer.Campaign{Source: "newsletter", Medium: "email", Campaign: l.Campaign})
	e := sink.Event{
		Site: l.Site, TS: now, Name: name, VisitorID: id, Hostname: host, Pathname: path,
		Source: ref.Source, Channel: ref.Channel,
		UTMSource: "newsletter", UTMMedium: "email", UTMCampaign: l.Campaign,
		Country: c.d.Geo.Country(prefix.Addr()),
		Browser: ua.Browser, BrowserVersion: ua.BrowserVersion, OS: ua.OS, OSVersion: ua.OSVersion, Device: ua.Device,
		IPPrefix: prefix, PropKeys: keys, PropValues: vals,
	}
	if err := c.d.Sink.Add(e); err != nil {
		c.drop(queueReason(err))
		return
	}
	c.accepted.Inc()
}

// eventPage is the page an event of l is stored on. A click to a page of
// a site gets that page, so the visit the click starts has it as its entry
// page (a visit's entry page is its first event's); an open, or a click to
// another site, gets the newsletter path itself ("/o/", "/l/"), which no
// site page has, so it is recognisable in page reports.
func eventPage(l linksign.Link, sites map[string]bool) (host, path string) {
	if l.Kind == linksign.Click {
		// Parsed as a page view's URL is, so the two name the page alike.
		if pg, err := beacon.ParsePage(l.URL, false); err == nil && sites[strings.TrimPrefix(pg.Host, "www.")] {
			return pg.Host, pg.Path
		}
		return l.Site, linksign.ClickPath
	}
	return l.Site, linksign.OpenPath
}

// outboundClick is the tracker's outbound-link event; its prop url is the
// destination.
const outboundClick = "Outbound Link: Click"

// socialProps adds network (and share, for a share intent) to an outbound
// click whose url is a social network, unless the tracker sent them.
func socialProps(keys, vals []string) ([]string, []string) {
	dest := ""
	for i, k := range keys {
		switch k {
		case "url":
			dest = vals[i]
		case "network", "share":
			return keys, vals // set by the site; its own labels win
		}
	}
	o := referrer.Social(dest)
	if o.Network == "" {
		return keys, vals
	}
	// Copies: the beacon's slices may share one backing array.
	keys = append(append(make([]string, 0, len(keys)+2), keys...), "network")
	vals = append(append(make([]string, 0, len(vals)+2), vals...), o.Network)
	if o.Share != "" {
		keys, vals = append(keys, "share"), append(vals, o.Share)
	}
	return keys, vals
}

// machineProp is the prop newsletter opens and clicks made by machines
// carry; the query side leaves events with it out of every count of people.
const machineProp = "machine"

// withoutMachine drops a machine prop a page sent: only the collector's
// own detection may mark an event as a machine's, or a page (or anyone
// posting beacons) could hide page views from the counts.
// Copies: the beacon's slices may share one backing array.
func withoutMachine(keys, vals []string) ([]string, []string) {
	i := slices.Index(keys, machineProp)
	if i < 0 {
		return keys, vals
	}
	k := append(append(make([]string, 0, len(keys)-1), keys[:i]...), keys[i+1:]...)
	v := append(append(make([]string, 0, len(vals)-1), vals[:i]...), vals[i+1:]...)
	return k, v // keys are unique (beacon.Parse)
}
