package beacon

import (
	"strings"
)

// Bounds of what ParsePage returns; longer values are cut at a character
// boundary rather than rejected, since the event itself is fine.
const (
	MaxPath     = 2000
	MaxCampaign = 200
)

// Page is the event URL split the way the stats need it.
type Page struct {
	Host     string // lower-case, without port, brackets or trailing dot
	Path     string // percent-decoded when that gives clean text; "/" when empty
	Campaign Campaign
}

// Campaign holds the UTM parameters of the page URL.
type Campaign struct {
	Source, Medium, Campaign, Content, Term string
	// ClickID is the name of an ad click-id parameter on the URL ("gclid" or
	// "msclkid"): auto-tagged paid clicks carry no utm_*. Only the name is
	// kept, never the value, which identifies one click.
	ClickID string
}

// ParsePage splits an event URL (normally Beacon.URL) into host, path and
// campaign parameters.
//
// The path has no query; the fragment is dropped unless keepFragment (sites
// that route with #/... want it, as in Plausible's hash mode), and is then
// appended as "#fragment". Campaign values come from utm_source, utm_medium,
// utm_campaign, utm_content and utm_term, first non-empty one wins; `ref`
// and then `source` stand in for a missing utm_source. Path is cut at
// MaxPath bytes and campaign values at MaxCampaign.
//
// The results may share memory with rawURL, which is fine for an owned string
// such as Beacon.URL. An error is an *Error, as from Parse.
func ParsePage(rawURL string, keepFragment bool) (Page, error) {
	u, err := splitURL(rawURL)
	if err != nil {
		return Page{}, err
	}
	var pg Page
	pg.Host = strings.TrimSuffix(strings.ToLower(rawURL[u.host:u.hostEnd]), ".")

	path := rawURL[u.path:u.pathEnd]
	if strings.IndexByte(path, '%') >= 0 {
		if dec, ok := unescape(path, false); ok && checkText([]byte(dec)) == nil {
			path = dec
		}
	}
	if path == "" {
		path = "/"
	}
	if keepFragment && u.hash+1 < len(rawURL) {
		path += rawURL[u.hash:]
	}
	pg.Path = path[:cutUTF8String(path, MaxPath)]

	var ref, source string
	query := rawURL[u.query:u.queryEnd]
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		key, val, _ := strings.Cut(pair, "=")
		var dst *string
		switch key {
		case "utm_source":
			dst = &pg.Campaign.Source
		case "utm_medium":
			dst = &pg.Campaign.Medium
		case "utm_campaign":
			dst = &pg.Campaign.Campaign
		case "utm_content":
			dst = &pg.Campaign.Content
		case "utm_term":
			dst = &pg.Campaign.Term
		case "ref":
			dst = &ref
		case "source":
			dst = &source
		case "gclid", "msclkid":
			if pg.Campaign.ClickID == "" {
				pg.Campaign.ClickID = key
			}
			continue
		default:
			continue
		}
		if *dst == "" {
			*dst = campaignValue(val)
		}
	}
	if pg.Campaign.Source == "" {
		pg.Campaign.Source = ref
	}
	if pg.Campaign.Source == "" {
		pg.Campaign.Source = source
	}
	return pg, nil
}

// campaignValue decodes one query value; values that do not decode to clean
// text are dropped rather than stored as garbage.
func campaignValue(v string) string {
	if strings.ContainsAny(v, "%+") {
		dec, ok := unescape(v, true)
		if !ok {
			return ""
		}
		v = dec
	}
	v = strings.TrimSpace(v)
	if checkText([]byte(v)) != nil {
		return ""
	}
	return v[:cutUTF8String(v, MaxCampaign)]
}

// urlParts indexes the pieces of an absolute http(s) URL:
// rawURL[host:hostEnd], [path:pathEnd], [query:queryEnd]; hash is the index
// of '#', or len(rawURL) when there is no fragment. Missing pieces are empty
// ranges.
type urlParts struct {
	host, hostEnd   int
	path, pathEnd   int
	query, queryEnd int
	hash            int
}

// splitURL checks that u is an absolute http or https URL with a plausible
// host and indexes its parts. It is shared by Parse (validation only) and
// ParsePage, and allocates nothing. It is stricter than net/url about hosts,
// which come from location.href and so are already normalised by browsers.
func splitURL[T string | []byte](u T) (urlParts, *Error) {
	var p urlParts
	// Scheme: a letter, then letters, digits, + - . up to the colon.
	colon := -1
	for i := 0; i < len(u); i++ {
		c := u[i]
		if c == ':' && i > 0 {
			colon = i
			break
		}
		isAlpha := 'a' <= c|0x20 && c|0x20 <= 'z'
		if !isAlpha && (i == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return p, errBadURL
		}
	}
	if colon < 0 {
		return p, errBadURL
	}
	if !equalFold(u[:colon], "http") && !equalFold(u[:colon], "https") {
		return p, errURLScheme
	}
	i := colon + 1
	if len(u)-i < 2 || u[i] != '/' || u[i+1] != '/' {
		return p, errBadURL
	}
	i += 2
	authEnd := i
	for authEnd < len(u) && u[authEnd] != '/' && u[authEnd] != '?' && u[authEnd] != '#' {
		authEnd++
	}
	// Drop user info: the host follows the last '@'.
	hostStart := i
	for j := i; j < authEnd; j++ {
		if u[j] == '@' {
			hostStart = j + 1
		}
	}
	hostEnd, portStart := authEnd, authEnd
	if hostStart < authEnd && u[hostStart] == '[' {
		end := hostStart + 1
		for end < authEnd && u[end] != ']' {
			c := u[end]
			if !(isHex(c) || c == ':' || c == '.') {
				return p, errBadURL
			}
			end++
		}
		if end == authEnd || end == hostStart+1 {
			return p, errBadURL
		}
		p.host, p.hostEnd = hostStart+1, end
		portStart = end + 1
		if portStart < authEnd && u[portStart] != ':' {
			return p, errBadURL
		}
	} else {
		for j := hostStart; j < authEnd; j++ {
			if u[j] == ':' {
				hostEnd, portStart = j, j
				break
			}
			if !hostChar(u[j]) {
				return p, errBadURL
			}
		}
		if hostEnd == hostStart {
			return p, errBadURL
		}
		p.host, p.hostEnd = hostStart, hostEnd
	}
	if portStart < authEnd { // ":digits", possibly empty as net/url allows
		port := u[portStart+1 : authEnd]
		if len(port) > 5 {
			return p, errBadURL
		}
		for j := 0; j < len(port); j++ {
			if port[j] < '0' || port[j] > '9' {
				return p, errBadURL
			}
		}
	}

	p.path, p.hash = authEnd, len(u)
	for j := authEnd; j < len(u); j++ {
		if u[j] == '#' {
			p.hash = j
			break
		}
	}
	p.pathEnd, p.query, p.queryEnd = p.hash, p.hash, p.hash
	for j := authEnd; j < p.hash; j++ {
		if u[j] == '?' {
			p.pathEnd, p.query = j, j+1
			break
		}
	}
	return p, nil
}

// hostChar allows what may appear in a registered name: unreserved and
// sub-delims characters, and non-ASCII bytes for hosts typed in Unicode.
func hostChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c >= 0x80:
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=", c) >= 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f'
}

// equalFold compares ASCII case-insensitively; lower is lower-case.
func equalFold[T string | []byte](s T, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// checkURL validates the url member for Parse.
func checkURL(b []byte) *Error {
	_, err := splitURL(b)
	return err
}

// unescape decodes %XX (and '+' as space when plus is set). It fails on a
// malformed escape, like net/url.
func unescape(s string, plus bool) (string, bool) {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", false
			}
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		case c == '+' && plus:
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c | 0x20 - 'a' + 10
}

func cutUTF8String(s string, max int) int {
	if len(s) <= max {
		return len(s)
	}
	n := max
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return n
}
