package query

import (
	"fmt"
	"slices"
	"strings"

	"turf/query/plan"
	"turf/schema"
)

// The event_props route: the day's counts of event_props for the full
// days, added to the raw events of the other days; checked (see sums.go).
// The one property dimension may come with event:name: the rows are per
// name too.
func (b *builder) buildPropSums() string {
	dimList, outDims, where := b.dimsAndWhere()
	key := strings.TrimPrefix(plan.PropsDim(b.shape()), plan.Props)
	// The people's rows, or with machines the machine events' rows: what
	// the machine-only filter picks, so it is left out of their conditions.
	machine, rowWhere := 0, where
	if b.machines {
		i, _ := plan.MachineOnly(b.filters)
		machine, rowWhere = 1, slices.Delete(slices.Clone(where), i, i+1)
	}
	var sb strings.Builder
	b.sumsHead(&sb, outDims)
	b.dayCounts(&sb, outDims, func(a plan.Aggregate) string { return a.EventProps })
	// The row's one property as the arrays the dimension reads. The
	// machine filter's literal is typed: 18.16 moves "part = 0 AND machine
	// = 0" into PREWHERE and, on a part written before both columns were
	// added (0040, 0041), fills them from defaults under one column name
	// for the two equal literals, "Column '0' already exists".
	fmt.Fprintf(&sb, "(SELECT %sday, uniq, events\nFROM (SELECT day, name, uniq, events, [key] AS props_keys, [value] AS props_values FROM %s WHERE %s AND machine = toUInt8(%d) AND key = %s)",
		dimList, b.table(schema.EventProps), b.sumsDaysWhere(), machine, b.arg(key))
	if len(rowWhere) > 0 {
		sb.WriteString("\nWHERE " + strings.Join(rowWhere, "\n  AND "))
	}
	sb.WriteString(")")
	groupBy(&sb, append([]string{"day"}, outDims...))
	b.rawEventsPart(&sb, dimList, b.rawSums(), where, outDims)
	sumsTail(&sb, outDims)
	return sb.String()
}
