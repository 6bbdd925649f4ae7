package query

import (
	"fmt"
	"strings"

	"turf/query/plan"
	"turf/schema"
)

// What the checked routes (visit_stats, event_stats sums, event_props)
// share. Visitor ids change every UTC day, so the distinct visitors of
// several days are the sum of each day's. These tables hold each day's
// distinct visitors per group as a count; adding them up is exact as long
// as each group of the query is a single row on each day. Each such
// statement also returns the largest number of rows a group had on one
// day, and a query where that exceeds one is planned again with
// plan.Cover.NoSums.

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

func sumsTail(sb *strings.Builder, outDims []string) {
	sb.WriteString("\n)")
	groupBy(sb, outDims)
}

// dayCounts starts the part of a sums statement that reads a rollup
// table: per day and group, the sum of each aggregate's column (col) and
// the number of rows, FROM what the caller writes next.
func (b *builder) dayCounts(sb *strings.Builder, outDims []string, col func(plan.Aggregate) string) {
	sb.WriteString("SELECT ")
	for _, d := range outDims {
		sb.WriteString(d + ", ")
	}
	for _, a := range b.aggs {
		fmt.Fprintf(sb, "toInt64(sum(%s)) AS s_%s, ", col(plan.Aggregates[a]), a)
	}
	sb.WriteString("toInt64(count()) AS s_n\nFROM ")
}

// rawEventsPart is the UNION ALL part that reads the raw window's events in
// the range: the dimensions, then cols, one row per group.
func (b *builder) rawEventsPart(sb *strings.Builder, dimList string, cols []string, where, outDims []string) {
	if !b.rawInRange() {
		return
	}
	conds := append([]string{
		"site = " + b.arg(b.site),
		b.InRange(b.r.Start, b.r.End),
		"(" + b.windowCond() + ")",
		b.humanCond(),
	}, where...)
	fmt.Fprintf(sb, "\nUNION ALL\nSELECT %s%s\nFROM %s%s\nWHERE %s", dimList, strings.Join(cols, ", "), b.table(schema.Events), b.namePrewhere(), strings.Join(conds, "\n  AND "))
	groupBy(sb, outDims)
}

// rawSums are the columns of a raw events part of a sums statement.
func (b *builder) rawSums() []string {
	var cols []string
	for _, a := range b.aggs {
		cols = append(cols, fmt.Sprintf("toInt64(%s) AS s_%s", b.aggExpr(a), a))
	}
	return append(cols, "toInt64(1) AS s_n")
}
