// Package useragent turns a User-Agent header into browser, OS and device
// display names and decides whether the client is a bot.
//
// Parsing is done by github.com/mssola/useragent, whose names are cleaned up
// here (it calls Samsung Internet and Android WebView "Android", iPadOS "OS").
// Bots are what mssola calls a bot, anything matching the crawler-user-agents
// list (see crawlers.go), and a few rules of our own (botReason).
//
// Classify is on the collector's hot path. Real traffic repeats a small set
// of User-Agents, so results are cached (cache.go); a cache hit takes tens of
// nanoseconds and does not allocate.
package useragent

import (
	"strings"
	"sync"

	mua "github.com/mssola/useragent"
)

// Info is what Classify found. Versions are major versions only, which is
// what a report groups by, except the Mac's "10.15" (every Mac browser now
// claims 10.15, so the major alone would say nothing).
type Info struct {
	Browser, BrowserVersion string // e.g. "Chrome", "120"
	OS, OSVersion           string // e.g. "Windows", "10"; "Android", "14"; "iOS", "17"; "Mac", "10.15"
	Device                  string // Desktop, Mobile or Tablet
	Bot                     bool
}

// Devices.
const (
	Desktop = "Desktop"
	Mobile  = "Mobile"
	Tablet  = "Tablet"
)

// Classify classifies a User-Agent. It is safe for concurrent use.
func Classify(ua string) Info {
	if info, ok := cache.get(ua); ok {
		return info
	}
	return classifyOwned(strings.Clone(ua))
}

// ClassifyBytes is Classify for a header value as fasthttp gives it: a
// cache hit costs no allocation (a string made of the header would cost one
// per request). ua is not kept.
func ClassifyBytes(ua []byte) Info {
	if info, ok := cache.getBytes(ua); ok {
		return info
	}
	return classifyOwned(string(ua))
}

// classifyOwned classifies and caches ua. The cache keeps the key and the
// version strings cut from it, so ua must be a copy the caller owns, never
// a reused request buffer.
func classifyOwned(ua string) Info {
	info := classify(ua)
	cache.put(ua, info)
	return info
}

var (
	crawlers = newCrawlerSet(crawlersTxt)
	parsers  = sync.Pool{New: func() any { return new(mua.UserAgent) }}
)

// maxParse bounds the work spent on one header: no browser sends a
// User-Agent anywhere near this long, so a longer one is junk or a probe.
const maxParse = 1024

func classify(ua string) Info {
	ua = strings.TrimSpace(ua)
	if len(ua) > maxParse {
		return Info{Device: Desktop, Bot: true}
	}
	p := parsers.Get().(*mua.UserAgent)
	defer parsers.Put(p)
	p.Parse(ua)

	var info Info
	info.Browser, info.BrowserVersion = browser(p, ua)
	info.OS, info.OSVersion = osInfo(p)
	info.Device = device(p, ua, info.OS)
	info.Bot = p.Bot() || botReason(ua) != ""
	return info
}

// botReason names why ua is a bot, or returns "" for a browser.
func botReason(ua string) string {
	switch {
	case ua == "":
		return "empty"
	// Every browser in use sends "Mozilla/5.0 (...", and Opera Mini
	// "Opera/9.80 (..."; curl, python-requests, Go-http-client and the
	// like do not, and need no list.
	case !strings.HasPrefix(ua, "Mozilla/") && !strings.HasPrefix(ua, "Opera/"):
		return "not a browser"
	// ...and all of them name their platform in parentheses.
	case strings.IndexByte(ua, '(') < 0:
		return "no platform"
	// Headless Chrome runs scrapers and monitoring, not people. Our own
	// browser tests run it too: they set a normal User-Agent.
	case strings.Contains(ua, "HeadlessChrome"):
		return "headless"
	// Browsers never put a URL in their User-Agent; bots point to the page
	// that explains them.
	case strings.Contains(ua, "http://") || strings.Contains(ua, "https://"):
		return "url"
	case crawlers.match(ua):
		return "crawler list"
	}
	return ""
}

// token is a product token that names a browser mssola does not tell apart.
// The first one found wins, so more specific tokens come first.
type token struct{ prefix, name string }

var tokens = []token{
	{"SamsungBrowser/", "Samsung Internet"},
	{"EdgA/", "Edge"}, {"EdgiOS/", "Edge"}, {"Edg/", "Edge"},
	{"OPR/", "Opera"}, {"OPiOS/", "Opera"}, {"OPT/", "Opera"},
	{"YaBrowser/", "Yandex Browser"},
	{"Vivaldi/", "Vivaldi"},
	{"UCBrowser/", "UC Browser"},
	{"MiuiBrowser/", "MIUI Browser"},
	{"HuaweiBrowser/", "Huawei Browser"},
	{"DuckDuckGo/", "DuckDuckGo"},
	{"FxiOS/", "Firefox"},
	{"CriOS/", "Chrome"},
	{"GSA/", "Google App"},
	{"Silk/", "Silk"},
	{"FBAV/", "Facebook"},
	{"Instagram ", "Instagram"},
	{"HeadlessChrome/", "Headless Chrome"},
}

// names maps mssola's browser names to ours where they differ.
var names = map[string]string{
	"YaBrowser":  "Yandex Browser",
	"Mobile App": "",
	"Android":    "Android Browser",
}

func browser(p *mua.UserAgent, ua string) (name, version string) {
	for _, t := range tokens {
		if i := strings.Index(ua, t.prefix); i >= 0 {
			return t.name, leadingDigits(ua[i+len(t.prefix):])
		}
	}
	name, version = p.Browser()
	// Android's WebView marks itself with "; wv)" and still says Chrome/.
	if strings.Contains(ua, "; wv)") {
		if i := strings.Index(ua, "Chrome/"); i >= 0 {
			return "Chrome Webview", leadingDigits(ua[i+len("Chrome/"):])
		}
	}
	if n, ok := names[name]; ok {
		name = n
	}
	// Bots get whatever mssola found in their product token, which is
	// sometimes a piece of URL; keep only what looks like a name.
	if strings.ContainsAny(name, ":/;()+") {
		name = ""
	}
	if name == "" {
		// An iOS in-app browser (no Version/ token): it is Safari's
		// engine, but we cannot say which app.
		if strings.Contains(ua, "AppleWebKit/") && (strings.Contains(ua, "iPhone") || strings.Contains(ua, "iPad")) {
			return "Safari (in-app)", ""
		}
		return "", ""
	}
	return name, leadingDigits(version)
}

func osInfo(p *mua.UserAgent) (name, version string) {
	o := p.OSInfo()
	switch platform := p.Platform(); {
	case platform == "iPhone" || platform == "iPod" || platform == "iPod touch":
		return "iOS", leadingDigits(o.Version)
	case platform == "iPad":
		return "iPadOS", leadingDigits(o.Version)
	}
	switch {
	case o.Name == "":
		return "", ""
	case o.Name == "Windows Phone":
		return "Windows Phone", leadingDigits(o.Version)
	case o.Name == "Windows" || strings.HasPrefix(o.Name, "Windows "):
		return "Windows", o.Version
	case o.Name == "Mac OS X" || o.Name == "Mac OS":
		return "Mac", majorMinor(o.Version)
	case o.Name == "Android":
		return "Android", leadingDigits(o.Version)
	case strings.HasPrefix(o.Name, "CrOS"):
		return "Chrome OS", ""
	case o.Name == "Linux" || o.Name == "Ubuntu" || o.Name == "Fedora" || strings.HasPrefix(o.Name, "Linux "):
		return "Linux", ""
	}
	return o.Name, leadingDigits(o.Version)
}

func device(p *mua.UserAgent, ua, os string) string {
	switch {
	case strings.Contains(ua, "iPad") || strings.Contains(ua, "Tablet") ||
		strings.Contains(ua, "Kindle") || strings.Contains(ua, "Silk/") || strings.Contains(ua, "PlayBook"):
		return Tablet
	// Android phones say "Mobile"; Android tablets leave it out.
	case os == "Android" && !strings.Contains(ua, "Mobile"):
		return Tablet
	case p.Mobile() || os == "iOS" || os == "Android" || strings.Contains(ua, "Mobi"):
		return Mobile
	}
	return Desktop
}

// leadingDigits returns the major version at the start of v ("120" of
// "120.0.6099"), or "" when v does not start with a digit.
func leadingDigits(v string) string {
	i := 0
	for i < len(v) && i < 8 && '0' <= v[i] && v[i] <= '9' {
		i++
	}
	return v[:i]
}

// majorMinor returns "10.15" of "10.15.7".
func majorMinor(v string) string {
	major := leadingDigits(v)
	if len(major) == len(v) || v[len(major)] != '.' {
		return major
	}
	minor := leadingDigits(v[len(major)+1:])
	if minor == "" {
		return major
	}
	return v[:len(major)+1+len(minor)]
}
