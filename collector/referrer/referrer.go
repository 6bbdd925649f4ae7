// Package referrer decides where a visit came from: a display name for the
// source ("Google", "Twitter", "Newsletter", "example.com") and a marketing channel
// ("Organic Search", "Email", ...).
//
// It is a pure function of the Referer, the page's own host and the campaign
// parameters of the page URL. Classify is on the collector's hot path: it
// parses the URL by hand and resolves the host with map look-ups on the host
// and its parent domains, so a typical call does not allocate.
//
// The channel rules follow Plausible's acquisition channels, which in turn
// follow GA4's default channel group; see channel.go.
package referrer

import (
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Campaign holds the campaign parameters found on the page URL. The caller
// puts the `ref` or `source` query parameter into Source when utm_source is
// absent.
type Campaign struct {
	Source, Medium, Campaign, Content, Term string

	// ClickID names the ad click-id parameter present on the page URL, if
	// any: "gclid" or "msclkid". Google and Bing ads are auto-tagged with
	// these instead of utm_*, so without it their paid clicks would count as
	// organic search. Only its name matters, never its value.
	ClickID string
}

// Result is what Classify found.
type Result struct {
	Host    string // referring host, lower-case, without "www."; "" when direct/none or when it is the site itself
	Path    string // referring path, no query/fragment, at most MaxPath bytes
	Source  string // display name, e.g. "Facebook", "Twitter", "Google", "Newsletter", or the bare host; DirectNone when nothing is known
	Channel string // one of Channels
}

// DirectNone is the Source of a visit with neither a usable Referer nor a
// campaign source.
const DirectNone = "Direct / None"

const (
	// MaxPath bounds Result.Path: referrer paths are attacker-controlled
	// and end up in a column that is grouped on.
	MaxPath = 500
	// maxSource bounds a free-form utm_source kept as the Source.
	maxSource = 200
)

// Classify decides source and channel. pageHost is the host of the page the
// event is for: a Referer from the same site (also its www./non-www.
// variant) is not a source. Campaign parameters win over the Referer.
//
// The strings of the Result may share memory with referrerURL and c.
func Classify(referrerURL, pageHost string, c Campaign) Result {
	var r Result
	var ref entry
	known := false
	u := parse(referrerURL)
	if u.ok && !isSelf(u.host, pageHost) && !isLoopback(u.host) {
		r.Host, r.Path = u.host, u.path
		if u.app {
			ref, known = lookupApp(u.host)
		} else {
			ref, known = lookupHost(u.host)
		}
	}

	var src entry // what the channel rules see as the source
	paidSource := false
	if s := strings.TrimSpace(c.Source); s != "" {
		src, paidSource = lookupCampaignSource(s)
		if src.name == "" {
			src.name = truncate(s, maxSource)
		}
	} else if r.Host != "" {
		switch {
		case known:
			src = ref
		case u.app:
			src.name = "android-app://" + r.Host
		default:
			src.name = r.Host
		}
	}

	r.Channel = channel(src, paidSource, c)
	r.Source = src.name
	if r.Source == "" {
		r.Source = DirectNone
	}
	return r
}

// refURL is the part of a Referer that Classify uses.
type refURL struct {
	host, path string
	app        bool // android-app://, host is a package name
	ok         bool
}

// parse splits a Referer by hand: net/url allocates, and we need only the
// host and the path. Anything that is not an http(s) or android-app URL
// with a plausible host name is treated as no Referer at all.
func parse(s string) refURL {
	s = strings.TrimSpace(s)
	var u refURL
	i := strings.Index(s, "://")
	if i < 0 {
		return u // browsers send absolute URLs; the rest is noise
	}
	switch scheme := s[:i]; {
	case strings.EqualFold(scheme, "https"), strings.EqualFold(scheme, "http"):
	case strings.EqualFold(scheme, "android-app"):
		u.app = true
	default:
		return u
	}
	rest := s[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	auth := rest[:end]
	rest = rest[end:]
	if at := strings.LastIndexByte(auth, '@'); at >= 0 {
		auth = auth[at+1:]
	}
	host := auth
	if strings.HasPrefix(host, "[") {
		// IPv6 literal: never a known source; kept in canonical form, and
		// anything that is not an address is no referrer.
		j := strings.IndexByte(host, ']')
		if j < 0 {
			return u
		}
		a, err := netip.ParseAddr(host[1:j])
		if err != nil {
			return u
		}
		host = "[" + a.WithZone("").String() + "]"
	} else if j := strings.IndexByte(host, ':'); j >= 0 {
		host = host[:j]
	}
	host = strings.TrimSuffix(host, ".")
	if !validHost(host) {
		return u
	}
	host = lowerASCII(host)
	if h, ok := strings.CutPrefix(host, "www."); ok && h != "" {
		host = h
	}

	if j := strings.IndexAny(rest, "?#"); j >= 0 {
		rest = rest[:j]
	}
	if rest == "" {
		rest = "/"
	}
	u.host, u.path, u.ok = host, truncate(rest, MaxPath), true
	return u
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if h[0] == '[' {
		return true // parsed as an address by the caller
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_':
		default:
			return false
		}
	}
	return true
}

// lowerASCII lower-cases s, allocating only when s has an upper-case
// letter (rare in Referers).
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// isSelf reports whether the referring host is the page's own site. host is
// already lower-case and without "www.".
func isSelf(host, pageHost string) bool {
	if pageHost == "" {
		return false
	}
	if j := strings.LastIndexByte(pageHost, ':'); j >= 0 && !strings.HasSuffix(pageHost, "]") {
		pageHost = pageHost[:j]
	}
	pageHost = strings.TrimSuffix(pageHost, ".")
	if len(pageHost) > 4 && strings.EqualFold(pageHost[:4], "www.") {
		pageHost = pageHost[4:]
	}
	return strings.EqualFold(host, pageHost)
}

// isLoopback drops referrers from a developer's machine, like Plausible.
func isLoopback(host string) bool {
	return host == "localhost" || strings.HasSuffix(host, ".localhost") ||
		strings.HasPrefix(host, "127.") || host == "[::1]" || host == "0.0.0.0"
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
