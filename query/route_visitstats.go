package query

import (
	"fmt"
	"slices"
	"strings"

	"turf/query/plan"
	"turf/schema"
)

// The visit_stats route: the day's counts of visit_stats for the full
// days, added to the per-visit rows of the edge and raw days; checked (see
// sums.go). The rows read are those of the one visit dimension the query
// groups or filters by (dim ” for none), or those of a dimension within
// the one value a filter picks of another (plan.StatsWithin): that filter
// is what the rows are, so it is left out of their conditions.
func (b *builder) buildFromVisitStats() string {
	b.need("ts")
	dimList, outDims, where := b.dimsAndWhere()
	dim, one := plan.StatsDim(b.shape())
	key, rowWhere := dim, where
	if !one {
		var skip int
		key, skip, _ = plan.StatsWithin(b.shape())
		dim = plan.WithinPairOf(key).Dim
		rowWhere = slices.Delete(slices.Clone(where), skip, skip+1)
	}
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
	fmt.Fprintf(&sb, " FROM %s WHERE %s AND dim = %s)", b.table(schema.VisitStats), b.sumsDaysWhere(), b.arg(key))
	if len(rowWhere) > 0 {
		sb.WriteString("\nWHERE " + strings.Join(rowWhere, "\n  AND "))
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
