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
	groups, err := x.groups(ctx, x.r)
	if err != nil {
		return nil, err
	}
	den, err := x.denominators(ctx, x.r, groups)
	if err != nil {
		return nil, err
	}
	if q.Comparison != "" {
		groups = x.everyBucket(groups)
	}
	rows := x.rows(groups, den)
	meta := x.meta(rows)
	rows = x.page(rows)
	echo := x.echo()
	if q.Comparison != "" {
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
	// filters are the query's filters and those Plausible derives from
	// them (visitFilters).
	filters []Filter
	// rev is the currency of the revenue metrics (revenue.go).
	rev revenueCtx
}

// resolve is the first step: the site's settings and the range as
// instants.
func (e *Engine) resolve(ctx context.Context, q *Query) (*run, error) {
	cfg, loc, tz := e.site(q.Site)
	if q.Timezone != "" && q.Timezone != tz {
		return nil, badf("#/timezone: the site's time zone is %s; dates are always in it (got %q)", tz, q.Timezone)
	}
	if err := checkGoals(q.Filters, cfg.goals()); err != nil {
		return nil, err
	}
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
	return &run{e: e, q: q, cfg: cfg, loc: loc, tz: tz, r: r, aggs: plan.AggsFor(q.Metrics), cov: covCache{},
		filters: visitFilters(q.Filters, q.Dimensions), rev: revenueFor(q, cfg.goals())}, nil
}

// hostnameDims are the visit dimensions an event:hostname filter also
// applies to, through the visit's entry (or exit) page's hostname: without
// it a visit that entered on one host and went on to another would lend
// the second host its source (Plausible does the same).
var hostnameDims = map[string]string{
	"visit:source": "visit:entry_page_hostname", "visit:entry_page": "visit:entry_page_hostname",
	"visit:utm_medium": "visit:entry_page_hostname", "visit:utm_source": "visit:entry_page_hostname",
	"visit:utm_campaign": "visit:entry_page_hostname", "visit:utm_content": "visit:entry_page_hostname",
	"visit:utm_term": "visit:entry_page_hostname", "visit:referrer": "visit:entry_page_hostname",
	"visit:exit_page": "visit:exit_page_hostname",
}

// visitFilters are fs with the top-level event:hostname filters repeated on
// the entry or exit hostname for the dimensions that need it.
func visitFilters(fs []Filter, dims []string) []Filter {
	out := slices.Clone(fs)
	for _, d := range dims {
		h, ok := hostnameDims[d]
		if !ok {
			continue
		}
		for _, f := range fs {
			if f.Dimension == plan.Hostname {
				f.Dimension = h
				if !slices.ContainsFunc(out, func(g Filter) bool { return g.Dimension == h && g.Op == f.Op && slices.Equal(g.Values, f.Values) }) {
					out = append(out, f)
				}
			}
		}
	}
	return out
}

// groups fetches the query's groups over range r. The visit metrics
// bounce_rate and visit_duration follow Plausible's rules for pages: by
// an event:page dimension they are over the visits that entered on each
// page; with a top-level event:page filter, bounce_rate is over the visits
// that entered on the filtered page (a visit that only passed the page did
// not bounce off it). Those come from a second statement.
func (x *run) groups(ctx context.Context, r Range) ([]group, error) {
	gs, err := x.fetch(ctx, r, plan.Shape{Dims: x.q.Dimensions, Filters: x.filters, Aggs: x.aggs, Machines: x.machines()})
	if err != nil {
		return nil, err
	}
	rate := slices.Contains(x.q.Metrics, "bounce_rate")
	dur := slices.Contains(x.q.Metrics, "visit_duration")
	byPage := slices.Contains(x.q.Dimensions, plan.Page)
	entryDims, entry := x.q.Dimensions, slices.Clone(x.filters)
	switch {
	case byPage && (rate || dur):
		entryDims = slices.Clone(x.q.Dimensions)
		entryDims[slices.Index(entryDims, plan.Page)] = "visit:entry_page"
		entry = renameDim(x.filters, plan.Page, "visit:entry_page")
	case rate:
		for _, f := range x.filters {
			if f.Dimension == plan.Page {
				f.Dimension = "visit:entry_page"
				entry = append(entry, f)
			}
		}
		if len(entry) == len(x.filters) {
			return gs, nil
		}
		dur = false
	default:
		return gs, nil
	}
	eg, err := x.fetch(ctx, r, plan.Shape{Dims: entryDims, Filters: entry, Aggs: []string{plan.AggBounces, plan.AggVisits, plan.AggDuration}, Machines: x.machines()})
	if err != nil {
		return nil, err
	}
	byKey := map[string]group{}
	for _, g := range eg {
		byKey[key(g.dims)] = g
	}
	for _, g := range gs {
		e := byKey[key(g.dims)]
		if rate {
			g.agg[plan.AggEntryBounces] = e.agg[plan.AggBounces]
			g.agg[plan.AggEntryVisits] = e.agg[plan.AggVisits]
		}
		if dur {
			g.agg[plan.AggEntryDuration] = e.agg[plan.AggDuration]
			g.agg[plan.AggEntryDurationVisits] = e.agg[plan.AggVisits]
		}
	}
	return gs, nil
}

// renameDim is fs with every leaf on dimension from put on to.
func renameDim(fs []Filter, from, to string) []Filter {
	out := make([]Filter, len(fs))
	for i, f := range fs {
		if f.Dimension == from {
			f.Dimension = to
		}
		f.Children = renameDim(f.Children, from, to)
		out[i] = f
	}
	return out
}

// denom holds the bases of the metrics that are shares (plan.Base).
type denom struct {
	total int64            // BaseTotal
	conv  map[string]int64 // BaseConversion, by the other dimensions' key
	all   int64            // BaseAllConverting
}

// machines reports whether the query reads machine events (plan.WantsMachines).
func (x *run) machines() bool { return plan.WantsMachines(x.q.Dimensions, x.q.Filters) }

func key(dims []string) string { return strings.Join(dims, "\x00") }

func (x *run) needs(b plan.Base) bool {
	return slices.ContainsFunc(x.q.Metrics, func(m string) bool { return plan.MustMetric(m).Base == b })
}

// denominators: percentage is of all visitors with the same filters;
// conversion_rate of all visitors when the goal and property filters are
// left out, group_conversion_rate of those with the same other
// dimensions.
func (x *run) denominators(ctx context.Context, r Range, groups []group) (denom, error) {
	var d denom
	visitors := []string{plan.AggVisitors}
	if x.needs(plan.BaseTotal) {
		t := groups
		if len(x.q.Dimensions) > 0 {
			var err error
			if t, err = x.fetch(ctx, r, plan.Shape{Filters: x.filters, Aggs: visitors, Machines: x.machines()}); err != nil {
				return d, err
			}
		}
		d.total = sumVisitors(t)
	}
	if x.needs(plan.BaseConversion) {
		dims := slices.DeleteFunc(slices.Clone(x.q.Dimensions), func(d string) bool { return d == plan.Goal })
		t, err := x.fetch(ctx, r, plan.Shape{Dims: dims, Filters: plan.WithoutGoalsAndProps(x.filters), Aggs: visitors, Machines: x.machines()})
		if err != nil {
			return d, err
		}
		d.conv = map[string]int64{}
		for _, g := range t {
			d.conv[key(g.dims)] = g.agg[plan.AggVisitors]
		}
	}
	if x.needs(plan.BaseAllConverting) {
		t, err := x.fetch(ctx, r, plan.Shape{Filters: plan.WithoutGoalsAndProps(x.filters), Aggs: visitors, Machines: x.machines()})
		if err != nil {
			return d, err
		}
		d.all = sumVisitors(t)
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
		case plan.BaseAllConverting:
			base = d.all
		case plan.BaseConversion:
			dims := g.dims
			if goalAt >= 0 {
				dims = slices.Delete(slices.Clone(dims), goalAt, goalAt+1)
			}
			base = d.conv[key(dims)]
		}
		out[i] = m.Value(g.agg, base, x.rev.currencyOf(g.dims, goalAt))
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
	if w := x.rev.warnings(x.q.Metrics); w != nil {
		meta["metric_warnings"] = w
	}
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

// timeDim is the query's time dimension's position, or -1.
func (x *run) timeDim() int { return slices.IndexFunc(x.q.Dimensions, isTimeDim) }

// labels are the time buckets of range r at the query's granularity.
func (x *run) labels(r Range) []string {
	d := x.q.Dimensions[x.timeDim()]
	return timeLabels(r, granularity(d, x.r), x.loc)
}

// everyBucket adds an empty group for every time bucket without one, when
// time is the only dimension: a comparison lists each bucket with its
// counterpart, as Plausible's does.
func (x *run) everyBucket(gs []group) []group {
	if len(x.q.Dimensions) != 1 || x.timeDim() != 0 {
		return gs
	}
	have := map[string]bool{}
	for _, g := range gs {
		have[g.dims[0]] = true
	}
	for _, l := range x.labels(x.r) {
		if !have[l] {
			gs = append(gs, group{dims: []string{l}, agg: map[string]int64{}})
		}
	}
	return gs
}

// compare adds each row's figures in the comparison range and their
// change. A row's counterpart has the same dimensions, its time bucket
// moved to the bucket at the same place in the comparison range.
func (x *run) compare(ctx context.Context, rows []Row, meta, echo map[string]any) error {
	cr := comparisonRange(x.r, x.q.Comparison, x.loc)
	cg, err := x.groups(ctx, cr)
	if err != nil {
		return err
	}
	d, err := x.denominators(ctx, cr, cg)
	if err != nil {
		return err
	}
	byKey := map[string]group{}
	for _, g := range cg {
		byKey[key(g.dims)] = g
	}
	ti := x.timeDim()
	var at map[string]int
	var shifted []string
	if ti >= 0 {
		at = map[string]int{}
		for i, l := range x.labels(x.r) {
			at[l] = i
		}
		shifted = x.labels(cr)
	}
	for i := range rows {
		dims := slices.Clone(orEmpty(rows[i].Dimensions))
		if ti >= 0 {
			if n, ok := at[dims[ti]]; ok && n < len(shifted) {
				dims[ti] = shifted[n]
			}
		}
		g, ok := byKey[key(dims)]
		if !ok {
			g = group{dims: dims, agg: map[string]int64{}}
		}
		cm := x.metrics(g, d)
		change := make([]any, len(x.q.Metrics))
		for j, name := range x.q.Metrics {
			change[j] = plan.MustMetric(name).Change(rows[i].Metrics[j], cm[j])
		}
		rows[i].Comparison = &Comparison{Dimensions: dims, Metrics: cm, Change: change}
	}
	echo["include"].(map[string]any)["comparisons"] = map[string]any{"mode": x.q.Comparison}
	meta["comparison_date_range"] = x.span(cr)
	return nil
}

// checkGoals refuses, as Plausible does, an "is" goal filter naming a goal
// the site has not configured.
func checkGoals(fs []Filter, goals []plan.GoalDef) error {
	for _, f := range fs {
		if f.Dimension == plan.Goal && f.Op == "is" {
			if _, missing := plan.MatchGoals(goals, f); missing != "" {
				return badf("%s", plan.GoalError(missing))
			}
		}
		if err := checkGoals(f.Children, goals); err != nil {
			return err
		}
	}
	return nil
}
