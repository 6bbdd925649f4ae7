package query

import (
	"context"
	"slices"
	"strings"
	"time"

	"turf/query/plan"
)

// Run answers a query in named steps, each a function below: resolve the
// range, fetch the groups (each statement planned by plan.Decide, see
// fetch.go), the denominators, the rows, the comparison, the echo.
func (e *Engine) Run(ctx context.Context, q *Query) (*Response, error) {
	x, err := e.resolve(ctx, q)
	if err != nil {
		return nil, err
	}
	groups, err := x.fetch(ctx, x.r, plan.Shape{Dims: q.Dimensions, Filters: q.Filters, Aggs: x.aggs})
	if err != nil {
		return nil, err
	}
	den, err := x.denominators(ctx, groups)
	if err != nil {
		return nil, err
	}
	rows := x.rows(groups, den)
	meta := x.meta(rows)
	rows = x.page(rows)
	echo := x.echo()
	if q.Comparison != "" && !slices.ContainsFunc(q.Dimensions, isTimeDim) {
		if err := x.compare(ctx, rows, meta, echo); err != nil {
			return nil, err
		}
	}
	for i := range rows {
		rows[i].Dimensions = orEmpty(rows[i].Dimensions)
	}
	return &Response{Results: orEmptyRows(rows), Meta: meta, Query: echo}, nil
}

// run is one Run's state: the query, its site's settings, its range and
// the coverage of the ranges it asked about.
type run struct {
	e    *Engine
	q    *Query
	cfg  SiteConfig
	loc  *time.Location
	tz   string
	r    Range
	aggs []string
	cov  covCache
}

// resolve is the first step: the site's settings and the range as
// instants.
func (e *Engine) resolve(ctx context.Context, q *Query) (*run, error) {
	cfg, loc, tz := e.site(q.Site)
	var first time.Time
	if q.DateRange.Preset == "all" {
		var err error
		if first, err = e.firstEvent(ctx, q.Site); err != nil {
			return nil, err
		}
	}
	r, err := resolveRange(q.DateRange, loc, e.now(), first)
	if err != nil {
		return nil, err
	}
	return &run{e: e, q: q, cfg: cfg, loc: loc, tz: tz, r: r, aggs: plan.AggsFor(q.Metrics), cov: covCache{}}, nil
}

// denom holds the bases of the metrics that are shares (plan.Base).
type denom struct {
	total int64            // BaseTotal
	conv  map[string]int64 // BaseConversion, by the other dimensions' key
}

func key(dims []string) string { return strings.Join(dims, "\x00") }

func (x *run) needs(b plan.Base) bool {
	return slices.ContainsFunc(x.q.Metrics, func(m string) bool { return plan.MustMetric(m).Base == b })
}

// denominators: percentage is of all visitors with the same filters;
// conversion rate of the visitors with the same other dimensions when the
// goal filters are left out.
func (x *run) denominators(ctx context.Context, groups []group) (denom, error) {
	var d denom
	visitors := []string{plan.AggVisitors}
	if x.needs(plan.BaseTotal) {
		t := groups
		if len(x.q.Dimensions) > 0 {
			var err error
			if t, err = x.fetch(ctx, x.r, plan.Shape{Filters: x.q.Filters, Aggs: visitors}); err != nil {
				return d, err
			}
		}
		d.total = sumVisitors(t)
	}
	if x.needs(plan.BaseConversion) {
		dims := slices.DeleteFunc(slices.Clone(x.q.Dimensions), func(d string) bool { return d == plan.Goal })
		t, err := x.fetch(ctx, x.r, plan.Shape{Dims: dims, Filters: plan.WithoutGoals(x.q.Filters), Aggs: visitors})
		if err != nil {
			return d, err
		}
		d.conv = map[string]int64{}
		for _, g := range t {
			d.conv[key(g.dims)] = g.agg[plan.AggVisitors]
		}
	}
	return d, nil
}

// metrics are a group's metric values.
func (x *run) metrics(g group, d denom) []any {
	goalAt := slices.Index(x.q.Dimensions, plan.Goal)
	out := make([]any, len(x.q.Metrics))
	for i, name := range x.q.Metrics {
		m := plan.MustMetric(name)
		var base int64
		switch m.Base {
		case plan.BaseTotal:
			base = d.total
		case plan.BaseConversion:
			dims := g.dims
			if goalAt >= 0 {
				dims = slices.Delete(slices.Clone(dims), goalAt, goalAt+1)
			}
			base = d.conv[key(dims)]
		}
		out[i] = m.Value(g.agg, base, x.cfg.currency())
	}
	return out
}

// rows are the groups as sorted result rows; a query without dimensions
// always has its one row.
func (x *run) rows(groups []group, d denom) []Row {
	var rows []Row
	for _, g := range groups {
		rows = append(rows, Row{Metrics: x.metrics(g, d), Dimensions: g.dims})
	}
	if len(x.q.Dimensions) == 0 && len(rows) == 0 {
		rows = append(rows, Row{Metrics: x.metrics(group{agg: map[string]int64{}}, d), Dimensions: []string{}})
	}
	sortRows(rows, x.q)
	return rows
}

// meta is the response's meta before the comparison: the total rows and
// time labels asked for.
func (x *run) meta(rows []Row) map[string]any {
	meta := map[string]any{}
	if x.q.TotalRows {
		meta["total_rows"] = len(rows)
	}
	if x.q.TimeLabels {
		d := x.q.Dimensions[slices.IndexFunc(x.q.Dimensions, isTimeDim)]
		meta["time_labels"] = timeLabels(x.r, granularity(d, x.r), x.loc)
	}
	return meta
}

// page is the rows of the page asked for.
func (x *run) page(rows []Row) []Row {
	if x.q.Offset >= len(rows) {
		return []Row{}
	}
	return rows[x.q.Offset:min(len(rows), x.q.Offset+x.q.Limit)]
}

func (x *run) span(r Range) []string {
	return []string{r.Start.In(x.loc).Format(time.RFC3339), r.End.Add(-time.Second).In(x.loc).Format(time.RFC3339)}
}

// echo is the query as turf understood it.
func (x *run) echo() map[string]any {
	q := x.q
	return map[string]any{
		"site_id":    q.Site,
		"metrics":    q.Metrics,
		"date_range": x.span(x.r),
		"dimensions": orEmpty(q.Dimensions),
		"filters":    filtersJSON(q.Filters),
		"order_by":   ordersJSON(effectiveOrder(q)),
		"include":    map[string]any{"time_labels": q.TimeLabels, "total_rows": q.TotalRows},
		"pagination": map[string]int{"limit": q.Limit, "offset": q.Offset},
		"timezone":   x.tz,
	}
}

// compare adds each row's figures in the comparison range and their
// change.
func (x *run) compare(ctx context.Context, rows []Row, meta, echo map[string]any) error {
	cr := comparisonRange(x.r, x.q.Comparison, x.loc)
	cg, err := x.fetch(ctx, cr, plan.Shape{Dims: x.q.Dimensions, Filters: x.q.Filters, Aggs: x.aggs})
	if err != nil {
		return err
	}
	byKey := map[string]group{}
	for _, g := range cg {
		byKey[key(g.dims)] = g
	}
	d := denom{total: sumVisitors(cg)}
	for i := range rows {
		g, ok := byKey[key(rows[i].Dimensions)]
		if !ok {
			g = group{dims: rows[i].Dimensions, agg: map[string]int64{}}
		}
		cm := make([]any, len(x.q.Metrics))
		change := make([]any, len(x.q.Metrics))
		for j, name := range x.q.Metrics {
			m := plan.MustMetric(name)
			base := int64(0)
			if m.Base == plan.BaseTotal {
				base = d.total
			}
			cm[j] = m.Value(g.agg, base, x.cfg.currency())
			change[j] = m.Change(rows[i].Metrics[j], cm[j])
		}
		rows[i].Comparison = &Comparison{Dimensions: orEmpty(rows[i].Dimensions), Metrics: cm, Change: change}
	}
	echo["include"].(map[string]any)["comparisons"] = map[string]any{"mode": x.q.Comparison}
	meta["comparison_date_range"] = x.span(cr)
	return nil
}
