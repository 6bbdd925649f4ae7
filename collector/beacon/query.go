package beacon

import "unicode/utf8"

// ParseQuery parses an event sent as query parameters, for pixels and
// clients that cannot POST. Each field has a short and a long name; the
// short one is looked up first:
//
//	n, name         event name
//	u, url          page URL
//	d, domain       site(s), comma-separated
//	r, referrer     referrer
//	p, props        props as a JSON object, e.g. {"plan":"pro","seats":3}
//	$, revenue      revenue as a JSON object: {"currency":"EUR","amount":"9.99"}
//	i, interactive  "false" or "0" for a non-interactive event; default true
//
// get returns the decoded value of a parameter, "" when absent. Its strings
// may alias a buffer the caller reuses (such as fasthttp's args): ParseQuery
// copies everything it keeps. Limits and checks are those of Parse; a value
// longer than MaxBody is too_large.
func ParseQuery(get func(key string) string) (Beacon, error) {
	p := getParser()
	defer putParser(p)
	pick := func(short, long string) string {
		if v := get(short); v != "" {
			return v
		}
		return get(long)
	}
	var err *Error
	plain := func(v string, max int, tooLong *Error) (span, bool) {
		if err != nil || v == "" {
			return span{}, false
		}
		if len(v) > MaxBody {
			err = errTooLarge
			return span{}, false
		}
		off := len(p.arena)
		p.arena = append(p.arena, v...)
		if err = checkText(p.arena[off:]); err != nil {
			return span{}, false
		}
		if max > 0 && len(v) > max {
			err = tooLong
			return span{}, false
		}
		return span{int32(off), int32(len(p.arena))}, true
	}
	p.name, p.hasName = plain(pick("n", "name"), MaxName, errNameTooLong)
	p.url, p.hasURL = plain(pick("u", "url"), MaxURL, errURLTooLong)
	p.domain, p.hasDomain = plain(pick("d", "domain"), 0, nil)
	p.referrer, _ = plain(pick("r", "referrer"), 0, nil)
	if err != nil {
		return Beacon{}, err
	}

	object := func(v string, kind objectKind) *Error {
		if v == "" {
			return nil
		}
		if len(v) > MaxBody {
			return errTooLarge
		}
		if !utf8.ValidString(v) {
			return errInvalidUTF8
		}
		p.tmp = append(p.tmp[:0], v...)
		return p.inner(p.tmp, kind)
	}
	if err := object(pick("p", "props"), kindProps); err != nil {
		return Beacon{}, err
	}
	if err := object(pick("$", "revenue"), kindRevenue); err != nil {
		return Beacon{}, err
	}
	switch pick("h", "hashMode") {
	case "", "0", "false":
	case "1", "true":
		p.hashMode = true
	default:
		return Beacon{}, errWrongType
	}
	switch pick("i", "interactive") {
	case "", "true", "1":
	case "false", "0":
		p.interactive = false
	default:
		return Beacon{}, errWrongType
	}
	if v := get("sd"); v != "" {
		p.sd, p.hasSD = parseIntText(v)
	}
	if v := get("e"); v != "" {
		p.e, p.hasE = parseIntText(v)
	}

	b, ferr := p.finish()
	if ferr != nil {
		return Beacon{}, ferr
	}
	return b, nil
}
