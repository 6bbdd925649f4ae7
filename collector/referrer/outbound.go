package referrer

import (
	"net/url"
	"strings"
)

// Outbound is what Social found about an outbound link's destination.
type Outbound struct {
	Network string // the social network's display name ("Facebook", "Twitter", "Mastodon", ...); "" when not one
	Share   string // for a share intent, the shared page as host+path (no query); else ""
}

// shareIntent is one network's "share this page" endpoint: the path it
// lives at (a prefix) and the query parameter that carries the page.
type shareIntent struct {
	host, path, param string
}

// shareIntents are matched on the destination's host (without "www.", and
// its m. / mobile. variants) and path prefix.
var shareIntents = []shareIntent{
	{"facebook.com", "/sharer", "u"}, // /sharer.php and /sharer/sharer.php
	{"facebook.com", "/share.php", "u"},
	{"facebook.com", "/dialog/share", "href"},
	{"x.com", "/intent/tweet", "url"},
	{"x.com", "/intent/post", "url"},
	{"x.com", "/share", "url"},
	{"twitter.com", "/intent/tweet", "url"},
	{"twitter.com", "/intent/post", "url"},
	{"twitter.com", "/share", "url"},
	{"linkedin.com", "/sharing/share-offsite", "url"},
	{"linkedin.com", "/shareArticle", "url"},
	{"linkedin.com", "/cws/share", "url"},
	{"reddit.com", "/submit", "url"},
	{"pinterest.com", "/pin/create", "url"},
	{"t.me", "/share/url", "url"},
	{"telegram.me", "/share/url", "url"},
	{"wa.me", "/", "text"},
	{"api.whatsapp.com", "/send", "text"},
	{"bsky.app", "/intent/compose", "text"},
	{"threads.net", "/intent/post", "url"},
	{"tumblr.com", "/widgets/share", "url"},
	{"vk.com", "/share.php", "url"},
}

// Social labels an outbound link: which social network (or video site) it
// goes to, from the same source data as Classify, and, for a share intent,
// which page is shared. Mastodon instances are recognised by the known
// hosts and by "mastodon"/"mstdn" in the host name; an instance's own
// /share endpoint counts too. It is off the hot path of page views (only
// outbound-click events call it) and may allocate.
func Social(destination string) Outbound {
	u := parse(destination)
	if !u.ok || u.app {
		return Outbound{}
	}
	var o Outbound
	if e, ok := lookupHost(u.host); ok && (e.cat == catSocial || e.cat == catVideo) {
		o.Network = e.name
	} else if isMastodonHost(u.host) {
		o.Network = "Mastodon"
	}
	if o.Network == "" {
		return o
	}
	pu, err := url.Parse(strings.TrimSpace(destination))
	if err != nil {
		return o
	}
	host := u.host
	for _, p := range []string{"m.", "mobile.", "web."} {
		host = strings.TrimPrefix(host, p)
	}
	param := ""
	for _, s := range shareIntents {
		if host == s.host && strings.HasPrefix(pu.Path, s.path) {
			param = s.param
			break
		}
	}
	if param == "" && o.Network == "Mastodon" && (pu.Path == "/share" || pu.Path == "/share/") {
		param = "text"
	}
	if param == "" {
		return o
	}
	o.Share = sharedPage(pu.Query().Get(param))
	if o.Share == "" {
		o.Share = "(unknown)" // a share intent without a page we can read
	}
	return o
}

// sharedPage finds the first http(s) URL in v (a "text" parameter often
// holds a sentence and then the link) and returns it as host+path.
func sharedPage(v string) string {
	i := strings.Index(v, "http://")
	if j := strings.Index(v, "https://"); j >= 0 && (i < 0 || j < i) {
		i = j
	}
	if i < 0 {
		return ""
	}
	v = v[i:]
	if j := strings.IndexAny(v, " \t\n"); j >= 0 {
		v = v[:j]
	}
	p := parse(v)
	if !p.ok || p.app {
		return ""
	}
	return p.host + p.path
}

func isMastodonHost(h string) bool {
	for label := range strings.SplitSeq(h, ".") {
		if strings.Contains(label, "mastodon") || label == "mstdn" || label == "toot" {
			return true
		}
	}
	return false
}
