package query

import (
	"fmt"
	"strings"
	"time"

	"turf/query/plan"
	"turf/schema"
)

// The visits route: one row per visit, from the visits table for the built
// days and rebuilt from the raw events (qsql.Visits) for the others, in one
// statement whose parts one outer GROUP BY adds up, so that the figures are
// exactly those of the raw route.
func (b *builder) buildFromVisits() string {
	b.need("ts")
	dimList, outDims, where := b.dimsAndWhere()
	var sb strings.Builder
	b.selectAggs(&sb, outDims, overVisits)
	sb.WriteString("\nFROM (\n" + b.visitParts(true, dimList, b.perVisit(), where) + "\n)")
	groupBy(&sb, outDims)
	return sb.String()
}

// perVisit names the per-visit columns the visits parts yield for the
// query's aggregates (after the dimensions, visitor_id and v_start).
func (b *builder) perVisit() []string {
	var cols []string
	for _, a := range b.aggs {
		if c := plan.Aggregates[a].PerVisit; c != "" {
			cols = append(cols, c)
		}
	}
	return cols
}

// visitsTable reads one row per visit of the given days from the visits
// table, its columns renamed to the per-event aliases the dimension and
// filter expressions use. Inside the range's edge days, only the visit's
// events in the range count, and a visit without any is left out, as on
// the raw route.
func (b *builder) visitsTable(days []time.Time, builds []uint64, edge bool, dimList string, cols, where []string) string {
	var sb strings.Builder
	sb.WriteString("SELECT " + dimList + "visitor_id, v_start")
	for _, c := range cols {
		fmt.Fprintf(&sb, ", %s", c)
	}
	sb.WriteString("\nFROM (SELECT visitor_id, start AS v_start, toInt64(bounce) AS v_bounce, toInt64(duration) AS v_duration")
	if edge {
		fmt.Fprintf(&sb, ", toInt64(arrayCount(t -> t >= %s AND t < %s, pageview_times)) AS p_pageviews, toInt64(arrayCount(t -> t >= %s AND t < %s, event_times)) AS p_events",
			b.arg(b.r.Start.UTC()), b.arg(b.r.End.UTC()), b.arg(b.r.Start.UTC()), b.arg(b.r.End.UTC()))
	} else {
		sb.WriteString(", toInt64(pageviews) AS p_pageviews, toInt64(events) AS p_events")
	}
	for _, d := range b.allVisitDims() {
		x, _ := plan.Dim(d)
		fmt.Fprintf(&sb, ", %s AS %s", x.VisitsColumn, plan.VisitAlias(d))
	}
	fmt.Fprintf(&sb, " FROM %s WHERE %s)", b.table(schema.Visits), b.daysWhere(days, builds))
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
	edges, edgeBuilds := c.edges, c.edgeBuilds
	if b.sums {
		edges, edgeBuilds = c.sumEdges, c.sumEdgeBuilds // the parts come from the sums
	}
	if len(edges) > 0 {
		parts = append(parts, b.visitsTable(edges, edgeBuilds, true, dimList, cols, where))
	}
	b.bareWindow = true
	if b.rawInRange() {
		var sb strings.Builder
		sb.WriteString("SELECT " + dimList + "visitor_id, v_start")
		for _, c := range cols {
			fmt.Fprintf(&sb, ", toInt64(%s) AS %s", c, c)
		}
		v := b.visits()
		fmt.Fprintf(&sb, "\nFROM (%s)", v.Rows(&b.Args))
		if len(where) > 0 {
			sb.WriteString("\nWHERE " + strings.Join(where, "\n  AND "))
		}
		parts = append(parts, sb.String())
	}
	if len(parts) == 0 {
		parts = append(parts, b.noVisits(dimList, cols))
	}
	return strings.Join(parts, "\nUNION ALL\n")
}

// noVisits is an empty part: with nothing to read, it keeps the statement's
// shape.
func (b *builder) noVisits(dimList string, cols []string) string {
	var sb strings.Builder
	sb.WriteString("SELECT " + dimList + "visitor_id, v_start")
	for _, c := range cols {
		fmt.Fprintf(&sb, ", toInt64(0) AS %s", c)
	}
	sb.WriteString("\nFROM (SELECT toUInt64(0) AS visitor_id, toDateTime(0) AS v_start")
	for _, d := range b.allVisitDims() {
		fmt.Fprintf(&sb, ", '' AS %s", plan.VisitAlias(d))
	}
	sb.WriteString(") WHERE 0")
	return sb.String()
}
