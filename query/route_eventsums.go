package query

import (
	"fmt"
	"slices"
	"strings"

	"turf/query/plan"
	"turf/schema"
)

// The event_stats sums route: the day's counts of event_stats for the full
// days, added to the raw events of the other days; checked (see sums.go).
func (b *builder) buildEventSums() string {
	dimList, outDims, where := b.dimsAndWhere()
	var sb strings.Builder
	b.sumsHead(&sb, outDims)
	b.dayCounts(&sb, outDims, func(a plan.Aggregate) string { return a.EventStats })
	conds := append([]string{b.sumsDaysWhere(), b.statsLevel()}, where...)
	fmt.Fprintf(&sb, "(SELECT %sday, uniq, pageviews, events FROM %s WHERE %s)",
		dimList, b.table(schema.EventStats), strings.Join(conds, "\n  AND "))
	groupBy(&sb, append([]string{"day"}, outDims...))
	b.rawEventsPart(&sb, dimList, b.rawSums(), where, outDims)
	sumsTail(&sb, outDims)
	return sb.String()
}

// statsLevel picks the rows of event_stats that hold the query's dimensions
// and filters with as few rows per group as possible: level 2 (per name)
// when only the name matters, level 3 (per page) when only the page does,
// level 1 (per name and page) when both do, level 0 (with the hostname)
// otherwise. A goal needs the page only for page-view goals: those come from
// level 1, the others from 2.
func (b *builder) statsLevel() string {
	needName, needPage, needHost := false, false, false
	pageGoals := slices.ContainsFunc(b.cfg.goals(), func(g plan.GoalDef) bool { return g.Page != "" })
	// A goal filter always compares "Visit /path" for page views; a goal
	// dimension only when the site has page-view goals.
	goalPage := plan.Mentions(b.filters, plan.Goal)
	for _, d := range append(slices.Clone(b.dims), plan.FilterDims(b.filters)...) {
		switch d {
		case plan.Name:
			needName = true
		case plan.Page:
			needPage = true
		case plan.Hostname:
			needHost = true
		case plan.Goal:
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
