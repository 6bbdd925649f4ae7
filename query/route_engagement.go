package query

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"turf/query/plan"
	"turf/schema"
)

// The engagement statement: scroll depth and time on page, from the
// engagements table (plan/engagement.go says how they are defined). The
// groups are those of the events statement, as in Plausible, where the
// engagement figures are joined onto the groups of the main query: a page
// with page views and no engagement beacon has a null scroll depth.

// fetchEngaged answers a shape with engagement aggregates: the events
// aggregates by the planned route (visitors when there are none, for the
// groups), then the engagement aggregates of each group by one statement
// over the engagements table.
func (x *run) fetchEngaged(ctx context.Context, r Range, s plan.Shape) ([]group, error) {
	var evAggs, enAggs []string
	for _, a := range s.Aggs {
		if plan.IsEngagementAgg(a) {
			enAggs = append(enAggs, a)
		} else {
			evAggs = append(evAggs, a)
		}
	}
	if len(evAggs) == 0 {
		evAggs = []string{plan.AggVisitors}
	}
	groups, err := x.fetchPlanned(ctx, r, plan.Shape{Dims: s.Dims, Filters: s.Filters, Aggs: evAggs, Machines: s.Machines})
	if err != nil {
		return nil, err
	}
	b := &builder{db: x.e.db, site: x.q.Site, cfg: x.cfg, tz: x.tz, r: r, dims: s.Dims, filters: s.Filters, aggs: enAggs}
	st := b.buildEngagements()
	if err := x.fitsQuerySize(st); err != nil {
		return nil, err
	}
	eg, _, err := x.e.exec(ctx, x.q.Site, st)
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]map[string]int64, len(eg))
	for _, g := range eg {
		byKey[key(g.dims)] = g.agg
	}
	for _, g := range groups {
		for _, a := range enAggs {
			g.agg[a] = byKey[key(g.dims)][a]
		}
	}
	return groups, nil
}

// hasEngagement reports whether a shape asks for engagement aggregates.
func hasEngagement(s plan.Shape) bool { return slices.ContainsFunc(s.Aggs, plan.IsEngagementAgg) }

// engagementAggExpr is an engagement aggregate over the per-visit rows of
// buildEngagements (sd: the visit's deepest scroll, 255 for none; ms: its
// engaged milliseconds).
var engagementAggExpr = map[string]string{
	plan.AggScrollSum:     "sumIf(sd, sd <= 100)",
	plan.AggScrollVisits:  "countIf(sd <= 100)",
	plan.AggEngagedMS:     "sum(ms)",
	plan.AggEngagedVisits: "count()",
}

// buildEngagements is one row per group: the engagement aggregates over
// the group's visits (a visitor's UTC day) that sent engagement beacons in
// the range. Dimensions and filters are read from the beacon's own page,
// hostname and time, which the engagements table names as the events
// table does.
func (b *builder) buildEngagements() statement {
	dimList, outDims, where := b.dimsAndWhere()
	var sb strings.Builder
	b.selectAggs(&sb, outDims, func(a string) string {
		x, ok := engagementAggExpr[a]
		if !ok {
			panic("BUG: not an engagement aggregate: " + a)
		}
		return x
	})
	conds := append([]string{"site = " + b.arg(b.site), b.TSRange(b.r.Start, b.r.End)}, where...)
	fmt.Fprintf(&sb, "\nFROM (\nSELECT %svisitor_id, toDate(ts, 'UTC') AS vday,"+
		" if(countIf(scroll_depth <= 100) > 0, maxIf(scroll_depth, scroll_depth <= 100), 255) AS sd, sum(engagement_ms) AS ms"+
		"\nFROM %s\nWHERE %s\nGROUP BY ", dimList, b.table(schema.Engagements), strings.Join(conds, "\n  AND "))
	for _, d := range outDims {
		sb.WriteString(d + ", ")
	}
	sb.WriteString("visitor_id, vday\n)")
	groupBy(&sb, outDims)
	return statement{SQL: sb.String(), Args: b.List, Dims: b.dims, Aggs: b.aggs, route: plan.Raw}
}
