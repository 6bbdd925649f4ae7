package query

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"turf/query/plan"
	qsql "turf/query/sql"
	"turf/schema"
)

// The SQL builder. A statement answers one route (plan.Decide), and each
// route's SQL is in its own file, route_<name>.go; this file holds what
// they share. Every identifier in the generated SQL comes from the
// vocabulary (package plan) or from this package's own text; every value
// from a request (filter values, property keys, the site, the dates) is
// passed as a bound parameter. FuzzBuild checks both.

// statement is one SQL statement and how to read its rows.
type statement struct {
	SQL  string
	Args []any
	Dims []string // dimension columns, in order, all String
	Aggs []string // aggregate columns after them, all Int64
	// route is the route the statement answers by.
	route plan.Route
	// check: the statement adds up per-day counts and returns, as its last
	// column, the most rows one group had on one day; above one, the sums
	// count some visitors twice and the query must be built with noSums.
	check bool
	// parts: the statement reads a day's head or tail rows.
	parts bool
}

type builder struct {
	qsql.Args
	db      string // the database's name, unquoted
	site    string
	cfg     SiteConfig
	tz      string
	r       Range
	dims    []string
	filters []Filter
	aggs    []string
	// machines: read machine events too (plan.Shape.Machines).
	machines bool
	cols     []string // event columns read, in tuple order
	// cov, when set, names the days the rollup tables answer; the rest of
	// the widened range is read from the raw events.
	cov *coverage
	// bareWindow: the edge days are read from the visits table, so the
	// raw window leaves them out too.
	bareWindow bool
	// sums: a sums route, which reads the coverage's parts from the
	// rollup rows (sumsDaysWhere), so neither the raw window nor the
	// visits table's edges hold them.
	sums bool
	// noSums: do not add up per-day counts (a group spans several rows).
	noSums bool
	// rev is the currency revenue is summed in.
	rev revenueCtx
}

func (b *builder) arg(v any) string { return b.Bind(v) }

func (b *builder) table(name string) string { return schema.Table(b.db, name) }

func (b *builder) shape() plan.Shape {
	return plan.Shape{Dims: b.dims, Filters: b.filters, Aggs: b.aggs, Machines: b.machines}
}

// cover is what the builder's coverage tells the planner.
func (b *builder) cover() plan.Cover {
	if b.cov == nil {
		return plan.Cover{NoSums: b.noSums}
	}
	return plan.Cover{Known: true, Full: len(b.cov.builds)+len(b.cov.partBuilds) > 0, Edges: len(b.cov.edgeBuilds) > 0, NoSums: b.noSums, NoHours: true}
}

// build renders the statement of the route the planner decides.
func (b *builder) build() statement { return b.buildRoute(plan.Decide(b.shape(), b.cover())) }

// buildRoute renders the statement of one route.
func (b *builder) buildRoute(r plan.Route) statement {
	var sql string
	switch r {
	case plan.Raw:
		sql = b.buildRaw()
	case plan.Visits:
		sql = b.buildFromVisits()
	case plan.VisitStats:
		b.sums = true
		sql = b.buildFromVisitStats()
	case plan.EventStates:
		sql = b.buildFromEventStats()
	case plan.EventSums:
		b.sums = true
		sql = b.buildEventSums()
	case plan.PropSums:
		b.sums = true
		sql = b.buildPropSums()
	default:
		panic("BUG: route without a statement: " + r.String())
	}
	return statement{SQL: sql, Args: b.List, Dims: b.dims, Aggs: b.aggs, route: r, check: r.Checked(), parts: b.sums && b.cov != nil && len(b.cov.parts) > 0}
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

// eventCols are the events columns the builder may read.
var eventCols = []string{
	"ts", "name", "interactive", "pathname", "hostname", "referrer_host", "referrer_path",
	"source", "channel", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term",
	"country", "region", "city", "device", "browser", "browser_version", "os", "os_version",
	"props_keys", "props_values", "revenue_micros", "revenue_currency",
}

// goalCond is the condition of an event completing goal g.
func (b *builder) goalCond(g plan.GoalDef) string {
	b.need("name")
	b.need("pathname")
	if g.Page != "" {
		return fmt.Sprintf("(name = 'pageview' AND match(pathname, %s))", b.arg(g.PageRegexp()))
	}
	return fmt.Sprintf("name = %s", b.arg(g.Event))
}

// goalsCond is the condition of an event completing any of gs.
func (b *builder) goalsCond(gs []plan.GoalDef) string {
	if len(gs) == 0 {
		return "0"
	}
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = b.goalCond(g)
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

// dimExpr is the expression of a dimension in the per-event rows, from the
// vocabulary.
func (b *builder) dimExpr(d string) string {
	x, ok := plan.Dim(d)
	if !ok {
		panic("BUG: dimension not in the vocabulary: " + d)
	}
	switch x.Kind {
	case plan.KindEvent:
		b.need(x.Column)
		return x.Column
	case plan.KindGoal:
		// An event completes every goal whose condition it meets (a page
		// can match several page goals), so it counts in each goal's row.
		b.need("name")
		b.need("pathname")
		goals := b.cfg.goals()
		if len(goals) == 0 {
			return "''"
		}
		parts := make([]string, len(goals))
		for i, g := range goals {
			parts[i] = fmt.Sprintf("if(%s, %s, '')", b.goalCond(g), b.arg(g.Name))
		}
		return fmt.Sprintf("arrayJoin(arrayFilter(x -> x != '', [%s]))", strings.Join(parts, ", "))
	case plan.KindProp:
		b.need("props_keys")
		b.need("props_values")
		k := strings.TrimPrefix(d, plan.Props)
		return fmt.Sprintf("if(has(props_keys, %s), props_values[indexOf(props_keys, %s)], '(none)')", b.arg(k), b.arg(k))
	case plan.KindVisit:
		b.need(x.Column)
		if x.Blank != "" {
			a := plan.VisitAlias(d)
			return fmt.Sprintf("if(%s = '', %s, %s)", a, b.arg(x.Blank), a)
		}
		return plan.VisitAlias(d)
	}
	return b.timeExpr(d)
}

// timeExpr is a time dimension's bucket label in the site's time zone.
func (b *builder) timeExpr(d string) string {
	b.need("ts")
	tz := b.arg(b.tz)
	switch granularity(d, b.r) {
	case "hour":
		return fmt.Sprintf("toString(toStartOfHour(ts, %s), %s)", tz, b.arg(b.tz))
	case "week":
		// A week starts on Monday or on the range's first day, as
		// bucketLabel says.
		loc, err := time.LoadLocation(b.tz)
		if err != nil {
			panic("BUG: time zone not checked: " + b.tz)
		}
		return fmt.Sprintf("toString(greatest(toMonday(toDate(ts, %s)), toDate(%s)))", tz, b.arg(localDay(b.r.Start, loc, 0).Format(time.DateOnly)))
	case "month":
		return fmt.Sprintf("toString(toStartOfMonth(toDate(ts, %s)))", tz)
	default:
		return fmt.Sprintf("toString(toDate(ts, %s))", tz)
	}
}

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
	var e string
	if f.Dimension == plan.Goal {
		goals, _ := plan.MatchGoals(b.cfg.goals(), f)
		e = b.goalsCond(goals)
	} else {
		e = b.leafExpr(f, b.dimExpr(f.Dimension))
	}
	if !strings.HasSuffix(f.Op, "_not") {
		return e
	}
	if k, ok := strings.CutPrefix(f.Dimension, plan.Props); ok {
		// A negated property filter picks the events that have the
		// property with another value, as Plausible's does.
		return fmt.Sprintf("has(props_keys, %s) AND NOT (%s)", b.arg(k), e)
	}
	return "NOT (" + e + ")"
}

// leafExpr compares x with a leaf filter's values.
func (b *builder) leafExpr(f Filter, x string) string {
	var parts []string
	switch strings.TrimSuffix(f.Op, "_not") {
	case "is":
		if f.CaseSensitive {
			return fmt.Sprintf("has(%s, %s)", b.arg(f.Values), x)
		}
		return fmt.Sprintf("has(%s, lowerUTF8(%s))", b.arg(lowerAll(f.Values)), x)
	case "contains":
		for _, v := range f.Values {
			if f.CaseSensitive {
				parts = append(parts, fmt.Sprintf("position(%s, %s) > 0", x, b.arg(v)))
			} else {
				parts = append(parts, fmt.Sprintf("positionCaseInsensitiveUTF8(%s, %s) > 0", x, b.arg(v)))
			}
		}
	case "matches":
		for _, v := range f.Values {
			if !f.CaseSensitive {
				v = "(?i)" + v
			}
			parts = append(parts, fmt.Sprintf("match(%s, %s)", x, b.arg(v)))
		}
	default:
		panic("BUG: filter operator not in the vocabulary: " + f.Op)
	}
	return strings.Join(parts, " OR ")
}

func lowerAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strings.ToLower(v)
	}
	return out
}

// dimsAndWhere is the dimension list (d0, d1, ...), their names, and the
// conditions of the filters (and of the goal dimension: only goals count).
func (b *builder) dimsAndWhere() (dimList string, outDims []string, where []string) {
	for i, d := range b.dims {
		dimList += fmt.Sprintf("%s AS d%d, ", b.dimExpr(d), i)
		outDims = append(outDims, fmt.Sprintf("d%d", i))
	}
	for _, f := range b.filters {
		where = append(where, "("+b.filterExpr(f)+")")
	}
	if i := slices.Index(b.dims, plan.Goal); i >= 0 {
		where = append(where, fmt.Sprintf("d%d != ''", i))
	}
	return dimList, outDims, where
}

// aggExpr is an aggregate's expression on raw events, from the vocabulary.
func (b *builder) aggExpr(a string) string {
	x := plan.Aggregates[a]
	if x.Raw == "" {
		panic("BUG: aggregate not made from raw events: " + a)
	}
	if strings.Contains(x.Raw, "%[1]s") {
		return fmt.Sprintf(x.Raw, b.revenueCurrencySQL())
	}
	return x.Raw
}

// needAggCols marks the events columns the aggregates read.
func (b *builder) needAggCols() {
	for _, a := range b.aggs {
		switch a {
		case plan.AggPageviews, plan.AggBounces:
			b.need("name")
			if a == plan.AggBounces {
				b.need("interactive")
			}
		case plan.AggRevenue, plan.AggRevenueN:
			b.need("revenue_micros")
			b.need("revenue_currency")
		}
	}
}

// widened is the range stretched to whole UTC days: the days whose visitor
// ids the range touches.
func (r Range) widened() (time.Time, time.Time) {
	s := r.Start.UTC().Truncate(24 * time.Hour)
	e := r.End.UTC()
	if t := e.Truncate(24 * time.Hour); t.Before(e) {
		e = t.Add(24 * time.Hour)
	}
	return s, e
}

// rawWindow is the part of the widened range read from the raw events, as
// whole UTC days: all of it, or what the rollup tables do not answer.
func (b *builder) rawWindow() [][2]time.Time {
	if b.cov != nil {
		switch {
		case b.bareWindow:
			return b.cov.bare
		case b.sums:
			return b.cov.sumRaw
		}
		return b.cov.raw
	}
	ws, we := b.r.widened()
	return [][2]time.Time{{ws, we}}
}

// humanCond is the events condition that leaves machine events out, or
// "1" when the statement reads them (plan.HumanEvents).
func (b *builder) humanCond() string {
	if b.machines {
		return "1"
	}
	return plan.HumanEvents
}

// windowCond restricts ts to the raw window.
func (b *builder) windowCond() string {
	w := b.rawWindow()
	if len(w) == 0 {
		return "0"
	}
	parts := make([]string, len(w))
	for i, iv := range w {
		parts[i] = b.TSRange(iv[0], iv[1])
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "(" + strings.Join(parts, ") OR (") + ")"
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

// visits is the one definition of a visit (qsql.Visits) over the raw
// window, carrying the visit dimensions the query uses.
func (b *builder) visits() qsql.Visits {
	return qsql.Visits{DB: b.db, Site: b.site, Dims: b.allVisitDims(), Cols: b.cols,
		Window: b.windowCond(), From: b.r.Start, To: b.r.End, Machines: b.machines}
}

// allVisitDims lists the visit dimensions used as dimensions or in filters.
func (b *builder) allVisitDims() []string {
	var out []string
	for _, d := range append(slices.Clone(b.dims), plan.FilterDims(b.filters)...) {
		if plan.IsVisit(d) && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// daysWhere selects the rows of a rollup table for the given days and builds.
func (b *builder) daysWhere(days []time.Time, builds []uint64) string {
	if len(days) == 0 {
		return "0"
	}
	return fmt.Sprintf("site = %s AND day >= toDate(%s) AND day <= toDate(%s) AND has(%s, build)",
		b.arg(b.site), b.arg(days[0].Format(time.DateOnly)), b.arg(days[len(days)-1].Format(time.DateOnly)), b.arg(builds))
}

// sumsDaysWhere selects the rows of a parted rollup table (visit_stats,
// event_stats, event_props) that a sums route reads: the whole-day rows of
// the full days and the head or tail rows of the parts. A build id names
// one day, so each build's part is one condition.
func (b *builder) sumsDaysWhere() string {
	c := b.cov
	days := sortedDays(c.days, c.parts)
	if len(days) == 0 {
		return "0"
	}
	var conds []string
	if len(c.builds) > 0 {
		conds = append(conds, fmt.Sprintf("has(%s, build) AND part = 0", b.arg(c.builds)))
	}
	for _, p := range []uint8{1, 2} {
		var ids []uint64
		for i, n := range c.partNos {
			if n == p {
				ids = append(ids, c.partBuilds[i])
			}
		}
		if len(ids) > 0 {
			conds = append(conds, fmt.Sprintf("has(%s, build) AND part = %d", b.arg(ids), p))
		}
	}
	return fmt.Sprintf("site = %s AND day >= toDate(%s) AND day <= toDate(%s) AND (%s)",
		b.arg(b.site), b.arg(days[0].Format(time.DateOnly)), b.arg(days[len(days)-1].Format(time.DateOnly)), "("+strings.Join(conds, ") OR (")+")")
}

// selectAggs starts the outer SELECT: the dimensions, then each aggregate
// as outer makes it.
func (b *builder) selectAggs(sb *strings.Builder, outDims []string, outer func(string) string) {
	sb.WriteString("SELECT ")
	for _, d := range outDims {
		sb.WriteString(d + ", ")
	}
	for i, a := range b.aggs {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(sb, "toInt64(%s) AS a_%s", outer(a), a)
	}
}

// groupBy ends a SELECT with its GROUP BY, if it has dimensions.
func groupBy(sb *strings.Builder, dims []string) {
	if len(dims) > 0 {
		sb.WriteString("\nGROUP BY " + strings.Join(dims, ", "))
	}
}

// overVisits is how per-visit rows add up to each aggregate.
func overVisits(a string) string { return plan.Aggregates[a].OverVisits }
