package app

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestScrub(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`error when serving connection "127.0.0.1:18401"<->"127.0.5.99:60512": bad`, `error when serving connection "127.0.0.0/24"<->"127.0.5.0/24": bad`},
		{`from [2001:db8:aa:bb::1]:443 and 2001:db8:aa:bb::2.`, `from 2001:db8:aa::/48 and 2001:db8:aa::/48.`},
		{`peer ::ffff:198.51.100.77 zone fe80::1%eth0`, `peer 198.51.100.0/24 zone fe80::/48`},
		{`[::1]:5555`, `::/48`},
		{`key turf_0badc0de_` + strings.Repeat("ab", 32) + ` used`, `key turf_[redacted] used`},
		{`Authorization: Bearer turf_x` + "\r\nHost: a", `Authorization: [redacted]` + "\r\nHost: a"},
		{`Cookie: turf_session=abcDEF-_123; other=1`, `Cookie: [redacted]`},
		{`turf_session=abcDEF-_123; x`, `turf_session=[redacted]; x`},
		{`GET /share/0badc0de-secret?x=1`, `GET /share/[redacted]?x=1`},
		// Idempotent: a prefix stays (or gets shorter).
		{`127.0.5.0/24 10.0.0.0/8 192.0.2.7/32`, `127.0.5.0/24 10.0.0.0/8 192.0.2.0/24`},
		// Not addresses: times, durations, versions, digests, words.
		{`2026/01/02 15:04:05 flushed 1.5s ClickHouse 18.16.1 sha deadbeef:cafe cafe.beef`, `2026/01/02 15:04:05 flushed 1.5s ClickHouse 18.16.1 sha deadbeef:cafe cafe.beef`},
		{`turf_events_accepted_total 12`, `turf_events_accepted_total 12`},
	} {
		if got := Scrub(c.in, 24, 48); got != c.want {
			t.Errorf("Scrub(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestFasthttpLoggerDropsRequestData(t *testing.T) {
	var got string
	l := fasthttpLogger(func(format string, args ...any) { got = Scrub(fmt.Sprintf(format, args...), 24, 48) })
	l.Printf("error when serving connection %q<->%q: %v", "127.0.0.1:8080", "[2001:db8::7]:5000",
		errors.New(`malformed mime header: missing colon: "Authorization turf_session=x \"y\"": buffer size=300`))
	want := `error when serving connection "127.0.0.0/24"<->"2001:db8::/48": malformed mime header: missing colon: "[request data]": buffer size=300` + "\n"
	if got+"\n" != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
