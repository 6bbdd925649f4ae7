package query

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"
)

// The bound and its message agree at both edges, in UTC and in zones on
// either side of it: every range the message allows is answered, the day
// after is refused with that message.
func TestDateRangeEdges(t *testing.T) {
	la, kiri := mustLoc("America/Los_Angeles"), mustLoc("Pacific/Kiritimati")
	for _, c := range []struct {
		loc        *time.Location
		start, end string
		wantErr    string // "" means allowed
	}{
		{time.UTC, "2105-12-01", "2105-12-30", ""},
		{time.UTC, "2105-12-01", "2105-12-31", ""},
		{time.UTC, "2105-12-01", "2106-01-01", "between 1971-01-01 and 2105-12-31"},
		{la, "2105-12-01", "2105-12-30", ""},
		{la, "2105-12-01", "2105-12-31", "between 1971-01-01 and 2105-12-30"},
		{kiri, "2105-12-01", "2105-12-31", ""},
		{kiri, "2105-12-01", "2106-01-01", "between 1971-01-01 and 2105-12-31"},
		{time.UTC, "1971-01-01", "1971-01-31", ""},
		{time.UTC, "1970-12-31", "1971-01-31", "between 1971-01-01 and 2105-12-31"},
		{kiri, "1971-01-01", "1971-01-31", ""},
		{time.UTC, "2105-12-31T00:00:00Z", "2105-12-31T23:59:59Z", ""},
		{time.UTC, "2105-12-31T00:00:00Z", "2106-01-01T00:00:00Z", "and 2105-12-31T23:59:59Z"},
	} {
		_, err := resolveRange(DateRangeSpec{Start: c.start, End: c.end}, c.loc, time.Now(), time.Time{})
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s %s..%s: %v, want allowed", c.loc, c.start, c.end, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s %s..%s: %v, want an error saying %q", c.loc, c.start, c.end, err, c.wantErr)
		}
	}
}

// Ranges that end at the far edge of what 18.16 can date answer the same
// as a range ending in 2040, from the raw events and from the rollup
// tables. Before the key hint was kept within 2105-12-31, a range ending
// 2105-12-30 UTC asked "toDate(ts) <= toDate('2106-01-01')", which 18.16
// reads as 0000-00-00, and answered 0 visitors.
func TestFarEndRanges(t *testing.T) {
	for _, mode := range []string{modeRaw, modeRollups} {
		e := newEnv(t, mode)
		for _, site := range []string{"example.com", "other.org"} {
			ask := func(end string, dims ...string) (string, map[string]int64) {
				before := e.engine.Routes()
				body := map[string]any{"site_id": site, "metrics": []string{"visitors", "pageviews"}, "date_range": []string{"2024-03-27", end}}
				if len(dims) > 0 {
					body["dimensions"] = dims
				}
				r := e.query(body)
				after := e.engine.Routes()
				var out string
				for _, row := range r.Results {
					out += fmt.Sprintf("%v %s %s; ", row.Dimensions, row.Metrics[0], row.Metrics[1])
				}
				delta := map[string]int64{}
				for k, v := range after {
					if v != before[k] {
						delta[k] = v - before[k]
					}
				}
				return out, delta
			}
			for _, dims := range [][]string{nil, {"visit:source"}} {
				want, wantRoutes := ask("2040-12-31", dims...)
				if strings.Contains(want, " 0 0;") || want == "" {
					t.Fatalf("%s %s: the 2040 range answers %q: no visitors to compare with", mode, site, want)
				}
				if _, raw := wantRoutes["raw"]; mode == modeRollups && (raw || len(wantRoutes) == 0) {
					t.Fatalf("%s %s %v: the 2040 range took routes %v, want a rollup route", mode, site, dims, wantRoutes)
				}
				for _, end := range []string{"2105-12-29", "2105-12-30", "2105-12-31"} {
					if site == "example.com" && end == "2105-12-31" {
						continue // past 2105-12-31 UTC in Amsterdam: refused (TestDateRangeEdges)
					}
					got, routes := ask(end, dims...)
					if got != want {
						t.Errorf("%s %s %v ..%s: %q, want %q (as ..2040-12-31)", mode, site, dims, end, got, want)
					}
					if !maps.Equal(routes, wantRoutes) {
						t.Errorf("%s %s %v ..%s: routes %v, want %v (as ..2040-12-31)", mode, site, dims, end, routes, wantRoutes)
					}
				}
			}
		}
	}
}
