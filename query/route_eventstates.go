package query

import (
	"fmt"
	"strings"

	"turf/query/plan"
	"turf/schema"
)

// The event_stats states route: the full days' uniq states of event_stats
// merged with states made from the raw events of the other days. Exact
// whatever the groups, and slower than the sums.
func (b *builder) buildFromEventStats() string {
	dimList, outDims, where := b.dimsAndWhere()
	var sb strings.Builder
	b.selectAggs(&sb, outDims, func(a string) string { return plan.Aggregates[a].EventStates })
	conds := append([]string{b.daysWhere(b.cov.days, b.cov.builds), "part = 0", "level = 0"}, where...)
	fmt.Fprintf(&sb, "\nFROM (\nSELECT %svisitors AS st, toUInt64(pageviews) AS p_pageviews, toUInt64(events) AS p_events\nFROM %s\nWHERE %s",
		dimList, b.table(schema.EventStats), strings.Join(conds, "\n  AND "))
	var states []string
	for _, a := range []string{plan.AggVisitors, plan.AggPageviews, plan.AggEvents} {
		states = append(states, plan.Aggregates[a].States)
	}
	b.rawEventsPart(&sb, dimList, states, where, outDims)
	sb.WriteString("\n)")
	groupBy(&sb, outDims)
	return sb.String()
}
