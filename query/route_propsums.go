package query

import (
	"fmt"
	"strings"

	"turf/query/plan"
	"turf/schema"
)

// The event_props route: the day's counts of event_props for the full
// days, added to the raw events of the other days; checked (see sums.go).
func (b *builder) buildPropSums() string {
	dimList, outDims, where := b.dimsAndWhere()
	key := strings.TrimPrefix(b.dims[0], plan.Props)
	var sb strings.Builder
	b.sumsHead(&sb, outDims)
	b.dayCounts(&sb, outDims, func(a plan.Aggregate) string { return a.EventProps })
	// The row's one property as the arrays the dimension reads.
	fmt.Fprintf(&sb, "(SELECT %sday, uniq, events\nFROM (SELECT day, name, uniq, events, [key] AS props_keys, [value] AS props_values FROM %s WHERE %s AND key = %s)",
		dimList, b.table(schema.EventProps), b.daysWhere(b.cov.days, b.cov.builds), b.arg(key))
	if len(where) > 0 {
		sb.WriteString("\nWHERE " + strings.Join(where, "\n  AND "))
	}
	sb.WriteString(")\nGROUP BY day, d0")
	b.rawEventsPart(&sb, dimList, b.rawSums(), where, outDims)
	sumsTail(&sb, outDims)
	return sb.String()
}
