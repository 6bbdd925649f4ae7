package query

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"turf/query/synth"
)

func orNotSet(s string) string {
	if s == "" {
		return "(not set)"
	}
	return s
}

// engAgg is the oracle's engagement figures of one group: per visit (a
// visitor's UTC day), the deepest scroll and the summed engaged time.
type engAgg struct {
	scroll map[[2]uint64]int // visit -> deepest scroll, -1: none
	ms     map[[2]uint64]int64
}

// engagements computes scroll_depth and time_on_page per group from the
// generator's engagement beacons, as docs and plan/engagement.go define
// them, with none of the SQL: the beacons in the range that match the
// filters, grouped by the query's dimensions of their own page and time.
func (o *oracle) engagements(q oq) map[string]*engAgg {
	out := map[string]*engAgg{}
	for _, g := range o.engs {
		if g.Site != q.site || g.TS.Before(q.start) || !g.TS.Before(q.end) {
			continue
		}
		ev := &synth.Event{Site: g.Site, TS: g.TS, Hostname: g.Hostname, Pathname: g.Pathname}
		ok := true
		for _, f := range q.filters {
			ok = ok && o.match(q, f, ev, nil)
		}
		if !ok {
			continue
		}
		var key []string
		for _, d := range q.dims {
			v, _ := o.dimValue(q, d, ev, nil)
			key = append(key, v)
		}
		k := strings.Join(key, "\x00")
		a := out[k]
		if a == nil {
			a = &engAgg{scroll: map[[2]uint64]int{}, ms: map[[2]uint64]int64{}}
			out[k] = a
		}
		visit := [2]uint64{g.VisitorID, uint64(g.TS.UTC().Truncate(24 * time.Hour).Unix())}
		if _, seen := a.scroll[visit]; !seen {
			a.scroll[visit] = -1
		}
		if g.ScrollDepth <= 100 && int(g.ScrollDepth) > a.scroll[visit] {
			a.scroll[visit] = int(g.ScrollDepth)
		}
		a.ms[visit] += int64(g.EngagementMS)
	}
	return out
}

// value is scroll_depth or time_on_page of the group; nil for none.
func (a *engAgg) value(m string) any {
	if a == nil {
		return nil
	}
	var sum, n float64
	for v, sd := range a.scroll {
		if m == "scroll_depth" && sd >= 0 {
			sum += float64(sd)
			n++
		}
		if m == "time_on_page" {
			sum += float64(a.ms[v])
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if m == "time_on_page" {
		return math.Round(sum / n / 1000)
	}
	return math.Round(sum / n)
}

// checkEngagement runs a query with visitors and the engagement metrics
// and compares them with the oracle: the groups are those with events,
// their engagement figures those of their beacons.
func (e *env) checkEngagement(name string, body map[string]any, q oq) {
	e.t.Run(name, func(t *testing.T) {
		env := *e
		env.t = t
		r := env.query(body)
		metrics := body["metrics"].([]string)
		groups := e.or.run(q)
		if len(q.dims) == 0 && len(groups) == 0 {
			groups[""] = nil
		}
		engs := e.or.engagements(q)
		nonNull := 0
		got := map[string]bool{}
		for _, row := range r.Results {
			k := strings.Join(row.Dimensions, "\x00")
			got[k] = true
			a, ok := groups[k]
			if !ok {
				t.Errorf("unexpected row %q", row.Dimensions)
				continue
			}
			for i, m := range metrics {
				var want any
				if m == "visitors" {
					want = a.value(m, 0)
				} else {
					want = engs[k].value(m)
				}
				var g any
				if err := json.Unmarshal(row.Metrics[i], &g); err != nil {
					t.Fatal(err)
				}
				if want != nil && m != "visitors" {
					nonNull++
				}
				if fmt.Sprint(g) != fmt.Sprint(want) {
					t.Errorf("row %q metric %s = %v, want %v", row.Dimensions, m, g, want)
				}
			}
		}
		for k := range groups {
			if !got[k] {
				t.Errorf("missing row %q", strings.Split(k, "\x00"))
			}
		}
		if nonNull == 0 {
			t.Errorf("no row has an engagement figure: the case tests nothing")
		}
	})
}

// engagementCases are the oracle's cases of scroll_depth and time_on_page:
// by page, by page and hostname, per day and hour on a page filter, over
// the given range.
func engagementCases(e *env, dr any, start, end time.Time) {
	site := "example.com"
	ms := []string{"visitors", "scroll_depth", "time_on_page"}
	blog := []any{[]any{"contains", "event:page", []string{"blog"}}}
	blogF := []Filter{{Op: "contains", Dimension: "event:page", Values: []string{"blog"}, CaseSensitive: true}}
	for _, c := range []struct {
		name    string
		dims    []string
		gran    string
		fj      []any
		filters []Filter
	}{
		{"by page", []string{"event:page"}, "", nil, nil},
		{"by page and hostname", []string{"event:page", "event:hostname"}, "", nil, nil},
		{"blog pages per day", []string{"time:day"}, "day", blog, blogF},
		{"blog pages per hour", []string{"time:hour"}, "hour", blog, blogF},
		{"blog aggregate", nil, "", blog, blogF},
		{"blog by page, www only", []string{"event:page"}, "", append([]any{[]any{"contains", "event:hostname", []string{"www."}}}, blog...),
			append([]Filter{{Op: "contains", Dimension: "event:hostname", Values: []string{"www."}, CaseSensitive: true}}, blogF...)},
	} {
		body := map[string]any{"site_id": site, "metrics": ms, "date_range": dr}
		if c.dims != nil {
			body["dimensions"] = c.dims
		}
		if c.fj != nil {
			body["filters"] = c.fj
		}
		e.checkEngagement("engagement/"+c.name, body, oq{site: site, start: start, end: end, dims: c.dims, gran: c.gran, filters: c.filters})
	}
}
