package query

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/query/plan"
)

var fuzzSeeds = []string{
	`{"site_id":"example.com","metrics":["visitors","visits","pageviews","bounce_rate","visit_duration","events","percentage","total_revenue","average_revenue"],"date_range":"7d","dimensions":["visit:source","event:page","time:hour"]}`,
	`{"site_id":"x","metrics":["views_per_visit","group_conversion_rate","total_revenue"],"date_range":"7d","filters":[["is","event:goal",["Signup"]],["is","event:hostname",["h'"]]]}`,
	`{"site_id":"a'b","metrics":["visitors","conversion_rate"],"date_range":["2024-01-01","2024-01-31"],"dimensions":["event:goal","event:props:x'); DROP TABLE events; --","visit:referrer","visit:exit_page","time"],"filters":[["is","event:goal",["Signup"]],["contains","visit:country",["n'l"],{"case_sensitive":false}],["or",[["matches","event:page",["^/a\\'"]],["not",["is_not","event:hostname",["x"]]]]]]}`,
	`{"site_id":"x","metrics":["events"],"date_range":"all","dimensions":["time:month"]}`,
	`{"site_id":"x","metrics":["visitors","visits","bounce_rate","visit_duration","pageviews","events"],"date_range":"30d","filters":[["is","visit:source",["a"]]]}`,
	`{"site_id":"x","metrics":["visitors","pageviews","events"],"date_range":"30d","dimensions":["event:page"],"filters":[["is","event:name",["pageview"]]]}`,
	`{"site_id":"x","metrics":["visitors"],"date_range":"7d","filters":[["is","event:goal",["Signup"],{"case_sensitive":false}],["is_not","visit:source",["X"],{"case_sensitive":false}]]}`,
	`{"site_id":"x","metrics":["events"],"date_range":"all","dimensions":["time:day"]}`,
	`{"site_id":"x","metrics":["visitors","visits","pageviews","bounce_rate","visit_duration","events","percentage"],"date_range":"30d","dimensions":["visit:source","visit:referrer","visit:exit_page"],"filters":[["contains","visit:country",["n'l"]],["is","event:hostname",["h"]],["not",["matches","visit:entry_page",["^/a\\'"]]]]}`,
	`{"site_id":"x","metrics":["visitors","pageviews","events","conversion_rate"],"date_range":"30d","dimensions":["event:goal","event:page","event:hostname","event:name"],"filters":[["is","event:goal",["Signup'"]],["contains","event:page",["/b'"],{"case_sensitive":false}]]}`,
	// visit:referrer with no filter reads the visits table's referrer column.
	`{"site_id":"x","metrics":["visits","pageviews","bounce_rate","visit_duration","events","percentage"],"date_range":"30d","dimensions":["visit:source","visit:referrer"]}`,
	`{"site_id":"x","metrics":["events"],"date_range":"all","dimensions":["time:week","event:name","event:hostname","visit:entry_page","visit:channel","visit:utm_source","visit:utm_medium","visit:utm_campaign","visit:utm_content","visit:utm_term","visit:device","visit:browser","visit:browser_version","visit:os","visit:os_version"],"filters":[["contains_not","event:props:k",["v"]],["matches_not","visit:utm_term",["\\\\"]]]}`,
}

// vocabulary is every word the builder may put into SQL: collected from the
// seeds, which use every dimension, metric and operator. Bound parameters
// are the only other words (@p0, @p1, ...).
func vocabulary(t testing.TB) map[string]bool {
	v := map[string]bool{}
	add := func(q *Query) {
		for _, p := range plansFor(q) {
			for _, w := range wordRe.FindAllString(stripLiterals(p.SQL), -1) {
				v[w] = true
			}
		}
	}
	// Every pair of fixed dimensions (and each alone), unfiltered and
	// filtered on the second, so a plan the seeds do not reach (say, one
	// dimension read from the visits table) still has its columns in the
	// vocabulary. Combinations the parser refuses are skipped: they make no
	// SQL.
	for _, d := range plan.Dimensions {
		for _, e := range plan.Dimensions {
			dims := `"` + d.Name + `"`
			if e.Name != d.Name {
				dims += `,"` + e.Name + `"`
			}
			for _, f := range []string{``, `,"filters":[["is","` + e.Name + `",["a"]]]`} {
				body := `{"site_id":"x","metrics":["visitors","visits","pageviews","bounce_rate","visit_duration","events"],"date_range":"30d","dimensions":[` + dims + `]` + f + `}`
				if q, err := ParseRequest([]byte(body)); err == nil {
					add(q)
				}
			}
		}
	}
	for _, s := range fuzzSeeds {
		q, err := ParseRequest([]byte(s))
		if err != nil {
			t.Fatalf("seed %s: %v", s, err)
		}
		add(q)
	}
	return v
}

var (
	wordRe     = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
	paramRe    = regexp.MustCompile(`^p[0-9]+$`)
	staticLits = []string{"'pageview'", "'Direct / None'", "'(none)'", "'Visit '", "'UTC'", "''", "'/+$'", "'" + plan.MachineProp + "'"}
)

func stripLiterals(sql string) string {
	for _, l := range staticLits {
		sql = strings.ReplaceAll(sql, l, "")
	}
	return sql
}

func plansFor(q *Query) []statement {
	r := Range{Start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), Dates: true}
	var out []statement
	for _, goals := range [][]string{nil, {"Signup", "Visit /x'"}} {
		b := &builder{db: "turf", site: q.Site, cfg: SiteConfig{Goals: goals}, tz: "Europe/Amsterdam", r: r, dims: q.Dimensions, filters: q.Filters, aggs: plan.AggsFor(q.Metrics)}
		out = append(out, b.build())
		b = &builder{db: "turf", site: q.Site, tz: "UTC", r: r, dims: q.Dimensions, filters: plan.WithoutGoals(q.Filters), aggs: []string{plan.AggVisitors}}
		out = append(out, b.build())
		// The same with most days read from the rollup tables.
		cov := &coverage{raw: [][2]time.Time{{r.Start, r.Start.AddDate(0, 0, 1)}, {r.End.AddDate(0, 0, -1), r.End}}}
		for d := r.Start.AddDate(0, 0, 1); d.Before(r.End.AddDate(0, 0, -1)); d = d.AddDate(0, 0, 1) {
			cov.days, cov.builds = append(cov.days, d), append(cov.builds, uint64(len(cov.days)))
		}
		cov.bare = cov.raw
		// And with the first and last day read from the visits table.
		edged := &coverage{days: cov.days, builds: cov.builds, raw: cov.raw,
			edges: []time.Time{r.Start, r.End.AddDate(0, 0, -1)}, edgeBuilds: []uint64{100, 101}}
		for _, c := range []*coverage{cov, edged} {
			for _, noSums := range []bool{false, true} {
				b = &builder{db: "turf", site: q.Site, cfg: SiteConfig{Goals: goals}, tz: "UTC", r: r, dims: q.Dimensions, filters: q.Filters, aggs: plan.AggsFor(q.Metrics), cov: c, noSums: noSums}
				out = append(out, b.build())
				b = &builder{db: "turf", site: q.Site, tz: "UTC", r: r, dims: q.Dimensions, filters: plan.WithoutGoals(q.Filters), aggs: []string{plan.AggVisitors}, cov: c, noSums: noSums}
				out = append(out, b.build())
			}
		}
	}
	return out
}

// FuzzBuild feeds arbitrary bodies to the parser and checks that whatever
// it accepts becomes SQL made only of the builder's own words and bound
// parameters: no byte of the request reaches ClickHouse unescaped.
func FuzzBuild(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Add(`{"site_id":"x","metrics":["visitors"],"date_range":"7d","filters":[["and",[["is","visit:source",["a"]]]]]}`)
	vocab := vocabulary(f)
	f.Fuzz(func(t *testing.T, body string) {
		q, err := ParseRequest([]byte(body))
		if err != nil {
			if _, ok := err.(*BadRequest); !ok {
				t.Fatalf("not a BadRequest: %v", err)
			}
			return
		}
		for _, p := range plansFor(q) {
			sql := stripLiterals(p.SQL)
			if strings.ContainsAny(sql, `'"\`) {
				t.Fatalf("a quote or backslash outside the builder's literals:\n%s", p.SQL)
			}
			if strings.Count(sql, "`") != strings.Count(p.SQL, "`turf`")*2 {
				t.Fatalf("a backtick other than the database name:\n%s", p.SQL)
			}
			for _, w := range wordRe.FindAllString(sql, -1) {
				if !vocab[w] && !paramRe.MatchString(w) && !slices.Contains([]string{"turf"}, w) {
					t.Fatalf("word %q is not the builder's:\n%s", w, p.SQL)
				}
			}
			for _, m := range regexp.MustCompile(`@p[0-9]+`).FindAllString(p.SQL, -1) {
				found := false
				for _, a := range p.Args {
					if named, ok := a.(driver.NamedValue); ok && "@"+named.Name == m {
						found = true
					}
				}
				if !found {
					t.Fatalf("placeholder %s has no argument", m)
				}
			}
		}
	})
}
