// Package synth generates deterministic synthetic traffic whose truth is
// known: every visit is generated as a visit, so tests can compute the
// expected statistics from the visits themselves instead of from the stored
// events.
package synth

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"
)

// Event is one row of the events table. ReferrerHost and ReferrerPath are
// empty for a Referer from the site itself, as the collector stores them.
type Event struct {
	Site, Name                                              string
	TS                                                      time.Time
	VisitorID                                               uint64
	Hostname, Pathname, ReferrerHost, ReferrerPath          string
	Source, Channel                                         string
	UTMSource, UTMMedium, UTMCampaign, UTMContent, UTMTerm  string
	Country, Browser, BrowserVersion, OS, OSVersion, Device string
	// Region and City: "" is stored as "(not set)", as the collector
	// does without a city database.
	Region, City           string
	PropsKeys, PropsValues []string
	RevenueMicros          int64
	RevenueCurrency        string
	Interactive            uint8
	// Person is the generator's truth about who sent it; UserAgent and IP
	// are what a browser would send to the collector.
	Person    int
	UserAgent string
	IP        string
	Referrer  string // full referrer URL, as the tracker would send it
	URL       string // full page URL
}

// Visit is a generated visit: its events in time order.
type Visit struct {
	ID     int
	Site   string
	Events []Event
}

// Config says what to generate.
type Config struct {
	Seed    uint64
	Sites   []string
	Start   time.Time // first UTC day
	Days    int
	Persons int // per site
	// VisitsPerDay is the average number of visits started per site and
	// day.
	VisitsPerDay int
}

type person struct {
	country, browser, bver, os, osver, device, ua, ip string
}

type source struct {
	name, channel, refHost, refPath           string
	utmSource, utmMedium, utmCampaign, utmCnt string
	utmTerm                                   string
}

var sources = []source{
	{name: "Direct / None", channel: "Direct"},
	{name: "Google", channel: "Organic Search", refHost: "www.google.com", refPath: "/"},
	{name: "Facebook", channel: "Organic Social", refHost: "m.facebook.com", refPath: "/"},
	{name: "Twitter", channel: "Organic Social", refHost: "t.co", refPath: "/abc123"},
	{name: "LinkedIn", channel: "Organic Social", refHost: "www.linkedin.com", refPath: "/feed/"},
	{name: "Newsletter", channel: "Email", utmSource: "newsletter", utmMedium: "email", utmCampaign: "spring_sale", utmCnt: "top_button"},
	{name: "Google", channel: "Paid Search", refHost: "www.google.com", refPath: "/", utmSource: "google", utmMedium: "cpc", utmCampaign: "brand", utmTerm: "turf analytics"},
	{name: "Bing", channel: "Organic Search", refHost: "www.bing.com", refPath: "/"},
	{name: "DuckDuckGo", channel: "Organic Search", refHost: "duckduckgo.com", refPath: "/"},
	{name: "GitHub", channel: "Organic Social", refHost: "github.com", refPath: "/turf/turf"},
	{name: "blog.example.net", channel: "Referral", refHost: "blog.example.net", refPath: "/post/1"},
	{name: "news.example.org", channel: "Referral", refHost: "news.example.org", refPath: "/story/42"},
	{name: "forum.example.io", channel: "Referral", refHost: "forum.example.io", refPath: "/t/turf"},
}

// people are the kinds of visitor, with real User-Agent strings and what
// the collector's classifier makes of them (major versions; Windows 11 says
// it is Windows 10).
var people = []person{
	{"NL", "Firefox", "128", "Linux", "", "Desktop", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", ""},
	{"DE", "Chrome", "126", "Windows", "10", "Desktop", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", ""},
	{"US", "Safari", "17", "iOS", "17", "Mobile", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", ""},
	{"GB", "Chrome", "126", "Android", "14", "Mobile", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36", ""},
	{"FR", "Safari", "17", "iPadOS", "17", "Tablet", "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", ""},
	{"", "Edge", "126", "Windows", "10", "Desktop", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0", ""},
}

// places are each kind of visitor's region and city, as a city database
// would name them ("" is "(not set)"), by position in people.
var places = [][2]string{{"North Holland", "Amsterdam"}, {"Berlin", "Berlin"}, {"California", ""}, {"England", "London"}, {"", ""}, {"", ""}}

// PersonPlace is the region and city of PersonIP(p) ("" for none).
func PersonPlace(p int) (region, city string) {
	pl := places[p%len(people)]
	return pl[0], pl[1]
}

var pages = []string{"/", "/pricing", "/blog", "/blog/hello-world", "/blog/second-post", "/docs", "/docs/install", "/about", "/contact", "/signup"}

// PersonIP is the address a person sends from: one /24 of 198.18.0.0/15
// each, so that persons stay apart after the collector truncates addresses
// and a geo database can give each its country.
func PersonIP(p int) string { return fmt.Sprintf("198.%d.%d.7", 18+p/256%2, p%256) }

// PersonCountry is the country PersonIP(p) is in.
func PersonCountry(p int) string { return people[p%len(people)].country }

// VisitorID is the day's id of a person on a site: it changes at every UTC
// midnight, as the collector's salted hash does.
func VisitorID(site string, person int, ts time.Time) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%d|%s", site, person, ts.UTC().Format("2006-01-02"))
	return h.Sum64()
}

// Generate returns the visits, in time order per site. Visits never cross a
// UTC midnight: like the collector's ids, a visit that runs past it goes on
// as a new visit of a new visitor id.
func Generate(c Config) []Visit {
	rng := rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15))
	var out []Visit
	id := 0
	for _, site := range c.Sites {
		// Per person, the end of their last visit, so that a person's
		// visits never run into each other: a new one starts more than 30
		// minutes after the last ended.
		lastEnd := map[int]time.Time{}
		for day := 0; day < c.Days; day++ {
			dayStart := c.Start.UTC().Truncate(24*time.Hour).AddDate(0, 0, day)
			n := c.VisitsPerDay/2 + rng.IntN(c.VisitsPerDay+1)
			for i := 0; i < n; i++ {
				p := rng.IntN(c.Persons)
				start := dayStart.Add(time.Duration(rng.IntN(24*3600)) * time.Second)
				if i%11 == 0 {
					// Crowd the minutes around midnight, where days end.
					start = dayStart.Add(24*time.Hour - time.Duration(rng.IntN(1800))*time.Second)
				}
				if i%13 == 0 {
					// And around the site's local midnight (Amsterdam).
					start = dayStart.Add(21*time.Hour + 30*time.Minute + time.Duration(rng.IntN(7200))*time.Second)
				}
				if end, ok := lastEnd[p]; ok && !start.After(end.Add(30*time.Minute)) {
					start = end.Add(30*time.Minute + time.Duration(1+rng.IntN(3600))*time.Second)
				}
				vs := genVisit(rng, site, p, start, &id)
				out = append(out, vs...)
				last := vs[len(vs)-1].Events
				lastEnd[p] = last[len(last)-1].TS
			}
		}
	}
	return out
}

func genVisit(rng *rand.Rand, site string, p int, start time.Time, id *int) []Visit {
	pp := people[p%len(people)]
	src := sources[rng.IntN(len(sources))]
	host := site
	if rng.IntN(5) == 0 {
		host = "www." + site
	}
	ip := PersonIP(p)
	region, city := PersonPlace(p)
	base := Event{
		Region: region, City: city,
		Site: site, Hostname: host,
		Country: pp.country, Browser: pp.browser, BrowserVersion: pp.bver, OS: pp.os, OSVersion: pp.osver, Device: pp.device,
		Person: p, UserAgent: pp.ua, IP: ip, Interactive: 1,
	}
	var evs []Event
	t := start
	page := pages[rng.IntN(len(pages))]
	nPages := 1 + rng.IntN(5)
	if rng.IntN(3) == 0 {
		nPages = 1
	}
	for i := 0; i < nPages; i++ {
		if i > 0 {
			// Mostly short gaps, sometimes exactly the 30 minutes a
			// visit may pause.
			gap := time.Duration(5+rng.IntN(600)) * time.Second
			switch rng.IntN(25) {
			case 0:
				gap = 30 * time.Minute
			case 1:
				gap = 29*time.Minute + 59*time.Second
			}
			t = t.Add(gap)
			page = pages[rng.IntN(len(pages))]
		}
		e := base
		e.Name, e.TS, e.Pathname = "pageview", t, page
		e.URL = "https://" + host + page
		if i == 0 {
			e.Source, e.Channel = src.name, src.channel
			// The collector stores the referrer's host without "www.".
			e.ReferrerHost, e.ReferrerPath = strings.TrimPrefix(src.refHost, "www."), src.refPath
			if src.refHost != "" {
				e.Referrer = "https://" + src.refHost + src.refPath
			}
			e.UTMSource, e.UTMMedium, e.UTMCampaign, e.UTMContent, e.UTMTerm = src.utmSource, src.utmMedium, src.utmCampaign, src.utmCnt, src.utmTerm
			if src.utmSource != "" {
				e.URL += "?utm_source=" + src.utmSource + "&utm_medium=" + src.utmMedium + "&utm_campaign=" + src.utmCampaign
				if src.utmCnt != "" {
					e.URL += "&utm_content=" + url.QueryEscape(src.utmCnt)
				}
				if src.utmTerm != "" {
					e.URL += "&utm_term=" + url.QueryEscape(src.utmTerm)
				}
			}
		} else {
			// Inside a visit the Referer is the site itself, which is no
			// referrer at all.
			e.Source, e.Channel = "Direct / None", "Direct"
			e.Referrer = "https://" + host + evs[len(evs)-1].Pathname
		}
		evs = append(evs, e)
		pv := e
		// Events on this page: the tracker sends the page's URL and Referer
		// with them, so they carry the page view's source.
		t2 := t
		add := func(name string, interactive uint8, keys, vals []string, rev int64) {
			t2 = t2.Add(time.Duration(1+rng.IntN(20)) * time.Second)
			e := pv
			e.Name, e.TS = name, t2
			e.Interactive = interactive
			e.PropsKeys, e.PropsValues = keys, vals
			if rev != 0 {
				e.RevenueMicros, e.RevenueCurrency = rev, "EUR"
			}
			evs = append(evs, e)
		}
		switch rng.IntN(12) {
		case 0:
			add("Outbound Link: Click", 1, []string{"url"}, []string{"https://github.com/turf"}, 0)
		case 1:
			add("File Download", 1, []string{"url"}, []string{"https://" + host + "/files/report.pdf"}, 0)
		case 2:
			plan := []string{"free", "pro"}[rng.IntN(2)]
			add("Signup", 1, []string{"plan", "variant"}, []string{plan, []string{"A", "B"}[rng.IntN(2)]}, 0)
		case 3:
			add("Purchase", 1, []string{"plan"}, []string{"pro"}, int64(1+rng.IntN(200))*1_000_000+int64(rng.IntN(100))*10_000)
		case 4:
			add("Scroll", 0, nil, nil, 0) // not interactive: does not save a bounce
		case 5:
			if page == "/contact" {
				add("404", 1, []string{"path"}, []string{"/contakt"}, 0)
			}
		}
		t = evs[len(evs)-1].TS
	}
	// Split at UTC midnight: the id changes, so does the visit.
	var out []Visit
	cur := Visit{ID: *id, Site: site}
	*id++
	for _, e := range evs {
		if len(cur.Events) > 0 && e.TS.UTC().Truncate(24*time.Hour) != cur.Events[0].TS.UTC().Truncate(24*time.Hour) {
			out = append(out, cur)
			cur = Visit{ID: *id, Site: site}
			*id++
		}
		e.VisitorID = VisitorID(site, p, e.TS)
		cur.Events = append(cur.Events, e)
	}
	return append(out, cur)
}

// Engagements are the engagement beacons of the visits' page views, made
// from a hash of the visit and the page view (not from the generator's
// random numbers, so that the events stay as they were): most page views
// get one beacon a few seconds later, some two (the second deeper), some
// none; a few carry no scroll depth. URL, IP and UserAgent say how the
// tracker would send them.
func Engagements(vs []Visit) []Engagement {
	var out []Engagement
	for _, v := range vs {
		for i, e := range v.Events {
			if e.Name != "pageview" {
				continue
			}
			h := fnv.New64a()
			fmt.Fprintf(h, "%d|%d", v.ID, i)
			x := h.Sum64()
			n := []int{0, 1, 1, 1, 2}[x%5]
			at := e.TS
			for k := range n {
				x = x*6364136223846793005 + 1442695040888963407
				at = at.Add(time.Duration(1+x>>59) * time.Second)
				// The id of the day the beacon is sent, as the collector
				// makes it: a page left after midnight has the new id.
				g := Engagement{Site: e.Site, TS: at, VisitorID: VisitorID(e.Site, e.Person, at), Hostname: e.Hostname, Pathname: e.Pathname,
					ScrollDepth: uint8(x >> 33 % 101), EngagementMS: uint32(x >> 20 % 90000),
					URL: e.URL, IP: e.IP, UserAgent: e.UserAgent}
				if k == 1 {
					g.ScrollDepth = min(100, g.ScrollDepth+20)
				}
				if x>>40%9 == 0 {
					g.ScrollDepth = 255 // none: the beacon still carries a time
					g.EngagementMS++
				}
				out = append(out, g)
			}
		}
	}
	return out
}

// Events flattens visits into their events.
func Events(vs []Visit) []Event {
	var out []Event
	for _, v := range vs {
		out = append(out, v.Events...)
	}
	return out
}
