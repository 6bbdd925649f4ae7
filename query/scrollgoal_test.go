package query

import (
	"testing"
	"time"

	"turf/query/plan"
)

// Page scroll goals, transcribed from Plausible's
// query_goal_dimension_test.exs ("page scroll goals"). Plausible names a
// scroll goal freely ("Scroll /blog 90" is its page /blog and threshold
// 90); turf's name says both: "Scroll 90% /blog".
func TestScrollGoalsPlausible(t *testing.T) {
	now := time.Date(2021, 2, 1, 12, 0, 0, 0, time.UTC)
	runEngCases(t, now, []engCase{{
		plausible: `query_goal_dimension_test.exs: a scroll depth of 255 (missing) is not considered a conversion (page scroll goal filter)`,
		goals:     []string{"Scroll 90% /blog"},
		pages:     []plPage{{12, "/blog", "2021-01-01 00:00:00"}},
		engs:      []plEng{{12, "/blog", "2021-01-01 00:00:00", -1, 0}},
		query:     `"metrics":["visitors"],"filters":[["is","event:goal",["Scroll 90% /blog"]]],"date_range":"all"`,
		want:      `[{"dimensions":[],"metrics":[0]}]`,
	}, {
		plausible: `query_goal_dimension_test.exs: a scroll depth of 255 (missing) is not considered a conversion (page scroll goal breakdown)`,
		goals:     []string{"Scroll 90% /blog"},
		pages:     []plPage{{12, "/blog", "2021-01-01 00:00:00"}},
		engs:      []plEng{{12, "/blog", "2021-01-01 00:00:00", -1, 0}},
		query:     `"metrics":["visitors"],"date_range":"all","dimensions":["event:goal"]`,
		want:      `[]`,
	}, {
		plausible: `query_goal_dimension_test.exs: returns page scroll goals and pageview goals in breakdown with page filter`,
		goals:     []string{"Visit /blog", "Scroll 25% /blog"},
		pages:     []plPage{{12, "/blog", "2021-01-01 00:00:00"}, {34, "/blog", "2021-01-01 00:00:00"}, {99, "/", "2021-01-01 00:00:00"}},
		engs:      []plEng{{12, "/blog", "2021-01-01 00:00:00", 10, 0}, {34, "/blog", "2021-01-01 00:00:00", 30, 0}},
		query:     `"metrics":["visitors","events","conversion_rate"],"filters":[["is","event:page",["/blog"]]],"date_range":"all","dimensions":["event:goal"]`,
		want:      `[{"dimensions":["Visit /blog"],"metrics":[2,2,100]},{"dimensions":["Scroll 25% /blog"],"metrics":[1,0,50]}]`,
	}, {
		// turf's own: wildcards, thresholds reached or not, and the
		// conversion rate of a scroll goal filter.
		plausible: `turf: wildcard scroll goals by goal and page, and a scroll goal filter's conversion rate`,
		goals:     []string{"Scroll 50% /blog/**", "Scroll 75% /blog/*", "Signup"},
		pages: []plPage{{1, "/blog/a", "2021-01-01 00:00:00"}, {2, "/blog/a", "2021-01-01 00:00:00"}, {3, "/blog/x/y", "2021-01-01 00:00:00"},
			{4, "/blog", "2021-01-01 00:00:00"}},
		engs: []plEng{{1, "/blog/a", "2021-01-01 00:00:10", 40, 0}, {1, "/blog/a", "2021-01-01 00:00:20", 80, 0},
			{2, "/blog/a", "2021-01-01 00:00:10", 50, 0}, {3, "/blog/x/y", "2021-01-01 00:00:10", 90, 0}, {4, "/blog", "2021-01-01 00:00:10", 100, 0}},
		query: `"metrics":["visitors","events"],"date_range":"all","dimensions":["event:goal","event:page"]`,
		want: `[{"dimensions":["Scroll 50% /blog/**","/blog/a"],"metrics":[2,0]},{"dimensions":["Scroll 50% /blog/**","/blog/x/y"],"metrics":[1,0]},` +
			`{"dimensions":["Scroll 75% /blog/*","/blog/a"],"metrics":[1,0]}]`,
		anyOrder: true,
	}, {
		plausible: `turf: conversion rate of a scroll goal filter`,
		goals:     []string{"Scroll 50% /blog/**"},
		pages:     []plPage{{1, "/blog/a", "2021-01-01 00:00:00"}, {2, "/blog/a", "2021-01-01 00:00:00"}, {3, "/", "2021-01-01 00:00:00"}, {4, "/", "2021-01-01 00:00:00"}},
		engs:      []plEng{{1, "/blog/a", "2021-01-01 00:00:10", 60, 0}, {2, "/blog/a", "2021-01-01 00:00:10", 20, 0}},
		query:     `"metrics":["visitors","conversion_rate"],"date_range":"all","filters":[["is","event:goal",["Scroll 50% /blog/**"]]]`,
		want:      `[{"dimensions":[],"metrics":[1,25]}]`,
	}})
}

// What the engagements table cannot answer is refused when the query asks
// for scroll goals by name, and left out of a goal breakdown otherwise.
func TestScrollGoalsLimits(t *testing.T) {
	now := time.Date(2021, 2, 1, 12, 0, 0, 0, time.UTC)
	runEngCases(t, now, []engCase{{
		// Plausible: "returns group_conversion_rate for a page scroll goal
		// filter in source breakdown" answers; turf cannot tell a beacon's
		// source and says so.
		plausible: `turf: a scroll goal filter with a visit dimension is refused`,
		goals:     []string{"Scroll 50% /blog"},
		pages:     []plPage{{12, "/blog", "2021-01-01 00:00:00"}},
		engs:      []plEng{{12, "/blog", "2021-01-01 00:00:10", 50, 0}},
		query:     `"metrics":["visitors"],"date_range":"all","filters":[["is","event:goal",["Scroll 50% /blog"]]],"dimensions":["visit:source"]`,
		want:      `error: scroll goals can be broken down by event:page, event:hostname and time dimensions only`,
	}, {
		plausible: `turf: a goal breakdown under a visit filter lists the event goals`,
		goals:     []string{"Scroll 50% /blog", "Visit /blog"},
		pages:     []plPage{{12, "/blog", "2021-01-01 00:00:00"}},
		engs:      []plEng{{12, "/blog", "2021-01-01 00:00:10", 50, 0}},
		query:     `"metrics":["visitors"],"date_range":"all","filters":[["is_not","visit:country",["XX"]]],"dimensions":["event:goal"]`,
		want:      `[{"dimensions":["Visit /blog"],"metrics":[1]}]`,
	}, {
		plausible: `turf: mixing scroll and event goals in one filter is refused`,
		goals:     []string{"Scroll 50% /blog", "Visit /blog"},
		pages:     []plPage{{12, "/blog", "2021-01-01 00:00:00"}},
		query:     `"metrics":["visitors"],"date_range":"all","filters":[["is","event:goal",["Scroll 50% /blog","Visit /blog"]]]`,
		want:      `error: a filter on scroll goals must be a top-level is filter naming scroll goals only`,
	}})
}

func TestParseScrollGoal(t *testing.T) {
	for _, c := range []struct {
		name, re string
		ok       bool
	}{
		{"Scroll 50% /blog", `^/blog$`, true},
		{"Scroll 100% /blog/**", `^/blog/.*$`, true},
		{"Scroll 25% /docs/*/install", `^/docs/[^/]*/install$`, true},
		{"Scroll 7% /a.b+(c)", `^/a\.b\+\(c\)$`, true},
		{"Scroll 0% /blog", "", false},
		{"Scroll 101% /blog", "", false},
		{"Scroll 50% blog", "", false},
		{"Scroll 50 /blog", "", false},
		{"Visit /blog", "", false},
	} {
		g, ok := planParseScrollGoal(c.name)
		if ok != c.ok || ok && g != c.re {
			t.Errorf("%q: %q %v, want %q %v", c.name, g, ok, c.re, c.ok)
		}
	}
}

func planParseScrollGoal(name string) (string, bool) {
	g, ok := plan.ParseScrollGoal(name)
	return g.PathRegexp(), ok
}
