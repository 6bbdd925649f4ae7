package query

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Reading the rollup tables (schema/0004_rollups.up.sql). A query whose
// dimensions, filters and metrics the rollups can answer reads them for the
// built UTC days of its range (see coverage), and the raw events for the
// rest, in one statement whose parts one outer GROUP BY adds up, so that the
// figures are exactly those of the raw path.
//
// Visitor ids change every UTC day, so the distinct visitors of several
// days are the sum of each day's. The stats tables (visit_stats,
// event_stats) hold each day's distinct visitors per group as a count;
// adding them up is exact as long as each group of the query is a single
// row on each day. Each such statement also returns the largest number of
// rows a group had on one day, and a query where that exceeds one is run
// again on the per-visit rows or the uniq states (plan.check).

// route names the table family that can answer a query.
type route int

const (
	routeRaw route = iota
	routeVisits
	routeEventStats
)

// statsDims are the event dimensions event_stats is keyed by.
var statsDims = []string{"event:page", "event:hostname", "event:name", "event:goal"}

// routeOf picks the table family that answers the query exactly.
//
//   - visits: visit dimensions and filters only (every event of a visit
//     carries its visit's values, so an event matches exactly when its visit
//     does), no revenue.
//   - event_stats: event:page, event:hostname, event:name and event:goal
//     dimensions and filters only (each a function of the key), with
//     visitors, pageviews and events.
//
// Time dimensions, props and revenue always read the raw events.
func routeOf(dims []string, filters []Filter, aggs []string) route {
	leaves := filterDims(filters)
	isVisit := func(d string) bool { _, ok := visitCol[d]; return ok }
	isStat := func(d string) bool { return slices.Contains(statsDims, d) }
	all := func(ds []string, f func(string) bool) bool {
		for _, d := range ds {
			if !f(d) {
				return false
			}
		}
		return true
	}
	visitAggs := []string{aggVisitors, aggVisits, aggBounces, aggDuration, aggPageviews, aggEvents}
	statAggs := []string{aggVisitors, aggPageviews, aggEvents}
	if all(dims, isVisit) && all(leaves, isVisit) && all(aggs, func(a string) bool { return slices.Contains(visitAggs, a) }) {
		return routeVisits
	}
	if all(dims, isStat) && all(leaves, isStat) && all(aggs, func(a string) bool { return slices.Contains(statAggs, a) }) {
		return routeEventStats
	}
	return routeRaw
}

// filterDims lists the dimensions of every leaf filter.
func filterDims(fs []Filter) []string {
	var out []string
	for _, f := range fs {
		if f.Dimension != "" {
			out = append(out, f.Dimension)
		}
		out = append(out, filterDims(f.Children)...)
	}
	return out
}

// coverage says which UTC days of a range the rollup tables answer.
type coverage struct {
	days       []time.Time    // built days fully inside the range, ascending
	builds     []uint64       // the build to read for each of them
	edges      []time.Time    // built days the range starts or ends inside
	edgeBuilds []uint64       // the build to read for each of them
	raw        [][2]time.Time // the widened range without days, in whole UTC days
	bare       [][2]time.Time // the same without edges either
}

// rawInRange reports whether the raw window overlaps the range at all.
func (b *builder) rawInRange() bool {
	for _, iv := range b.rawWindow() {
		if iv[0].Before(b.r.End) && b.r.Start.Before(iv[1]) {
			return true
		}
	}
	return false
}

// daysWhere selects the rows of a rollup table for the given days and builds.
func (b *builder) daysWhere(days []time.Time, builds []uint64) string {
	return fmt.Sprintf("site = %s AND day >= toDate(%s) AND day <= toDate(%s) AND has(%s, build)",
		b.arg(b.site), b.arg(days[0].Format(time.DateOnly)), b.arg(days[len(days)-1].Format(time.DateOnly)), b.arg(builds))
}

func (b *builder) dimsAndWhere() (dimList string, outDims []string, where []string) {
	for i, d := range b.dims {
		dimList += fmt.Sprintf("%s AS d%d, ", b.dimExpr(d), i)
		outDims = append(outDims, fmt.Sprintf("d%d", i))
	}
	for _, f := range b.filters {
		where = append(where, "("+b.filterExpr(f)+")")
	}
	if i := slices.Index(b.dims, "event:goal"); i >= 0 {
		where = append(where, fmt.Sprintf("d%d != ''", i))
	}
	return dimList, outDims, where
}

// perVisit names the per-visit columns the visits parts yield for the
// query's aggregates (after the dimensions, visitor_id and v_start), and
// how the outer query adds them up.
func (b *builder) perVisit() (cols []string, outer map[string]string) {
	outer = map[string]string{aggVisitors: "uniqExact(visitor_id)", aggVisits: "count()"}
	for _, a := range b.aggs {
		switch a {
		case aggBounces:
			cols, outer[a] = append(cols, "v_bounce"), "sum(v_bounce)"
		case aggDuration:
			cols, outer[a] = append(cols, "v_duration"), "sum(v_duration)"
		case aggPageviews:
			cols, outer[a] = append(cols, "p_pageviews"), "sum(p_pageviews)"
		case aggEvents:
			cols, outer[a] = append(cols, "p_events"), "sum(p_events)"
		}
	}
	return cols, outer
}

// visitsTable reads one row per visit of the given days from the visits
// table, its columns renamed to the per-event aliases the dimension and
// filter expressions use. Inside the range's edge days, only the visit's
// events in the range count, and a visit without any is left out, as on
// the raw path.
func (b *builder) visitsTable(days []time.Time, builds []uint64, edge bool, dimList string, cols, where []string) string {
	var sb strings.Builder
	sb.WriteString("SELECT " + dimList + "visitor_id, v_start")
	for _, c := range cols {
		fmt.Fprintf(&sb, ", %s", c)
	}
	sb.WriteString("\nFROM (SELECT visitor_id, start AS v_start, toInt64(bounce) AS v_bounce, toInt64(duration) AS v_duration")
	if edge {
		from, to := b.arg(b.r.Start.UTC()), b.arg(b.r.End.UTC())
		from2, to2 := b.arg(b.r.Start.UTC()), b.arg(b.r.End.UTC())
		fmt.Fprintf(&sb, ", toInt64(arrayCount(t -> t >= %s AND t < %s, pageview_times)) AS p_pageviews, toInt64(arrayCount(t -> t >= %s AND t < %s, event_times)) AS p_events", from, to, from2, to2)
	} else {
		sb.WriteString(", toInt64(pageviews) AS p_pageviews, toInt64(events) AS p_events")
	}
	for _, d := range b.allVisitDims() {
		fmt.Fprintf(&sb, ", %s AS %s", strings.TrimPrefix(d, "visit:"), visitAlias(d))
	}
	fmt.Fprintf(&sb, " FROM %s.visits WHERE %s)", b.db, b.daysWhere(days, builds))
	if edge {
		where = append([]string{"p_events > 0"}, where...)
	}
	if len(where) > 0 {
		sb.WriteString("\nWHERE " + strings.Join(where, "\n  AND "))
	}
	return sb.String()
}

// visitParts is a UNION ALL of one row per visit (dimensions, visitor_id,
// v_start, cols) for the range: from the visits table for the full days
// (when full) and the edge days, and rebuilt from the raw events for the
// rest.
func (b *builder) visitParts(full bool, dimList string, cols, where []string) string {
	c := b.cov
	var parts []string
	if full && len(c.days) > 0 {
		parts = append(parts, b.visitsTable(c.days, c.builds, false, dimList, cols, where))
	}
	if len(c.edges) > 0 {
		parts = append(parts, b.visitsTable(c.edges, c.edgeBuilds, true, dimList, cols, where))
	}
	b.bareWindow = true
	if b.rawInRange() {
		var sb strings.Builder
		sb.WriteString("SELECT " + dimList + "visitor_id, v_start")
		for _, c := range cols {
			fmt.Fprintf(&sb, ", toInt64(%s) AS %s", c, c)
		}
		fmt.Fprintf(&sb, "\nFROM (%s)", b.visitRows())
		if len(where) > 0 {
			sb.WriteString("\nWHERE " + strings.Join(where, "\n  AND "))
		}
		parts = append(parts, sb.String())
	}
	if len(parts) == 0 {
		// Nothing to read: an empty part keeps the statement's shape.
		var sb strings.Builder
		sb.WriteString("SELECT " + dimList + "visitor_id, v_start")
		for _, c := range cols {
			fmt.Fprintf(&sb, ", toInt64(0) AS %s", c)
		}
		sb.WriteString("\nFROM (SELECT toUInt64(0) AS visitor_id, toDateTime(0) AS v_start")
		for _, d := range b.allVisitDims() {
			fmt.Fprintf(&sb, ", '' AS %s", visitAlias(d))
		}
		sb.WriteString(") WHERE 0")
		parts = append(parts, sb.String())
	}
	return strings.Join(parts, "\nUNION ALL\n")
}

// selectAggs starts the outer SELECT: the dimensions, then each aggregate
// as outer makes it.
func (b *builder) selectAggs(sb *strings.Builder, outDims []string, outer map[string]string) {
	sb.WriteString("SELECT ")
	for _, d := range outDims {
		sb.WriteString(d + ", ")
	}
	for i, a := range b.aggs {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(sb, "toInt64(%s) AS a_%s", outer[a], a)
	}
}

// groupBy ends a SELECT with its GROUP BY, if it has dimensions.
func groupBy(sb *strings.Builder, dims []string) {
	if len(dims) > 0 {
		sb.WriteString("\nGROUP BY " + strings.Join(dims, ", "))
	}
}

// sumsHead starts a statement that adds up parts yielding, after the
// dimensions, an s_<aggregate> column each and s_n (rows of a group in a
// day); sumsTail ends it.
func (b *builder) sumsHead(sb *strings.Builder, outDims []string) {
	sb.WriteString("SELECT ")
	for _, d := range outDims {
		sb.WriteString(d + ", ")
	}
	for _, a := range b.aggs {
		fmt.Fprintf(sb, "toInt64(sum(s_%s)) AS a_%s, ", a, a)
	}
	sb.WriteString("toInt64(max(s_n)) AS check_n\nFROM (\n")
}

// dayCounts starts the part of a sums statement that reads a stats table:
// per day and group, the sum of each aggregate's column (col) and the
// number of rows, FROM what the caller writes next.
func (b *builder) dayCounts(sb *strings.Builder, outDims []string, col map[string]string) {
	sb.WriteString("SELECT ")
	for _, d := range outDims {
		sb.WriteString(d + ", ")
	}
	for _, a := range b.aggs {
		fmt.Fprintf(sb, "toInt64(sum(%s)) AS s_%s, ", col[a], a)
	}
	sb.WriteString("toInt64(count()) AS s_n\nFROM ")
}

func sumsTail(sb *strings.Builder, outDims []string) {
	sb.WriteString("\n)")
	groupBy(sb, outDims)
}

// rawEventsPart is the UNION ALL part that reads the raw window's events in
// the range: the dimensions, then cols, one row per group.
func (b *builder) rawEventsPart(sb *strings.Builder, dimList string, cols []string, where, outDims []string) {
	if !b.rawInRange() {
		return
	}
	conds := append([]string{
		"site = " + b.arg(b.site),
		fmt.Sprintf("ts >= %s AND ts < %s", b.arg(b.r.Start.UTC()), b.arg(b.r.End.UTC())),
		"(" + b.windowCond() + ")",
	}, where...)
	fmt.Fprintf(sb, "\nUNION ALL\nSELECT %s%s\nFROM %s.events\nWHERE %s", dimList, strings.Join(cols, ", "), b.db, strings.Join(conds, "\n  AND "))
	groupBy(sb, outDims)
}

// rawSums are the columns of a raw events part of a sums statement.
func (b *builder) rawSums() []string {
	raw := map[string]string{aggVisitors: "uniqExact(visitor_id)", aggPageviews: "countIf(name = 'pageview')", aggEvents: "count()"}
	var cols []string
	for _, a := range b.aggs {
		cols = append(cols, fmt.Sprintf("toInt64(%s) AS s_%s", raw[a], a))
	}
	return append(cols, "toInt64(1) AS s_n")
}

// buildFromVisits reads one row per visit: from the visits table for the
// built days, rebuilt from the raw events for the others.
func (b *builder) buildFromVisits() plan {
	b.need("ts")
	dimList, outDims, where := b.dimsAndWhere()
	cols, outer := b.perVisit()
	var sb strings.Builder
	b.selectAggs(&sb, outDims, outer)
	sb.WriteString("\nFROM (\n" + b.visitParts(true, dimList, cols, where) + "\n)")
	groupBy(&sb, outDims)
	return plan{SQL: sb.String(), Args: b.args, Dims: b.dims, Aggs: b.aggs, via: viaVisits}
}

// statsDim is the one visit dimension a query groups or filters by ("" for
// none), when there is at most one.
func statsDim(dims []string, filters []Filter) (string, bool) {
	if len(dims) > 1 {
		return "", false
	}
	d := ""
	for _, x := range append(slices.Clone(dims), filterDims(filters)...) {
		if d != "" && x != d {
			return "", false
		}
		d = x
	}
	return d, true
}

// statsAgg is how visit_stats' columns add up to each aggregate.
var statsAgg = map[string]string{aggVisitors: "visitors", aggVisits: "visits", aggBounces: "bounces", aggDuration: "duration", aggPageviews: "pageviews", aggEvents: "events"}

// buildFromVisitStats adds up the day's counts of visit_stats for the full
// days, and the per-visit rows of the edge and raw days.
func (b *builder) buildFromVisitStats(dim string) plan {
	b.need("ts")
	dimList, outDims, where := b.dimsAndWhere()
	cols, outer := b.perVisit()
	var sb strings.Builder
	b.sumsHead(&sb, outDims)
	// Part 1: a row per day and group from visit_stats.
	b.dayCounts(&sb, outDims, statsAgg)
	sb.WriteString("(SELECT " + dimList + "day")
	for _, a := range b.aggs {
		sb.WriteString(", " + statsAgg[a])
	}
	sb.WriteString("\nFROM (SELECT day, visitors, visits, bounces, duration, pageviews, events")
	if dim != "" {
		fmt.Fprintf(&sb, ", value AS %s", visitAlias(dim))
	}
	fmt.Fprintf(&sb, " FROM %s.visit_stats WHERE %s AND dim = %s)", b.db, b.daysWhere(b.cov.days, b.cov.builds), b.arg(dim))
	if len(where) > 0 {
		sb.WriteString("\nWHERE " + strings.Join(where, "\n  AND "))
	}
	sb.WriteString(")")
	groupBy(&sb, append([]string{"day"}, outDims...))
	// Part 2: the other days' visits, one row per group.
	sb.WriteString("\nUNION ALL\nSELECT ")
	for _, d := range outDims {
		sb.WriteString(d + ", ")
	}
	for _, a := range b.aggs {
		fmt.Fprintf(&sb, "toInt64(%s) AS s_%s, ", outer[a], a)
	}
	sb.WriteString("toInt64(1) AS s_n\nFROM (\n" + b.visitParts(false, dimList, cols, where) + "\n)")
	groupBy(&sb, outDims)
	sumsTail(&sb, outDims)
	return plan{SQL: sb.String(), Args: b.args, Dims: b.dims, Aggs: b.aggs, via: viaVisitStats, check: true}
}

// statsLevel picks the rows of event_stats that hold the query's dimensions
// and filters with as few rows per group as possible: level 2 (per name)
// when only the name matters, level 3 (per page) when only the page does,
// level 1 (per name and page) when both do, level 0 (with the hostname)
// otherwise. A goal needs the page only for page-view goals: those come from
// level 1, the others from 2.
func (b *builder) statsLevel() string {
	needName, needPage, needHost := false, false, false
	pageGoals := slices.ContainsFunc(b.cfg.Goals, func(g string) bool { return strings.HasPrefix(g, "Visit ") })
	// A goal filter always compares "Visit /path" for page views; a goal
	// dimension only when the site has page-view goals.
	goalPage := slices.Contains(filterDims(b.filters), "event:goal")
	for _, d := range append(slices.Clone(b.dims), filterDims(b.filters)...) {
		switch d {
		case "event:name":
			needName = true
		case "event:page":
			needPage = true
		case "event:hostname":
			needHost = true
		case "event:goal":
			needName = true
			goalPage = goalPage || pageGoals
		}
	}
	switch {
	case needHost:
		return "level = 0"
	case needPage && needName:
		return "level = 1"
	case needPage:
		return "level = 3"
	case goalPage:
		return "((level = 2 AND name != 'pageview') OR (level = 1 AND name = 'pageview'))"
	default:
		return "level = 2"
	}
}

// buildEventSums adds up the day's counts of event_stats for the full
// days, and the raw events of the other days.
func (b *builder) buildEventSums() plan {
	dimList, outDims, where := b.dimsAndWhere()
	agg := map[string]string{aggVisitors: "uniq", aggPageviews: "pageviews", aggEvents: "events"}
	var sb strings.Builder
	b.sumsHead(&sb, outDims)
	b.dayCounts(&sb, outDims, agg)
	conds := append([]string{b.daysWhere(b.cov.days, b.cov.builds), b.statsLevel()}, where...)
	fmt.Fprintf(&sb, "(SELECT %sday, uniq, pageviews, events FROM %s.event_stats WHERE %s)",
		dimList, b.db, strings.Join(conds, "\n  AND "))
	groupBy(&sb, append([]string{"day"}, outDims...))
	b.rawEventsPart(&sb, dimList, b.rawSums(), where, outDims)
	sumsTail(&sb, outDims)
	return plan{SQL: sb.String(), Args: b.args, Dims: b.dims, Aggs: b.aggs, via: viaEventSums, check: true}
}

// buildFromEventStats merges the full days' uniq states of event_stats
// with states made from the raw events of the other days.
func (b *builder) buildFromEventStats() plan {
	dimList, outDims, where := b.dimsAndWhere()
	outer := map[string]string{aggVisitors: "uniqExactMerge(st)", aggPageviews: "sum(p_pageviews)", aggEvents: "sum(p_events)"}
	var sb strings.Builder
	b.selectAggs(&sb, outDims, outer)
	conds := append([]string{b.daysWhere(b.cov.days, b.cov.builds), "level = 0"}, where...)
	fmt.Fprintf(&sb, "\nFROM (\nSELECT %svisitors AS st, toUInt64(pageviews) AS p_pageviews, toUInt64(events) AS p_events\nFROM %s.event_stats\nWHERE %s",
		dimList, b.db, strings.Join(conds, "\n  AND "))
	b.rawEventsPart(&sb, dimList, []string{"uniqExactState(visitor_id) AS st", "toUInt64(countIf(name = 'pageview')) AS p_pageviews", "toUInt64(count()) AS p_events"}, where, outDims)
	sb.WriteString("\n)")
	groupBy(&sb, outDims)
	return plan{SQL: sb.String(), Args: b.args, Dims: b.dims, Aggs: b.aggs, via: viaEventStats}
}

// visitRows rebuilds the visits of the raw window's events that have an
// event inside the range: one row per visit with visitor_id, v_start,
// v_duration, v_bounce, p_pageviews and p_events (its events inside the
// range) and a v_* column per visit dimension used. The same visits as
// sessionSource, made without lambdas that capture the event array
// (ClickHouse copies a captured array for every element, which makes
// sessionSource quadratic in a visitor's events of the day): each event gets
// its visit's number by a running sum, and the visits are a GROUP BY.
func (b *builder) visitRows() string {
	// ts first: the tuple's first element is the sort key.
	b.need("ts")
	b.need("name")
	b.need("interactive")
	for _, d := range b.allVisitDims() {
		b.need(visitCol[d])
	}
	pos := func(c string) int { return slices.Index(b.cols, c) + 1 }
	inRange := fmt.Sprintf("ts >= %s AND ts < %s", b.arg(b.r.Start.UTC()), b.arg(b.r.End.UTC()))
	var sb strings.Builder
	sb.WriteString("SELECT visitor_id, min(ts) AS v_start, toInt64(max(ts) - min(ts)) AS v_duration, ")
	// A bounce: exactly one page view and no other interactive event.
	sb.WriteString("toUInt8(countIf(name = 'pageview') = 1 AND countIf(name != 'pageview' AND interactive = 1) = 0) AS v_bounce, ")
	fmt.Fprintf(&sb, "toUInt64(countIf(name = 'pageview' AND %s)) AS p_pageviews, toUInt64(countIf(%s)) AS p_events", inRange, inRange)
	if b.times {
		sb.WriteString(", arraySort(groupArray(ts)) AS v_event_times, arraySort(groupArrayIf(ts, name = 'pageview')) AS v_pageview_times")
	}
	for _, d := range b.allVisitDims() {
		switch d {
		case "visit:exit_page":
			fmt.Fprintf(&sb, ", argMax(pathname, i) AS %s", visitAlias(d))
		case "visit:referrer":
			fmt.Fprintf(&sb, ", argMin(if(referrer_host = '', 'Direct / None', concat(referrer_host, referrer_path)), i) AS %s", visitAlias(d))
		default:
			fmt.Fprintf(&sb, ", argMin(%s, i) AS %s", visitCol[d], visitAlias(d))
		}
	}
	sb.WriteString("\nFROM (\nSELECT visitor_id, day, vno, i")
	for _, c := range b.cols {
		fmt.Fprintf(&sb, ", tupleElement(e, %d) AS %s", pos(c), c)
	}
	fmt.Fprintf(&sb, "\nFROM (\nSELECT visitor_id, day, evs, arrayCumSum(arrayMap((t, p) -> t - p > %d, arrayMap(x -> x.1, evs), arrayPushFront(arrayPopBack(arrayMap(x -> x.1, evs)), toDateTime(0)))) AS vnos", VisitGap)
	fmt.Fprintf(&sb, "\nFROM (\nSELECT visitor_id, toDate(ts, 'UTC') AS day, arraySort(x -> x.1, groupArray((%s))) AS evs\nFROM %s.events\nWHERE site = %s AND (%s)\nGROUP BY visitor_id, day\n)\n)",
		strings.Join(b.cols, ", "), b.db, b.arg(b.site), b.windowCond())
	sb.WriteString("\nARRAY JOIN evs AS e, vnos AS vno, arrayEnumerate(evs) AS i\n)\nGROUP BY visitor_id, day, vno\nHAVING p_events > 0")
	return sb.String()
}

// propsRoute reports whether event_props answers the query: one property
// dimension, without the events that lack the property (a filter is_not
// "(none)" on it: event_props holds only events that have it), filters on
// the event name and the property only, visitors and events.
func propsRoute(dims []string, filters []Filter, aggs []string) bool {
	if len(dims) != 1 || !strings.HasPrefix(dims[0], propsPrefix) {
		return false
	}
	for _, a := range aggs {
		if a != aggVisitors && a != aggEvents {
			return false
		}
	}
	for _, d := range filterDims(filters) {
		if d != "event:name" && d != dims[0] {
			return false
		}
	}
	return slices.ContainsFunc(filters, func(f Filter) bool {
		return f.Op == "is_not" && f.Dimension == dims[0] && slices.ContainsFunc(f.Values, func(v string) bool { return strings.EqualFold(v, "(none)") })
	})
}

// buildPropSums adds up the day's counts of event_props for the full days,
// and the raw events of the other days.
func (b *builder) buildPropSums() plan {
	dimList, outDims, where := b.dimsAndWhere()
	key := strings.TrimPrefix(b.dims[0], propsPrefix)
	var sb strings.Builder
	b.sumsHead(&sb, outDims)
	b.dayCounts(&sb, outDims, map[string]string{aggVisitors: "uniq", aggEvents: "events"})
	// The row's one property as the arrays the dimension reads.
	fmt.Fprintf(&sb, "(SELECT %sday, uniq, events\nFROM (SELECT day, name, uniq, events, [key] AS props_keys, [value] AS props_values FROM %s.event_props WHERE %s AND key = %s)",
		dimList, b.db, b.daysWhere(b.cov.days, b.cov.builds), b.arg(key))
	if len(where) > 0 {
		sb.WriteString("\nWHERE " + strings.Join(where, "\n  AND "))
	}
	sb.WriteString(")\nGROUP BY day, d0")
	b.rawEventsPart(&sb, dimList, b.rawSums(), where, outDims)
	sumsTail(&sb, outDims)
	return plan{SQL: sb.String(), Args: b.args, Dims: b.dims, Aggs: b.aggs, via: viaPropSums, check: true}
}
