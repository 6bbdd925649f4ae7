// Package beacon parses the body of an event sent to the collector, in the
// shape of Plausible's Events API, into plain owned values.
//
// It knows nothing about HTTP: the handler passes the body (Parse) or a query
// lookup (ParseQuery) and gets a Beacon or an *Error whose Reason labels the
// reject counter. ParsePage then splits the event URL for storage.
//
// # Limits
//
// Limits follow Plausible's where it has them, so a site moving over keeps
// its events:
//
//	body                  8 KiB          (MaxBody; 413 too_large)
//	name                  120 bytes      name_too_long
//	url                   2000 bytes     url_too_long
//	domain                253 bytes each, 10 sites   domain_too_long, too_many_domains
//	referrer              2000 bytes     longer ones are cut, not rejected
//	props                 30             too_many_props
//	prop key / value      300 / 2000 bytes   prop_too_long
//
// Every kept string must be valid UTF-8 (invalid_utf8) and free of control
// characters: C0, DEL and C1 (control_chars). Tabs and newlines count; no
// field has a use for them and they break log lines and CSV exports.
// Bidirectional controls (U+061C, U+200E/F, U+202A-U+202E, U+2066-U+2069)
// are refused too (bidi_controls): an event name or prop with a right-to-left
// override is shown reversed on the dashboard, to spoof what was counted.
package beacon

import (
	"bytes"
	"sync"
	"unicode/utf8"
)

// Limits; see the package comment.
const (
	MaxBody       = 8 << 10
	MaxName       = 120
	MaxURL        = 2000
	MaxReferrer   = 2000
	MaxDomain     = 253
	MaxDomains    = 10
	MaxProps      = 30
	MaxPropKey    = 300
	MaxPropValue  = 2000
	maxRevenueLen = 64 // an amount string; longer is never a price
)

// Beacon is one parsed event. All strings are owned: none aliases the input.
type Beacon struct {
	Name     string
	URL      string
	Domains  []string // `domain` may list several comma-separated sites; trimmed, lower-cased, deduped
	Referrer string

	// PropKeys[i] goes with PropValues[i]; keys are unique, in body order.
	// Values are stringified: numbers keep their JSON text, booleans are
	// "true"/"false". Null, empty and nested (object/array) values are dropped,
	// as Plausible does.
	PropKeys, PropValues []string

	RevenueCurrency string // ISO 4217 upper-case, "" if none
	RevenueMicros   int64  // amount * 1e6, exact decimal parsing (no float rounding surprises), 0 if none
	Interactive     bool   // default true when absent
	// HashMode is Plausible's "h": the site routes by URL fragment, so the
	// fragment is part of the page path for this event.
	HashMode bool

	// An engagement beacon's (Name == Engagement) scroll depth, 0..100 or
	// NoScrollDepth, and engaged milliseconds (engagement.go).
	ScrollDepth  uint8
	EngagementMS uint32
}

// Error is a rejected event. Reason is short and fixed, for a metrics label
// and a debug header; Msg is for people. The values returned by this package
// are shared: do not modify them.
type Error struct {
	Reason string
	Msg    string
	Status int // 400, or 413 for too large
}

func (e *Error) Error() string { return "invalid event: " + e.Msg }

func newErr(reason, msg string) *Error { return &Error{Reason: reason, Msg: msg, Status: 400} }

// Rejects are preallocated so that a flood of bad requests costs no garbage.
var (
	errTooLarge       = &Error{Reason: "too_large", Msg: "body is larger than 8 KiB", Status: 413}
	errMalformed      = newErr("malformed_json", "body is not a JSON object")
	errWrongType      = newErr("wrong_type", "a field has the wrong JSON type")
	errInvalidUTF8    = newErr("invalid_utf8", "text is not valid UTF-8")
	errControl        = newErr("control_chars", "text contains control characters")
	errBidi           = newErr("bidi_controls", "text contains bidirectional control characters")
	errMissingName    = newErr("missing_name", "name is missing")
	errMissingURL     = newErr("missing_url", "url is missing")
	errMissingDomain  = newErr("missing_domain", "domain is missing")
	errNameTooLong    = newErr("name_too_long", "name is longer than 120 bytes")
	errURLTooLong     = newErr("url_too_long", "url is longer than 2000 bytes")
	errBadURL         = newErr("bad_url", "url is not an absolute URL with a host")
	errURLScheme      = newErr("url_scheme", "url is not http or https")
	errDomainTooLong  = newErr("domain_too_long", "a domain is longer than 253 bytes")
	errTooManyDomains = newErr("too_many_domains", "domain lists more than 10 sites")
	errBadProps       = newErr("bad_props", "props is not an object")
	errTooManyProps   = newErr("too_many_props", "more than 30 props")
	errPropTooLong    = newErr("prop_too_long", "a prop key is over 300 bytes or a value over 2000 bytes")
	errBadRevenue     = newErr("bad_revenue", "revenue needs a 3-letter currency and a decimal amount")
)

// span locates a kept string in the parser's arena.
type span struct{ off, end int32 }

func (s span) len() int { return int(s.end - s.off) }

// parser holds the state of one parse; it is pooled, so the arena and scratch
// buffers are reused and a parse allocates only what it returns.
type parser struct {
	// arena collects every kept string, decoded and checked; one string
	// conversion at the end makes them all owned at once.
	arena []byte
	keys  []byte // escaped JSON keys
	tmp   []byte // props or revenue sent as a JSON string, and revenue amounts

	name, url, domain, referrer span
	hasName, hasURL, hasDomain  bool

	props  [MaxProps]struct{ k, v span }
	nprops int

	currency    [3]byte
	hasCurrency bool
	micros      int64
	hasAmount   bool

	interactive bool
	hashMode    bool

	sd, e       int64 // engagement fields, when has*
	hasSD, hasE bool
}

var parsers = sync.Pool{New: func() any { return new(parser) }}

// Buffers that grew past this are dropped rather than pooled.
const maxPooledBuf = 4 * MaxBody

func getParser() *parser {
	p := parsers.Get().(*parser)
	*p = parser{arena: p.arena[:0], keys: p.keys[:0], tmp: p.tmp[:0], interactive: true}
	return p
}

func putParser(p *parser) {
	if cap(p.arena) > maxPooledBuf || cap(p.tmp) > maxPooledBuf {
		return
	}
	parsers.Put(p)
}

// Parse parses a JSON event body. Plausible's short keys (n, u, d, r, p, $,
// i) are accepted as well as the long ones; unknown keys are ignored; props
// and revenue may also arrive as a JSON string holding the object, as older
// trackers send them. The Content-Type does not matter: trackers use
// text/plain to avoid a CORS preflight.
//
// The result owns its strings: nothing in it aliases body, which fasthttp
// reuses once the handler returns, so the Beacon may be queued as is. An
// error is always an *Error.
func Parse(body []byte) (Beacon, error) {
	if len(body) > MaxBody {
		return Beacon{}, errTooLarge
	}
	// JSON text is UTF-8; checking once here lets the scanner copy bytes
	// without decoding runes.
	if !utf8.Valid(body) {
		return Beacon{}, errInvalidUTF8
	}
	p := getParser()
	defer putParser(p)
	s := scanner{data: body}
	if err := p.event(&s); err != nil {
		return Beacon{}, err
	}
	if !s.end() {
		return Beacon{}, errMalformed
	}
	b, err := p.finish()
	if err != nil {
		return Beacon{}, err
	}
	return b, nil
}

// event reads the top-level object.
func (p *parser) event(s *scanner) *Error {
	more, err := s.open()
	for more && err == nil {
		var key []byte
		if key, p.keys, err = s.key(p.keys); err != nil {
			return err
		}
		switch string(key) {
		case "name", "n":
			p.name, p.hasName, err = p.text(s, MaxName, errNameTooLong)
		case "url", "u":
			p.url, p.hasURL, err = p.text(s, MaxURL, errURLTooLong)
		case "domain", "d":
			p.domain, p.hasDomain, err = p.text(s, 0, nil)
		case "referrer", "r":
			p.referrer, _, err = p.text(s, 0, nil)
		case "props", "p":
			err = p.jsonOrString(s, kindProps)
		case "revenue", "$":
			err = p.jsonOrString(s, kindRevenue)
		case "interactive", "i":
			var v, ok bool
			if v, ok, err = s.boolOrNull(); ok {
				p.interactive = v
			}
		case "sd":
			p.sd, p.hasSD, err = p.intValue(s)
		case "e":
			p.e, p.hasE, err = p.intValue(s)
		case "hashMode", "h":
			// Plausible's tracker sends 1; accept a boolean too.
			switch c := s.peek(); {
			case c == 't' || c == 'f' || c == 'n':
				p.hashMode, _, err = s.boolOrNull()
			case c == '-' || (c >= '0' && c <= '9'):
				var num []byte
				if num, err = s.number(); err == nil {
					p.hashMode = string(num) != "0"
				}
			default:
				err = errWrongType
			}
		default:
			err = s.skip(0)
		}
		if err != nil {
			return err
		}
		more, err = s.next()
	}
	return err
}

// text reads a string member into the arena; null counts as absent. max > 0
// rejects longer values with tooLong.
func (p *parser) text(s *scanner, max int, tooLong *Error) (span, bool, *Error) {
	switch s.peek() {
	case 'n':
		return span{}, false, s.literal("null")
	case '"':
	default:
		return span{}, false, errWrongType
	}
	off := len(p.arena)
	var err *Error
	if p.arena, err = s.str(p.arena); err != nil {
		return span{}, false, err
	}
	sp := span{int32(off), int32(len(p.arena))}
	if err := checkText(p.arena[off:]); err != nil {
		return span{}, false, err
	}
	if max > 0 && sp.len() > max {
		return span{}, false, tooLong
	}
	return sp, true, nil
}

// Members that hold an object.
type objectKind int

const (
	kindProps objectKind = iota
	kindRevenue
)

// jsonOrString reads an object member, or a string that holds one, or null
// (absent). Anything else is bad.
func (p *parser) jsonOrString(s *scanner, kind objectKind) *Error {
	switch s.peek() {
	case '{':
		return p.object(s, kind)
	case 'n':
		return s.literal("null")
	case '"':
		var err *Error
		if p.tmp, err = s.str(p.tmp[:0]); err != nil {
			return err
		}
		return p.inner(p.tmp, kind)
	}
	return kind.bad()
}

func (k objectKind) bad() *Error {
	if k == kindProps {
		return errBadProps
	}
	return errBadRevenue
}

func (p *parser) object(s *scanner, kind objectKind) *Error {
	if kind == kindProps {
		return p.parseProps(s)
	}
	return p.parseRevenue(s)
}

// inner parses data, which must hold one object of kind. data is p.tmp, so
// nothing below may reuse tmp.
func (p *parser) inner(data []byte, kind objectKind) *Error {
	s := scanner{data: data}
	if s.peek() != '{' {
		return kind.bad()
	}
	if err := p.object(&s, kind); err != nil {
		return err
	}
	if !s.end() {
		return kind.bad()
	}
	return nil
}

func (p *parser) parseProps(s *scanner) *Error {
	p.nprops = 0 // a repeated props member replaces the earlier one
	more, err := s.open()
	for more && err == nil {
		var key []byte
		if key, p.keys, err = s.key(p.keys); err != nil {
			return err
		}
		if err = p.prop(s, key); err != nil {
			return err
		}
		more, err = s.next()
	}
	return err
}

// prop reads one props value and keeps it under key.
func (p *parser) prop(s *scanner, key []byte) *Error {
	if len(key) == 0 {
		return s.skip(0)
	}
	off := len(p.arena)
	var err *Error
	switch c := s.peek(); {
	case c == '"':
		p.arena, err = s.str(p.arena)
	case c == 't' || c == 'f':
		var v bool
		v, _, err = s.boolOrNull()
		if v {
			p.arena = append(p.arena, "true"...)
		} else {
			p.arena = append(p.arena, "false"...)
		}
	case c == '-' || '0' <= c && c <= '9':
		var num []byte
		num, err = s.number()
		p.arena = append(p.arena, num...)
	default: // null, objects and arrays are dropped, as Plausible does
		return s.skip(0)
	}
	if err != nil {
		return err
	}
	v := span{int32(off), int32(len(p.arena))}
	if v.len() == 0 {
		return nil
	}
	if err := checkText(p.arena[off:]); err != nil {
		return err
	}
	if err := checkText(key); err != nil {
		return err
	}
	if v.len() > MaxPropValue || len(key) > MaxPropKey {
		return errPropTooLong
	}
	// Duplicate keys: the last one wins, as in a JSON object decoded into a
	// map. Linear search: there are at most 30.
	for i := range p.nprops {
		if bytes.Equal(p.arena[p.props[i].k.off:p.props[i].k.end], key) {
			p.props[i].v = v
			return nil
		}
	}
	if p.nprops == MaxProps {
		return errTooManyProps
	}
	k := span{int32(len(p.arena)), 0}
	p.arena = append(p.arena, key...)
	k.end = int32(len(p.arena))
	p.props[p.nprops] = struct{ k, v span }{k, v}
	p.nprops++
	return nil
}

func (p *parser) parseRevenue(s *scanner) *Error {
	p.hasCurrency, p.hasAmount = false, false
	more, err := s.open()
	for more && err == nil {
		var key []byte
		if key, p.keys, err = s.key(p.keys); err != nil {
			return err
		}
		switch string(key) {
		case "currency":
			err = p.currencyValue(s)
		case "amount":
			err = p.amountValue(s)
		default:
			err = s.skip(0)
		}
		if err != nil {
			return err
		}
		more, err = s.next()
	}
	if err != nil {
		return err
	}
	if p.hasCurrency != p.hasAmount {
		return errBadRevenue
	}
	return nil
}

func (p *parser) currencyValue(s *scanner) *Error {
	if s.peek() != '"' {
		return errBadRevenue
	}
	var buf [8]byte
	v, _, err := s.view(buf[:0])
	if err != nil {
		return err
	}
	if len(v) != 3 {
		return errBadRevenue
	}
	for i, c := range v {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c < 'A' || c > 'Z' {
			return errBadRevenue
		}
		p.currency[i] = c
	}
	p.hasCurrency = true
	return nil
}

func (p *parser) amountValue(s *scanner) *Error {
	var num []byte
	var err *Error
	var buf [maxRevenueLen]byte
	switch c := s.peek(); {
	case c == '"':
		num, _, err = s.view(buf[:0])
		num = bytes.TrimSpace(num)
	case c == '-' || '0' <= c && c <= '9':
		num, err = s.number()
	default:
		return errBadRevenue
	}
	if err != nil {
		return err
	}
	m, ok := parseMicros(num)
	if !ok {
		return errBadRevenue
	}
	p.micros, p.hasAmount = m, true
	return nil
}

// finish checks what only the whole event can tell and builds the result.
func (p *parser) finish() (Beacon, *Error) {
	switch {
	case !p.hasName || p.name.len() == 0:
		return Beacon{}, errMissingName
	case !p.hasURL || p.url.len() == 0:
		return Beacon{}, errMissingURL
	case !p.hasDomain:
		return Beacon{}, errMissingDomain
	}
	if err := checkURL(p.arena[p.url.off:p.url.end]); err != nil {
		return Beacon{}, err
	}
	domains, n, err := p.splitDomains()
	if err != nil {
		return Beacon{}, err
	}
	if n == 0 {
		return Beacon{}, errMissingDomain
	}
	if p.referrer.len() > MaxReferrer {
		p.referrer.end = p.referrer.off + int32(cutUTF8(p.arena[p.referrer.off:p.referrer.end], MaxReferrer))
	}

	// The one copy that makes every field owned, and one slice for the
	// domains, prop keys and prop values (capped, so no append to one can
	// overwrite the next).
	owned := string(p.arena)
	str := func(s span) string { return owned[s.off:s.end] }
	lists := make([]string, n+2*p.nprops)
	b := Beacon{
		Name:        str(p.name),
		URL:         str(p.url),
		Referrer:    str(p.referrer),
		Domains:     lists[:n:n],
		Interactive: p.interactive,
		HashMode:    p.hashMode,
	}
	for i := range b.Domains {
		b.Domains[i] = str(domains[i])
	}
	if p.nprops > 0 {
		kv := lists[n:]
		b.PropKeys, b.PropValues = kv[:p.nprops:p.nprops], kv[p.nprops:]
		for i := range p.nprops {
			b.PropKeys[i] = str(p.props[i].k)
			b.PropValues[i] = str(p.props[i].v)
		}
	}
	if p.hasAmount {
		b.RevenueCurrency = currencyString(p.currency)
		b.RevenueMicros = p.micros
	}
	if b.Name == Engagement {
		if err := p.engagement(&b); err != nil {
			return Beacon{}, err
		}
	}
	return b, nil
}

// splitDomains lower-cases the domain member in place and splits it on
// commas, dropping blanks and repeats.
func (p *parser) splitDomains() ([MaxDomains]span, int, *Error) {
	var out [MaxDomains]span
	n := 0
	if !p.hasDomain {
		return out, 0, nil
	}
	d := p.arena[p.domain.off:p.domain.end]
	for i, c := range d {
		if 'A' <= c && c <= 'Z' {
			d[i] = c + 'a' - 'A'
		}
	}
	start := 0
	for start <= len(d) {
		end := bytes.IndexByte(d[start:], ',')
		if end < 0 {
			end = len(d)
		} else {
			end += start
		}
		lo, hi := start, end
		for lo < hi && d[lo] == ' ' {
			lo++
		}
		for hi > lo && d[hi-1] == ' ' {
			hi--
		}
		start = end + 1
		if lo == hi {
			continue
		}
		if hi-lo > MaxDomain {
			return out, 0, errDomainTooLong
		}
		sp := span{p.domain.off + int32(lo), p.domain.off + int32(hi)}
		dup := false
		for _, seen := range out[:n] {
			if bytes.Equal(p.arena[seen.off:seen.end], d[lo:hi]) {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		if n == MaxDomains {
			return out, 0, errTooManyDomains
		}
		out[n] = sp
		n++
	}
	return out, n, nil
}

// checkText rejects invalid UTF-8 and control characters: C0 (including tab
// and newline), DEL, and C1 (U+0080-U+009F, encoded as 0xC2 0x80-0x9F), and
// the bidirectional controls (isBidi).
func checkText(b []byte) *Error {
	ascii := true
	for i, c := range b {
		switch {
		case c < 0x20 || c == 0x7f:
			return errControl
		case c == 0xc2 && i+1 < len(b) && 0x80 <= b[i+1] && b[i+1] < 0xa0:
			return errControl
		case (c == 0xe2 || c == 0xd8) && isBidi(b[i:]):
			return errBidi
		case c >= 0x80:
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(b) {
		return errInvalidUTF8
	}
	return nil
}

// isBidi reports whether b starts with a bidirectional control: U+061C
// (D8 9C), U+200E/F (E2 80 8E/8F), U+202A-U+202E (E2 80 AA-AE), U+2066-U+2069
// (E2 81 A6-A9).
func isBidi(b []byte) bool {
	switch {
	case len(b) >= 2 && b[0] == 0xd8 && b[1] == 0x9c:
		return true
	case len(b) < 3 || b[0] != 0xe2:
		return false
	case b[1] == 0x80:
		return b[2] == 0x8e || b[2] == 0x8f || 0xaa <= b[2] && b[2] <= 0xae
	case b[1] == 0x81:
		return 0xa6 <= b[2] && b[2] <= 0xa9
	}
	return false
}

// cutUTF8 returns the length of the longest prefix of b that is at most max
// bytes and does not split a character.
func cutUTF8(b []byte, max int) int {
	if len(b) <= max {
		return len(b)
	}
	n := max
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return n
}

// Interned currency strings: a handful of currencies cover nearly every
// event, and the alternative is an allocation each.
var commonCurrencies = map[[3]byte]string{}

func init() {
	for _, c := range []string{"EUR", "USD", "GBP", "CHF", "JPY", "CAD", "AUD", "SEK", "NOK", "DKK", "PLN", "CZK", "BRL", "INR", "CNY"} {
		commonCurrencies[[3]byte([]byte(c))] = c
	}
}

func currencyString(c [3]byte) string {
	if s, ok := commonCurrencies[c]; ok {
		return s
	}
	return string(c[:])
}
