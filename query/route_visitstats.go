package query

import (
	"fmt"
	"strings"

	"turf/query/plan"
	"turf/schema"
)

// The visit_stats route: the day's counts of visit_stats for the full
// days, added to the per-visit rows of the edge and raw days; checked (see
// sums.go). dim is the one visit dimension the query groups or filters by,
// "" for none.
func (b *builder) buildFromVisitStats(dim string) string {
	b.need("ts")
	dimList, outDims, where := b.dimsAndWhere()
	var sb strings.Builder
	b.sumsHead(&sb, outDims)
	// Part 1: a row per day and group from visit_stats.
	b.dayCounts(&sb, outDims, func(a plan.Aggregate) string { return a.VisitStats })
	sb.WriteString("(SELECT " + dimList + "day")
	for _, a := range b.aggs {
		sb.WriteString(", " + plan.Aggregates[a].VisitStats)
	}
	sb.WriteString("\nFROM (SELECT day, visitors, visits, bounces, duration, pageviews, events")
	if dim != "" {
		fmt.Fprintf(&sb, ", value AS %s", plan.VisitAlias(dim))
	}
	fmt.Fprintf(&sb, " FROM %s WHERE %s AND dim = %s)", b.table(schema.VisitStats), b.daysWhere(b.cov.days, b.cov.builds), b.arg(dim))
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
		fmt.Fprintf(&sb, "toInt64(%s) AS s_%s, ", overVisits(a), a)
	}
	sb.WriteString("toInt64(1) AS s_n\nFROM (\n" + b.visitParts(false, dimList, b.perVisit(), where) + "\n)")
	groupBy(&sb, outDims)
	sumsTail(&sb, outDims)
	return sb.String()
}
