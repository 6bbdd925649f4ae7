package query

import (
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2"
	"slices"
	"strings"
	"time"
)

// The SQL builder. Every identifier in the generated SQL comes from the
// tables in this file; every value from a request (filter values, property
// keys, the site, the dates) is passed as a bound parameter. FuzzBuild checks
// both.

// VisitGap is the longest pause inside one visit.
const VisitGap = 30 * 60

// eventCols are the events columns the builder may read, and the tuple
// position each takes in the per-visitor arrays.
var eventCols = []string{
	"ts", "name", "interactive", "pathname", "hostname", "referrer_host", "referrer_path",
	"source", "channel", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term",
	"country", "device", "browser", "browser_version", "os", "os_version",
	"props_keys", "props_values", "revenue_micros", "revenue_currency",
}

// visitCol maps a visit dimension to the events column its value comes from
// (of the visit's first event; exit_page of its last).
var visitCol = map[string]string{
	"visit:entry_page": "pathname", "visit:exit_page": "pathname",
	"visit:source": "source", "visit:referrer": "referrer",
	"visit:channel": "channel", "visit:utm_source": "utm_source", "visit:utm_medium": "utm_medium",
	"visit:utm_campaign": "utm_campaign", "visit:utm_content": "utm_content", "visit:utm_term": "utm_term",
	"visit:country": "country", "visit:device": "device", "visit:browser": "browser",
	"visit:browser_version": "browser_version", "visit:os": "os", "visit:os_version": "os_version",
}

// visitAlias is the column name a visit dimension has in the per-event rows.
func visitAlias(dim string) string { return "v_" + strings.TrimPrefix(dim, "visit:") }

// aggregate columns the builder can ask for; each is an Int64.
const (
	aggVisitors  = "visitors"
	aggVisits    = "visits"
	aggBounces   = "bounces"
	aggDuration  = "duration"
	aggPageviews = "pageviews"
	aggEvents    = "events"
	aggRevenue   = "revenue"
	aggRevenueN  = "revenue_n"
)

// needs lists the aggregates a metric is computed from.
var needs = map[string][]string{
	"visitors":        {aggVisitors},
	"visits":          {aggVisits},
	"pageviews":       {aggPageviews},
	"views_per_visit": {aggPageviews, aggVisits},
	"bounce_rate":     {aggBounces, aggVisits},
	"visit_duration":  {aggDuration, aggVisits},
	"events":          {aggEvents},
	"percentage":      {aggVisitors},
	"conversion_rate": {aggVisitors},
	"total_revenue":   {aggRevenue},
	"average_revenue": {aggRevenue, aggRevenueN},
}

func isVisitAgg(a string) bool { return a == aggVisits || a == aggBounces || a == aggDuration }

// plan is one SQL statement and how to read its rows.
type plan struct {
	SQL  string
	Args []any
	Dims []string // dimension columns, in order, all String
	Aggs []string // aggregate columns after them, all Int64
	// via names the rollup table family the statement reads, if any.
	via via
	// check: the statement adds up per-day counts and returns, as its last
	// column, the most rows one group had on one day; above one, the sums
	// count some visitors twice and the query must be built with noSums.
	check bool
}

// via is what a statement reads, for the tests and the metrics.
type via int

const (
	viaRaw via = iota
	viaVisits
	viaVisitStats
	viaEventStats
	viaEventSums
	viaHourStats
	viaPropSums
	numVia
)

type builder struct {
	db       string
	site     string
	cfg      SiteConfig
	tz       string
	r        Range
	dims     []string
	filters  []Filter
	aggs     []string
	args     []any
	sessions bool
	cols     []string // event columns read, in tuple order
	// cov, when set, names the days the rollup tables answer; the rest of
	// the widened range is read from the raw events.
	cov *coverage
	// bareWindow: the edge days are read from the visits table, so the
	// raw window leaves them out too.
	bareWindow bool
	// noSums: do not add up per-day counts (a group spans several rows).
	noSums bool
	// times: the visit rows carry their event and page-view times (for
	// building the visits table).
	times bool
}

// arg binds a value: clickhouse-go writes it into the text as an escaped
// literal (18.16 has no server-side query parameters). Times are passed as
// Unix seconds so that no time zone is involved.
func (b *builder) arg(v any) string {
	if t, ok := v.(time.Time); ok {
		v = t.Unix()
		name := fmt.Sprintf("p%d", len(b.args))
		b.args = append(b.args, clickhouse.Named(name, v))
		return "toDateTime(@" + name + ")"
	}
	name := fmt.Sprintf("p%d", len(b.args))
	b.args = append(b.args, clickhouse.Named(name, v))
	return "@" + name
}

// usesVisit reports whether the query needs visits reconstructed.
func usesVisit(dims []string, filters []Filter, aggs []string) bool {
	if slices.ContainsFunc(aggs, isVisitAgg) {
		return true
	}
	if slices.ContainsFunc(dims, func(d string) bool { return strings.HasPrefix(d, "visit:") }) {
		return true
	}
	var walk func([]Filter) bool
	walk = func(fs []Filter) bool {
		for _, f := range fs {
			if strings.HasPrefix(f.Dimension, "visit:") || walk(f.Children) {
				return true
			}
		}
		return false
	}
	return walk(filters)
}

func (b *builder) need(col string) {
	if col == "referrer" {
		b.need("referrer_host")
		b.need("referrer_path")
		return
	}
	if !slices.Contains(eventCols, col) {
		panic("BUG: unknown events column " + col)
	}
	if !slices.Contains(b.cols, col) {
		b.cols = append(b.cols, col)
	}
}

// dimExpr is the expression of a dimension in the per-event rows.
func (b *builder) dimExpr(d string) string {
	switch d {
	case "event:page":
		b.need("pathname")
		return "pathname"
	case "event:hostname":
		b.need("hostname")
		return "hostname"
	case "event:name":
		b.need("name")
		return "name"
	case "event:goal":
		b.need("name")
		b.need("pathname")
		if len(b.cfg.Goals) == 0 {
			return "if(name = 'pageview', '', name)"
		}
		g := b.arg(b.cfg.Goals)
		return fmt.Sprintf("if(has(%s, %s), %s, '')", g, goalOf, goalOf)
	}
	if k, ok := strings.CutPrefix(d, propsPrefix); ok {
		b.need("props_keys")
		b.need("props_values")
		p := b.arg(k)
		p2 := b.arg(k)
		return fmt.Sprintf("if(has(props_keys, %s), props_values[indexOf(props_keys, %s)], '(none)')", p, p2)
	}
	if c, ok := visitCol[d]; ok {
		b.need(c)
		return visitAlias(d)
	}
	if isTimeDim(d) {
		b.need("ts")
		tz := b.arg(b.tz)
		switch granularity(d, b.r) {
		case "hour":
			tz2 := b.arg(b.tz)
			return fmt.Sprintf("toString(toStartOfHour(ts, %s), %s)", tz, tz2)
		case "week":
			return fmt.Sprintf("toString(toMonday(toDate(ts, %s)))", tz)
		case "month":
			return fmt.Sprintf("toString(toStartOfMonth(toDate(ts, %s)))", tz)
		default:
			return fmt.Sprintf("toString(toDate(ts, %s))", tz)
		}
	}
	panic("BUG: dimension not allowlisted: " + d)
}

// goalOf is the goal an event completes: "Visit /path" for a page view.
const goalOf = "if(name = 'pageview', concat('Visit ', pathname), name)"

// filterExpr is a filter's boolean expression in the per-event rows.
func (b *builder) filterExpr(f Filter) string {
	switch f.Op {
	case "and", "or":
		parts := make([]string, len(f.Children))
		for i, c := range f.Children {
			parts[i] = "(" + b.filterExpr(c) + ")"
		}
		return strings.Join(parts, " "+strings.ToUpper(f.Op)+" ")
	case "not":
		return "NOT (" + b.filterExpr(f.Children[0]) + ")"
	}
	var x string
	if f.Dimension == "event:goal" {
		b.need("name")
		b.need("pathname")
		x = goalOf
	} else {
		x = b.dimExpr(f.Dimension)
	}
	neg := strings.HasSuffix(f.Op, "_not")
	var e string
	switch strings.TrimSuffix(f.Op, "_not") {
	case "is":
		if f.CaseSensitive {
			e = fmt.Sprintf("has(%s, %s)", b.arg(f.Values), x)
		} else {
			e = fmt.Sprintf("has(%s, lowerUTF8(%s))", b.arg(lowerAll(f.Values)), x)
		}
	case "contains":
		parts := make([]string, len(f.Values))
		for i, v := range f.Values {
			if f.CaseSensitive {
				parts[i] = fmt.Sprintf("position(%s, %s) > 0", x, b.arg(v))
			} else {
				parts[i] = fmt.Sprintf("positionCaseInsensitiveUTF8(%s, %s) > 0", x, b.arg(v))
			}
		}
		e = strings.Join(parts, " OR ")
	case "matches":
		parts := make([]string, len(f.Values))
		for i, v := range f.Values {
			if !f.CaseSensitive {
				v = "(?i)" + v
			}
			parts[i] = fmt.Sprintf("match(%s, %s)", x, b.arg(v))
		}
		e = strings.Join(parts, " OR ")
	default:
		panic("BUG: filter operator not allowlisted: " + f.Op)
	}
	if neg {
		return "NOT (" + e + ")"
	}
	return e
}

func lowerAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strings.ToLower(v)
	}
	return out
}

// build renders the statement. The shape, from the inside out:
//
//  1. events of the site in the range, widened to whole UTC days so that
//     visits are always whole (a visitor id lives for one UTC day);
//  2. with visits: one row per visitor and day holding its events sorted by
//     time as arrays, from which array functions mark where each visit starts
//     and give every event its visit's properties; ARRAY JOIN turns that back
//     into one row per event;
//  3. the date range and the filters pick the matching events;
//  4. with visit metrics: one row per visit and dimension values, so a visit
//     counts once in each row it has matching events in;
//  5. one row per dimension values with the aggregates.
func (b *builder) build() plan {
	if b.cov != nil {
		full := len(b.cov.builds) > 0
		if full && !b.noSums && propsRoute(b.dims, b.filters, b.aggs) {
			return b.buildPropSums()
		}
		switch routeOf(b.dims, b.filters, b.aggs) {
		case routeVisits:
			if dim, ok := statsDim(b.dims, b.filters); ok && full && !b.noSums {
				return b.buildFromVisitStats(dim)
			}
			if full || len(b.cov.edgeBuilds) > 0 {
				return b.buildFromVisits()
			}
		case routeEventStats:
			if full && !b.noSums {
				return b.buildEventSums()
			}
			if full {
				return b.buildFromEventStats()
			}
		}
	}
	b.sessions = usesVisit(b.dims, b.filters, b.aggs)
	b.need("ts")
	dimExprs := make([]string, len(b.dims))
	for i, d := range b.dims {
		dimExprs[i] = b.dimExpr(d)
	}
	var where []string
	for _, f := range b.filters {
		where = append(where, "("+b.filterExpr(f)+")")
	}
	if slices.Contains(b.dims, "event:goal") {
		where = append(where, dimExprs[slices.Index(b.dims, "event:goal")]+" != ''")
	}
	revCur := ""
	for _, a := range b.aggs {
		switch a {
		case aggPageviews, aggBounces:
			b.need("name")
			if a == aggBounces {
				b.need("interactive")
			}
		case aggRevenue, aggRevenueN:
			b.need("revenue_micros")
			b.need("revenue_currency")
			if revCur == "" {
				revCur = b.arg(b.cfg.currency())
			}
		}
	}
	var src string
	if b.sessions {
		src = b.sessionSource()
	} else {
		src = b.eventSource()
	}
	rangeCond := fmt.Sprintf("ts >= %s AND ts < %s", b.arg(b.r.Start.UTC()), b.arg(b.r.End.UTC()))

	dimList := ""
	for i, e := range dimExprs {
		dimList += fmt.Sprintf("%s AS d%d, ", e, i)
	}
	conds := append([]string{rangeCond}, where...)
	var sb strings.Builder
	aggExpr := func(a string) string {
		switch a {
		case aggVisitors:
			return "uniqExact(visitor_id)"
		case aggPageviews:
			return "countIf(name = 'pageview')"
		case aggEvents:
			return "count()"
		case aggRevenue:
			return fmt.Sprintf("sumIf(revenue_micros, revenue_currency = %s)", revCur)
		case aggRevenueN:
			return fmt.Sprintf("countIf(revenue_micros != 0 AND revenue_currency = %s)", revCur)
		}
		panic("BUG: aggregate " + a)
	}
	outDims := make([]string, len(b.dims))
	for i := range b.dims {
		outDims[i] = fmt.Sprintf("d%d", i)
	}
	if !slices.ContainsFunc(b.aggs, isVisitAgg) {
		sb.WriteString("SELECT ")
		sb.WriteString(dimList)
		for i, a := range b.aggs {
			if i > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "toInt64(%s) AS a_%s", aggExpr(a), a)
		}
		fmt.Fprintf(&sb, "\nFROM (%s)\nWHERE %s", src, strings.Join(conds, "\n  AND "))
	} else {
		// Step 4: one row per visit and dimension values.
		outer := map[string]string{aggVisitors: "uniqExact(visitor_id)", aggVisits: "count()", aggBounces: "sum(v_bounce)", aggDuration: "sum(v_duration)"}
		for _, a := range b.aggs {
			if _, ok := outer[a]; !ok {
				outer[a] = "sum(p_" + a + ")"
			}
		}
		b.selectAggs(&sb, outDims, outer)
		sb.WriteString("\nFROM (\nSELECT ")
		sb.WriteString(dimList)
		sb.WriteString("visitor_id, v_start, any(v_bounce) AS v_bounce, any(v_duration) AS v_duration")
		for _, a := range b.aggs {
			if !isVisitAgg(a) && a != aggVisitors {
				fmt.Fprintf(&sb, ", %s AS p_%s", aggExpr(a), a)
			}
		}
		fmt.Fprintf(&sb, "\nFROM (%s)\nWHERE %s\nGROUP BY ", src, strings.Join(conds, "\n  AND "))
		for _, d := range outDims {
			sb.WriteString(d + ", ")
		}
		sb.WriteString("visitor_id, v_start\n)")
	}
	if len(outDims) > 0 {
		sb.WriteString("\nGROUP BY " + strings.Join(outDims, ", "))
	}
	return plan{SQL: sb.String(), Args: b.args, Dims: b.dims, Aggs: b.aggs}
}

// widened is the range stretched to whole UTC days: the days whose visitor
// ids the range touches.
func (b *builder) widened() (time.Time, time.Time) {
	s := b.r.Start.UTC().Truncate(24 * time.Hour)
	e := b.r.End.UTC()
	if t := e.Truncate(24 * time.Hour); t.Before(e) {
		e = t.Add(24 * time.Hour)
	}
	return s, e
}

func (b *builder) eventSource() string {
	cols := append([]string{"visitor_id"}, b.cols...)
	return fmt.Sprintf("SELECT %s FROM %s.events WHERE site = %s AND %s",
		strings.Join(cols, ", "), b.db, b.arg(b.site), b.tsRange(b.r.Start, b.r.End))
}

// tsRange is ts in [from, to), plus the same bounds, a day wider on either
// side, on toDate(ts): the sorting key's own expression. 18.16 derives no key
// range from a condition on ts alone and reads whole monthly partitions; the
// extra day keeps the hint a superset whatever the server's time zone.
// hintDay is t's UTC date moved by days, as a string for toDate() (18.16
// compares a Date with a bound value wrongly), and never before 1970.
func hintDay(t time.Time, days int) string {
	d := t.UTC().AddDate(0, 0, days)
	if d.Year() < 1970 {
		return "1970-01-01"
	}
	return d.Format(time.DateOnly)
}

func (b *builder) tsRange(from, to time.Time) string {
	return fmt.Sprintf("toDate(ts) >= toDate(%s) AND toDate(ts) <= toDate(%s) AND ts >= %s AND ts < %s",
		b.arg(hintDay(from, -1)), b.arg(hintDay(to, 1)),
		b.arg(from.UTC()), b.arg(to.UTC()))
}

// rawWindow is the part of the widened range read from the raw events, as
// whole UTC days: all of it, or what the rollup tables do not answer.
func (b *builder) rawWindow() [][2]time.Time {
	if b.cov != nil {
		if b.bareWindow {
			return b.cov.bare
		}
		return b.cov.raw
	}
	ws, we := b.widened()
	return [][2]time.Time{{ws, we}}
}

// windowCond restricts ts to the raw window.
func (b *builder) windowCond() string {
	w := b.rawWindow()
	if len(w) == 0 {
		return "0"
	}
	parts := make([]string, len(w))
	for i, iv := range w {
		parts[i] = b.tsRange(iv[0], iv[1])
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "(" + strings.Join(parts, ") OR (") + ")"
}

func (b *builder) sessionSource() string {
	b.need("name")
	b.need("interactive")
	pos := func(c string) int { return slices.Index(b.cols, c) + 1 }
	var sb strings.Builder
	// Per event: its own columns and its visit's properties.
	sb.WriteString("SELECT visitor_id")
	for i, c := range b.cols {
		fmt.Fprintf(&sb, ", tupleElement(e, %d) AS %s", i+1, c)
	}
	sb.WriteString(", v_start, v_duration, v_bounce")
	seen := map[string]bool{}
	for _, d := range b.allVisitDims() {
		a := visitAlias(d)
		if !seen[a] {
			seen[a] = true
			fmt.Fprintf(&sb, ", %s", a)
		}
	}
	sb.WriteString("\nFROM (\nSELECT visitor_id, evs, vis, ")
	fmt.Fprintf(&sb, "arrayMap(v -> evs[firsts[v]].1, vis) AS a_start, ")
	fmt.Fprintf(&sb, "arrayMap(v -> evs[lasts[v]].1 - evs[firsts[v]].1, vis) AS a_duration, ")
	// A bounce: exactly one page view and no other interactive event.
	fmt.Fprintf(&sb, "arrayMap(v -> toUInt8(pvc[lasts[v]] - pvc[firsts[v]] + (evs[firsts[v]].%d = 'pageview') = 1 AND ic[lasts[v]] - ic[firsts[v]] + (evs[firsts[v]].%d != 'pageview' AND evs[firsts[v]].%d = 1) = 0), vis) AS a_bounce",
		pos("name"), pos("name"), pos("interactive"))
	seen = map[string]bool{}
	for _, d := range b.allVisitDims() {
		a := visitAlias(d)
		if seen[a] {
			continue
		}
		seen[a] = true
		at := "firsts"
		if d == "visit:exit_page" {
			at = "lasts"
		}
		var x string
		if d == "visit:referrer" {
			x = fmt.Sprintf("if(evs[%s[v]].%d = '', 'Direct / None', concat(evs[%s[v]].%d, evs[%s[v]].%d))", at, pos("referrer_host"), at, pos("referrer_host"), at, pos("referrer_path"))
		} else {
			x = fmt.Sprintf("evs[%s[v]].%d", at, pos(visitCol[d]))
		}
		fmt.Fprintf(&sb, ", arrayMap(v -> %s, vis) AS a_%s", x, a)
	}
	sb.WriteString("\nFROM (\nSELECT visitor_id, evs, ")
	fmt.Fprintf(&sb, "arrayMap((x, i) -> i = 1 OR x.1 - evs[i - 1].1 > %d, evs, arrayEnumerate(evs)) AS starts, ", VisitGap)
	sb.WriteString("arrayCumSum(starts) AS vis, ")
	sb.WriteString("arrayFilter(i -> starts[i], arrayEnumerate(evs)) AS firsts, ")
	sb.WriteString("arrayFilter(i -> i = length(evs) OR starts[i + 1], arrayEnumerate(evs)) AS lasts, ")
	fmt.Fprintf(&sb, "arrayCumSum(arrayMap(x -> x.%d = 'pageview', evs)) AS pvc, ", pos("name"))
	fmt.Fprintf(&sb, "arrayCumSum(arrayMap(x -> x.%d != 'pageview' AND x.%d = 1, evs)) AS ic", pos("name"), pos("interactive"))
	// Visitor ids are per UTC day, so are visits: group by the UTC day
	// whatever the server's time zone.
	fmt.Fprintf(&sb, "\nFROM (\nSELECT visitor_id, toDate(ts, 'UTC') AS day, arraySort(x -> x.1, groupArray((%s))) AS evs\nFROM %s.events\nWHERE site = %s AND (%s)\nGROUP BY visitor_id, day\n)\n)\n%s)\n",
		strings.Join(b.cols, ", "), b.db, b.arg(b.site), b.windowCond(),
		// 18.16 drops subquery columns used only inside lambdas; this
		// WHERE keeps them.
		"WHERE length(evs) + length(firsts) + length(lasts) + length(pvc) + length(ic) >= 0\n")
	sb.WriteString("ARRAY JOIN evs AS e, a_start AS v_start, a_duration AS v_duration, a_bounce AS v_bounce")
	seen = map[string]bool{}
	for _, d := range b.allVisitDims() {
		a := visitAlias(d)
		if !seen[a] {
			seen[a] = true
			fmt.Fprintf(&sb, ", a_%s AS %s", a, a)
		}
	}
	return sb.String()
}

// allVisitDims lists the visit dimensions used as dimensions or in filters.
func (b *builder) allVisitDims() []string {
	var out []string
	add := func(d string) {
		if _, ok := visitCol[d]; ok && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	for _, d := range b.dims {
		add(d)
	}
	var walk func([]Filter)
	walk = func(fs []Filter) {
		for _, f := range fs {
			add(f.Dimension)
			walk(f.Children)
		}
	}
	walk(b.filters)
	return out
}

func named(name string, v any) any { return clickhouse.Named(name, v) }
