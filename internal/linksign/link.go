// Package linksign makes and checks turf's newsletter links and open
// pixels. It is a leaf both sides share: the collector verifies links, and
// `turf link` and the dashboard's link page make them, so neither side
// imports the other (machine detection stays in collector/newsletter).
//
// A link is a token that carries what it stands for (kind, site, campaign,
// destination) and an HMAC-SHA256 over it, made with a key every instance
// shares through ClickHouse (Keys). Nothing is looked up when a link is
// followed: the collector checks the MAC against keys it holds in memory, so
// a redirect never waits on ClickHouse and works while it is down. A token
// that does not verify is answered 404 without a Location, so turf can
// never be made into an open redirect.
//
// Nobody is identifiable by construction: a token names a campaign and a
// URL, never a recipient. Every recipient of one newsletter gets the same
// links, Clean drops recipient-looking query parameters from a destination
// when a link is made, and the collector reads only the token from a
// request's path, ignoring any query a newsletter tool may append.
package linksign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
)

// Kind is what a token is for.
type Kind byte

const (
	Click Kind = 'c' // a tracking link: redirect and record Newsletter Click
	Open  Kind = 'o' // an open pixel: 1x1 GIF and record Newsletter Open
)

// The event names the collector records.
const (
	ClickEvent = "Newsletter Click"
	OpenEvent  = "Newsletter Open"
)

// Paths on turf's public address. A click is ClickPath+token, an open
// OpenPath+token+".gif" (some mail clients only load images whose URL looks
// like one).
const (
	ClickPath = "/l/"
	OpenPath  = "/o/"
)

// MaxCampaign bounds a campaign name; MaxURL a destination.
const (
	MaxCampaign = 200
	MaxURL      = 2000
)

// Link is what a token stands for. URL is empty for an Open.
type Link struct {
	Kind     Kind
	Site     string
	Campaign string
	URL      string
}

// macSize is the truncated HMAC-SHA256 length: 128 bits are far beyond
// guessing over HTTP and keep links short.
const macSize = 16

// enc is strict so that a token has one spelling: a lenient decoder would
// accept a changed last character whose bits are padding.
var enc = base64.RawURLEncoding.Strict()

// Sign makes the token of l with key.
func Sign(key *Key, l Link) string {
	p := payload(l)
	return enc.EncodeToString(p) + "." + enc.EncodeToString(mac(key, p))
}

func payload(l Link) []byte {
	v := url.Values{"s": {l.Site}, "c": {l.Campaign}}
	if l.URL != "" {
		v.Set("u", l.URL)
	}
	return append([]byte{byte(l.Kind)}, v.Encode()...)
}

func mac(key *Key, p []byte) []byte {
	h := hmac.New(sha256.New, key[:])
	h.Write(p)
	return h.Sum(nil)[:macSize]
}

// Verify returns the link of token if one of keys signed it. want is the
// kind the request's path says: a pixel's token does not redirect.
func Verify(keys []*Key, token string, want Kind) (Link, bool) {
	if len(token) > 2*MaxURL+600 {
		return Link{}, false
	}
	ps, ms, ok := strings.Cut(token, ".")
	if !ok {
		return Link{}, false
	}
	p, err1 := enc.DecodeString(ps)
	m, err2 := enc.DecodeString(ms)
	if err1 != nil || err2 != nil || len(m) != macSize || len(p) < 1 || Kind(p[0]) != want {
		return Link{}, false
	}
	signed := false
	for _, k := range keys {
		if hmac.Equal(m, mac(k, p)) {
			signed = true
			break
		}
	}
	if !signed {
		return Link{}, false
	}
	v, err := url.ParseQuery(string(p[1:]))
	if err != nil {
		return Link{}, false // signed by us, so only a bug could get here
	}
	l := Link{Kind: want, Site: v.Get("s"), Campaign: v.Get("c"), URL: v.Get("u")}
	if l.Site == "" || l.Campaign == "" || (want == Click) != (l.URL != "") {
		return Link{}, false
	}
	return l, true
}

// Path is the path of l's token on turf's public address.
func Path(token string, k Kind) string {
	if k == Open {
		return OpenPath + token + ".gif"
	}
	return ClickPath + token
}

// TokenOf returns the token of a request path and the kind the path says,
// or ok false when path is not a newsletter path.
func TokenOf(path string) (token string, k Kind, ok bool) {
	switch {
	case strings.HasPrefix(path, ClickPath):
		return path[len(ClickPath):], Click, true
	case strings.HasPrefix(path, OpenPath) && strings.HasSuffix(path, ".gif"):
		return path[len(OpenPath) : len(path)-len(".gif")], Open, true
	}
	return "", 0, false
}

// CheckSite and CheckCampaign validate what a link is made with.
func CheckSite(s string) error {
	if s == "" || strings.ContainsAny(s, "/:@ ?#") || s != strings.ToLower(s) {
		return fmt.Errorf("invalid site %q: give the bare domain in lower case, e.g. example.com", s)
	}
	return nil
}

func CheckCampaign(c string) error {
	if c == "" {
		return errors.New("a campaign is required, e.g. --campaign nieuwsbrief-2026-12")
	}
	if len(c) > MaxCampaign {
		return fmt.Errorf("campaign is %d bytes, at most %d", len(c), MaxCampaign)
	}
	for _, r := range c {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("campaign %q holds a control character", c)
		}
	}
	if looksLikeEmail(c) {
		return errors.New("the campaign looks like an e-mail address: name the newsletter issue, never a recipient")
	}
	return nil
}

// recipientParams are query parameters newsletter tools and CRMs use to
// name a recipient. Clean drops them (and any parameter whose value looks
// like an e-mail address) from a destination, because a link that carries
// one would be one person's link.
var recipientParams = map[string]bool{
	"email": true, "e": true, "mail": true, "e-mail": true, "email_address": true, "emailaddress": true,
	"uid": true, "user": true, "userid": true, "user_id": true, "u_id": true,
	"subscriber": true, "subscriber_id": true, "subscriberid": true, "sub_id": true, "subid": true,
	"recipient": true, "recipient_id": true, "recipientid": true, "rid": true,
	"contact": true, "contact_id": true, "contactid": true, "cid_contact": true,
	"mc_eid":  true, // Mailchimp: the member's unique id (mc_cid, the campaign, stays)
	"_hsenc":  true, // HubSpot
	"_hsmi":   true,
	"mkt_tok": true, // Marketo
	"vero_id": true, "vero_conv": true,
	"ml_subscriber": true, "ml_subscriber_hash": true, // MailerLite
	"ck_subscriber_id": true,                      // Kit (ConvertKit)
	"__s":              true,                      // Drip
	"oly_enc_id":       true, "oly_anon_id": true, // Omeda
	"sc_uid": true, "sc_eh": true, "sc_lid": true, "sc_llid": true, // Salesforce Marketing Cloud
	"trk_contact": true, "trk_msg": true,
	"brevo_id": true, "sib_id": true,
	"token": true, "hash": true, "key": true,
}

// Clean checks a destination and drops its recipient-looking query
// parameters, returning their names so the caller can warn. The rest of the
// URL is kept byte for byte.
func Clean(raw string) (clean string, dropped []string, err error) {
	raw = strings.TrimSpace(raw)
	if len(raw) > MaxURL {
		return "", nil, fmt.Errorf("the URL is %d bytes, at most %d", len(raw), MaxURL)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return "", nil, fmt.Errorf("invalid URL %q: give an absolute http(s) URL without user name, e.g. https://example.com/huren", raw)
	}
	if u.RawQuery == "" {
		return raw, nil, nil
	}
	base, frag, _ := strings.Cut(raw, "#")
	base, q, _ := strings.Cut(base, "?")
	var keep []string
	for _, part := range strings.Split(q, "&") {
		k, v, _ := strings.Cut(part, "=")
		name, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			name, val = k, v
		}
		if recipientParams[strings.ToLower(name)] || looksLikeEmail(val) {
			dropped = append(dropped, name)
			continue
		}
		if part != "" {
			keep = append(keep, part)
		}
	}
	clean = base
	if len(keep) > 0 {
		clean += "?" + strings.Join(keep, "&")
	}
	if frag != "" || strings.HasSuffix(raw, "#") {
		clean += "#" + frag
	}
	return clean, dropped, nil
}

func looksLikeEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	return at > 0 && strings.IndexByte(s[at:], '.') > 0
}

// Destination is where a click redirects: the link's URL, with
// utm_source=newsletter, utm_medium=email and utm_campaign added when its
// host (without "www.") is one of sites and it has no utm_ parameter yet,
// so the visit it starts counts in the Email channel. Other destinations
// are left exactly as they were made.
func Destination(l Link, sites map[string]bool) string {
	u, err := url.Parse(l.URL)
	if err != nil {
		return l.URL
	}
	host := strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
	if !sites[host] {
		return l.URL
	}
	for k := range u.Query() {
		if strings.HasPrefix(strings.ToLower(k), "utm_") {
			return l.URL
		}
	}
	base, frag, hasFrag := strings.Cut(l.URL, "#")
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
		if strings.HasSuffix(base, "?") || strings.HasSuffix(base, "&") {
			sep = ""
		}
	}
	out := base + sep + "utm_source=newsletter&utm_medium=email&utm_campaign=" + url.QueryEscape(l.Campaign)
	if hasFrag {
		out += "#" + frag
	}
	return out
}
