package query

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Reading the rollup tables (schema/0004_rollups.up.sql). A query whose
// dimensions, filters and metrics the visits or event_stats table can
// answer reads them for the finished UTC days fully inside its range whose
// build still matches the raw events (see coverage), and the raw events for
// the rest, in one statement: both parts yield the same rows (one per visit,
// or one uniq state per group) and one outer GROUP BY aggregates them, so
// the figures are exactly those of the raw path.

// route names the table family that can answer a query.
type route int

const (
	routeRaw route = iota
	routeVisits
	routeEventStats
)

// statsDims are the event dimensions event_stats is keyed by.
var statsDims = []string{"event:page", "event:hostname", "event:name", "event:goal"}

// routeOf picks the cheapest source that answers the query exactly.
//
//   - visits: visit dimensions and filters only (every event of a visit
//     carries its visit's values, so an event matches exactly when its visit
//     does, and a visit of a whole day inside the range has all its events
//     in it), no revenue.
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
	days   []time.Time    // built days fully inside the range, ascending
	builds []uint64       // the build to read for each of them
	raw    [][2]time.Time // the rest of the widened range, in whole UTC days
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

// rollupWhere selects the covered days' rows of a rollup table.
func (b *builder) rollupWhere() string {
	c := b.cov
	return fmt.Sprintf("site = %s AND day >= toDate(%s) AND day <= toDate(%s) AND has(%s, build)",
		b.arg(b.site), b.arg(c.days[0].Format(time.DateOnly)), b.arg(c.days[len(c.days)-1].Format(time.DateOnly)), b.arg(c.builds))
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

// buildFromVisits reads one row per visit from the visits table for the
// covered days and rebuilds the visits of the other days from the raw
// events, as the raw path does.
func (b *builder) buildFromVisits() plan {
	b.need("ts")
	dimList, outDims, where := b.dimsAndWhere()
	// The per-visit columns both parts yield, after the dimensions.
	var perVisit, fromTable []string
	outer := map[string]string{aggVisitors: "uniqExact(visitor_id)", aggVisits: "count()"}
	for _, a := range b.aggs {
		switch a {
		case aggBounces:
			perVisit, fromTable = append(perVisit, "v_bounce"), append(fromTable, "toInt64(bounce)")
			outer[a] = "sum(v_bounce)"
		case aggDuration:
			perVisit, fromTable = append(perVisit, "v_duration"), append(fromTable, "toInt64(duration)")
			outer[a] = "sum(v_duration)"
		case aggPageviews:
			perVisit, fromTable = append(perVisit, "p_pageviews"), append(fromTable, "toInt64(pageviews)")
			outer[a] = "sum(p_pageviews)"
		case aggEvents:
			perVisit, fromTable = append(perVisit, "p_events"), append(fromTable, "toInt64(events)")
			outer[a] = "sum(p_events)"
		}
	}
	var sb strings.Builder
	sb.WriteString("SELECT ")
	for _, d := range outDims {
		sb.WriteString(d + ", ")
	}
	for i, a := range b.aggs {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "toInt64(%s) AS a_%s", outer[a], a)
	}
	// Part 1: the visits table, its columns renamed to the per-event
	// aliases the dimension and filter expressions use.
	sb.WriteString("\nFROM (\nSELECT ")
	sb.WriteString(dimList)
	sb.WriteString("visitor_id, v_start")
	for i, c := range perVisit {
		fmt.Fprintf(&sb, ", %s AS %s", fromTable[i], c)
	}
	sb.WriteString("\nFROM (SELECT visitor_id, start AS v_start, bounce, duration, pageviews, events")
	for _, d := range b.allVisitDims() {
		fmt.Fprintf(&sb, ", %s AS %s", strings.TrimPrefix(d, "visit:"), visitAlias(d))
	}
	fmt.Fprintf(&sb, " FROM %s.visits WHERE %s)", b.db, b.rollupWhere())
	if len(where) > 0 {
		sb.WriteString("\nWHERE " + strings.Join(where, "\n  AND "))
	}
	// Part 2: the other days' visits from the raw events.
	if b.rawInRange() {
		sb.WriteString("\nUNION ALL\nSELECT ")
		sb.WriteString(dimList)
		sb.WriteString("visitor_id, v_start")
		for _, c := range perVisit {
			fmt.Fprintf(&sb, ", toInt64(%s) AS %s", c, c)
		}
		fmt.Fprintf(&sb, "\nFROM (%s)", b.visitRows())
		if len(where) > 0 {
			sb.WriteString("\nWHERE " + strings.Join(where, "\n  AND "))
		}
	}
	sb.WriteString("\n)")
	if len(outDims) > 0 {
		sb.WriteString("\nGROUP BY " + strings.Join(outDims, ", "))
	}
	return plan{SQL: sb.String(), Args: b.args, Dims: b.dims, Aggs: b.aggs, routed: true}
}

// buildFromEventStats merges the covered days' uniq states of event_stats
// with states made from the raw events of the other days.
func (b *builder) buildFromEventStats() plan {
	dimList, outDims, where := b.dimsAndWhere()
	outer := map[string]string{aggVisitors: "uniqExactMerge(st)", aggPageviews: "sum(p_pageviews)", aggEvents: "sum(p_events)"}
	var sb strings.Builder
	sb.WriteString("SELECT ")
	for _, d := range outDims {
		sb.WriteString(d + ", ")
	}
	for i, a := range b.aggs {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "toInt64(%s) AS a_%s", outer[a], a)
	}
	conds := append([]string{b.rollupWhere()}, where...)
	fmt.Fprintf(&sb, "\nFROM (\nSELECT %svisitors AS st, toUInt64(if(name = 'pageview', events, 0)) AS p_pageviews, toUInt64(events) AS p_events\nFROM %s.event_stats\nWHERE %s",
		dimList, b.db, strings.Join(conds, "\n  AND "))
	if b.rawInRange() {
		conds := append([]string{
			"site = " + b.arg(b.site),
			fmt.Sprintf("ts >= %s AND ts < %s", b.arg(b.r.Start.UTC()), b.arg(b.r.End.UTC())),
			"(" + b.windowCond() + ")",
		}, where...)
		fmt.Fprintf(&sb, "\nUNION ALL\nSELECT %suniqExactState(visitor_id) AS st, toUInt64(countIf(name = 'pageview')) AS p_pageviews, toUInt64(count()) AS p_events\nFROM %s.events\nWHERE %s",
			dimList, b.db, strings.Join(conds, "\n  AND "))
		if len(outDims) > 0 {
			sb.WriteString("\nGROUP BY " + strings.Join(outDims, ", "))
		}
	}
	sb.WriteString("\n)")
	if len(outDims) > 0 {
		sb.WriteString("\nGROUP BY " + strings.Join(outDims, ", "))
	}
	return plan{SQL: sb.String(), Args: b.args, Dims: b.dims, Aggs: b.aggs, routed: true}
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
