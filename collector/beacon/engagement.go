package beacon

import "strconv"

// Engagement beacons. Plausible's tracker sends an event named
// "engagement" when a page is left, hidden or loses focus, with "sd" (the
// deepest scroll so far, a percentage) and "e" (milliseconds engaged since
// the previous beacon). They are read as Plausible's ingestion reads them:
// an integer or a string holding one; a scroll depth above 100 is 100, a
// negative or unreadable one is missing; an engaged time must be at least
// 0 and under 30 days (older trackers sent huge values), else it is
// missing. An engagement beacon with neither is refused.

// Engagement is the name of the engagement beacon.
const Engagement = "engagement"

// NoScrollDepth is Beacon.ScrollDepth of a beacon without one.
const NoScrollDepth = 255

// maxEngagementMS is 30 days: engaged times from then on are old trackers'
// garbage.
const maxEngagementMS = 30 * 24 * 3600 * 1000

var errBadEngagement = newErr("bad_engagement", "engagement event requires a valid integer value for at least one of 'sd' or 'e' fields")

// intValue reads a member that should hold an integer: a JSON number, or a
// string holding one. ok is false for anything else (a fraction, a word,
// null, an object), which is skipped, not an error: a bad value makes the
// field missing, as in Plausible.
func (p *parser) intValue(s *scanner) (v int64, ok bool, err *Error) {
	var text []byte
	switch c := s.peek(); {
	case c == '-' || '0' <= c && c <= '9':
		if text, err = s.number(); err != nil {
			return 0, false, err
		}
	case c == '"':
		var buf [24]byte
		if text, _, err = s.view(buf[:0]); err != nil {
			return 0, false, err
		}
	default:
		return 0, false, s.skip(0)
	}
	n, ok := parseIntText(string(text))
	return n, ok, nil
}

// engagement checks the engagement fields of an engagement beacon and
// stores them in b.
func (p *parser) engagement(b *Beacon) *Error {
	b.ScrollDepth = NoScrollDepth
	switch {
	case !p.hasSD || p.sd < 0:
	case p.sd > 100:
		b.ScrollDepth = 100
	default:
		b.ScrollDepth = uint8(p.sd)
	}
	if p.hasE && p.e >= 0 && p.e < maxEngagementMS {
		b.EngagementMS = uint32(p.e)
	}
	if b.ScrollDepth == NoScrollDepth && b.EngagementMS == 0 {
		return errBadEngagement
	}
	return nil
}

// parseIntText is intValue for a pixel's query value.
func parseIntText(v string) (int64, bool) {
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}
