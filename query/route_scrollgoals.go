package query

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"turf/query/plan"
	"turf/schema"
)

// Scroll goals (plan/scrollgoal.go) are completed by engagement beacons,
// which the events table does not hold: a query about goals of a site
// with scroll goals reads the events for its other goals and the
// engagements table for the scroll goals, one statement each. The
// engagements table knows each beacon's page, hostname and time only, so
// such a query may group by those besides the goal, filter by those, and
// ask for visitors, events and page views (a scroll goal has neither) and
// the rates made of visitors.

// scrollAggs are the aggregates a scroll goal group has.
var scrollAggs = []string{plan.AggVisitors, plan.AggEvents, plan.AggPageviews}

// scrollGoals reports whether a shape is about the site's scroll goals: it
// groups by goal, or filters by a scroll goal.
func (x *run) scrollGoals(s plan.Shape) bool {
	sgs := plan.ScrollGoals(x.cfg.Goals)
	if len(sgs) == 0 {
		return false
	}
	return slices.Contains(s.Dims, plan.Goal) || len(scrollGoalValues(s.Filters)) > 0
}

// scrollGoalValues lists the scroll goals any goal filter of fs names.
func scrollGoalValues(fs []Filter) []string {
	var out []string
	var walk func(f Filter)
	walk = func(f Filter) {
		for _, c := range f.Children {
			walk(c)
		}
		if f.Dimension == plan.Goal {
			for _, v := range f.Values {
				if _, ok := plan.ParseScrollGoal(v); ok {
					out = append(out, v)
				}
			}
		}
	}
	for _, f := range fs {
		walk(f)
	}
	return out
}

// fetchScrollGoals answers a shape about goals when the site has scroll
// goals: the event goals' groups from the events (unless a filter picks
// scroll goals only), then the scroll goals' groups from the engagements.
func (x *run) fetchScrollGoals(ctx context.Context, r Range, s plan.Shape) ([]group, error) {
	picked, eventsOnly, err := checkScrollShape(s)
	if err != nil {
		return nil, err
	}
	if eventsOnly {
		return x.fetchPlanned(ctx, r, s)
	}
	var out []group
	if len(picked) == 0 {
		if out, err = x.fetchPlanned(ctx, r, s); err != nil {
			return nil, err
		}
	}
	b := &builder{db: x.e.db, site: x.q.Site, cfg: x.cfg, tz: x.tz, r: r, dims: s.Dims, filters: s.Filters, aggs: s.Aggs}
	st := b.buildScrollGoals(plan.ScrollGoals(x.cfg.Goals), picked)
	if err := x.fitsQuerySize(st); err != nil {
		return nil, err
	}
	sg, _, err := x.e.exec(ctx, x.q.Site, st)
	if err != nil {
		return nil, err
	}
	return append(out, sg...), nil
}

// checkScrollShape refuses what the engagements table cannot answer, and
// returns the scroll goals a filter picks (none: the query groups by goal
// without a scroll goal filter), or eventsOnly when goal filters pick
// other goals only, which the events answer alone.
func checkScrollShape(s plan.Shape) (picked []string, eventsOnly bool, err error) {
	if len(scrollGoalValues(s.Filters)) == 0 && plan.Mentions(s.Filters, plan.Goal) {
		return nil, true, nil
	}
	for _, f := range s.Filters {
		sv := scrollGoalValues([]Filter{f})
		if len(sv) == 0 {
			continue
		}
		if f.Op != "is" || f.Dimension != plan.Goal || len(sv) != len(f.Values) {
			return nil, false, badf("a filter on scroll goals must be a top-level is filter naming scroll goals only")
		}
		picked = append(picked, sv...)
	}
	var why string
	for _, a := range s.Aggs {
		if !slices.Contains(scrollAggs, a) && why == "" {
			why = fmt.Sprintf("scroll goals have visitors only (no events or page views); metric aggregate %s cannot be queried with them", a)
		}
	}
	for _, d := range s.Dims {
		if d != plan.Goal && !plan.EngagementDim(d) && why == "" {
			why = "scroll goals can be broken down by event:page, event:hostname and time dimensions only, not " + d
		}
	}
	for _, d := range plan.FilterDims(s.Filters) {
		if d != plan.Page && d != plan.Hostname && d != plan.Goal && why == "" {
			why = "scroll goals can be filtered by event:page and event:hostname only, not " + d
		}
	}
	switch {
	case why == "":
		return picked, false, nil
	case len(picked) > 0:
		return nil, false, badf("%s", why)
	}
	// A breakdown by goal the engagements cannot answer lists the other
	// goals: the dashboard's Goals panel stays usable under any filter.
	return nil, true, nil
}

// buildScrollGoals is one row per group of the scroll goals completed in
// the range: each beacon counts for every goal whose page it is on and
// whose threshold its scroll depth reaches; picked, when set, limits the
// goals to those.
func (b *builder) buildScrollGoals(goals []plan.ScrollGoal, picked []string) statement {
	var names, res []string
	var thr []int
	for _, g := range goals {
		if len(picked) > 0 && !slices.Contains(picked, g.Name) {
			continue
		}
		names, res, thr = append(names, g.Name), append(res, g.PathRegexp()), append(thr, g.Threshold)
	}
	if len(names) == 0 { // picked goals that are not configured
		names, res, thr = []string{""}, []string{"^$"}, []int{101}
	}
	n := b.arg(names)
	var dimList string
	var outDims, where []string
	for i, d := range b.dims {
		x := fmt.Sprintf("arrayElement(%s, gi)", n)
		if d != plan.Goal {
			x = b.dimExpr(d)
		}
		dimList += fmt.Sprintf("%s AS d%d, ", x, i)
		outDims = append(outDims, fmt.Sprintf("d%d", i))
	}
	for _, f := range b.filters {
		if !plan.Mentions([]Filter{f}, plan.Goal) {
			where = append(where, "("+b.filterExpr(f)+")")
		}
	}
	var sb strings.Builder
	b.selectAggs(&sb, outDims, func(a string) string {
		if a == plan.AggVisitors {
			return "uniqExact(visitor_id)"
		}
		return "0"
	})
	conds := append([]string{"site = " + b.arg(b.site), b.TSRange(b.r.Start, b.r.End)}, where...)
	// The goals each beacon completes (their positions in names), then one
	// row per beacon and goal. One condition per goal, written out: 18.16
	// resolves no table column inside a lambda, and match() wants a
	// constant pattern.
	conds2 := make([]string, len(names))
	for i := range names {
		conds2[i] = fmt.Sprintf("if(scroll_depth >= %s AND scroll_depth <= 100 AND match(pathname, %s), %d, 0)", b.arg(thr[i]), b.arg(res[i]), i+1)
	}
	fmt.Fprintf(&sb, "\nFROM (\nSELECT %svisitor_id\nFROM (\nSELECT visitor_id, ts, hostname, pathname, arrayFilter(x -> x > 0, [%s]) AS gis"+
		"\nFROM %s\nWHERE %s\n)\nARRAY JOIN gis AS gi\n)", dimList, strings.Join(conds2, ", "), b.table(schema.Engagements), strings.Join(conds, "\n  AND "))
	groupBy(&sb, outDims)
	return statement{SQL: sb.String(), Args: b.List, Dims: b.dims, Aggs: b.aggs, route: plan.Raw}
}
