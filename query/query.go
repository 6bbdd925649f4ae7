// Package query answers questions about the collected events over HTTP, in
// the shape of Plausible's Stats API v2. It reads ClickHouse and nothing
// else; the collector writes it. See docs/query.md for what every number
// means.
package query

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// SiteConfig is what the query side knows about a site.
type SiteConfig struct {
	// Timezone names the IANA zone time buckets and date ranges are in;
	// empty means UTC.
	Timezone string
	// Goals are the site's goals: custom event names, and "Visit /path"
	// for page views of a path. Without any, the event:goal dimension lists
	// every event name other than pageview.
	Goals []string
	// Currency of revenue figures (ISO 4217); empty means EUR. Revenue in
	// other currencies is not summed.
	Currency string
}

func (s SiteConfig) currency() string {
	if s.Currency == "" {
		return "EUR"
	}
	return s.Currency
}

// Engine runs validated queries against ClickHouse.
type Engine struct {
	conn  driver.Conn
	db    string
	sites map[string]SiteConfig
	locs  map[string]*time.Location
	now   func() time.Time
	// markers, when set, shares the rollup check between queries.
	markers *markerCache
	// routed counts the statements that read the rollup tables, by what
	// they read, and resummed those built again without sums (tests check
	// that the fast paths are taken).
	routed   atomic.Int64
	routedBy [numVia]atomic.Int64
	resummed atomic.Int64
}

// NewEngine checks the site configuration and returns an engine over the
// events table in database db.
func NewEngine(conn driver.Conn, db string, sites map[string]SiteConfig, now func() time.Time) (*Engine, error) {
	if now == nil {
		now = time.Now
	}
	e := &Engine{conn: conn, db: "`" + db + "`", sites: sites, locs: map[string]*time.Location{}, now: now}
	for site, c := range sites {
		if c.Timezone == "" {
			continue
		}
		loc, err := time.LoadLocation(c.Timezone)
		if err != nil {
			return nil, fmt.Errorf("invalid time zone %q for site %s: %w", c.Timezone, site, err)
		}
		e.locs[site] = loc
	}
	return e, nil
}

func (e *Engine) site(s string) (SiteConfig, *time.Location, string) {
	c := e.sites[s]
	if loc, ok := e.locs[s]; ok {
		return c, loc, loc.String()
	}
	return c, time.UTC, "UTC"
}

// Row is one result row.
type Row struct {
	Metrics    []any       `json:"metrics"`
	Dimensions []string    `json:"dimensions"`
	Comparison *Comparison `json:"comparison,omitempty"`
}

// Comparison is a row's figures in the comparison range.
type Comparison struct {
	Dimensions []string `json:"dimensions"`
	Metrics    []any    `json:"metrics"`
	Change     []any    `json:"change"`
}

// Response is the body of a successful query.
type Response struct {
	Results []Row          `json:"results"`
	Meta    map[string]any `json:"meta"`
	Query   map[string]any `json:"query"`
}

// group is one set of dimension values with its raw aggregates.
type group struct {
	dims []string
	agg  map[string]int64
}

// Run answers a query.
func (e *Engine) Run(ctx context.Context, q *Query) (*Response, error) {
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
	aggs := aggsFor(q.Metrics)
	cc := covCache{}
	groups, err := e.fetch(ctx, cc, q.Site, cfg, tz, r, q.Dimensions, q.Filters, aggs)
	if err != nil {
		return nil, err
	}
	// Denominators: percentage is of all visitors with the same filters;
	// conversion rate of the visitors with the same other dimensions when
	// the goal filters are left out.
	var total int64
	if slices.Contains(q.Metrics, "percentage") {
		if len(q.Dimensions) == 0 {
			total = sumVisitors(groups)
		} else {
			t, err := e.fetch(ctx, cc, q.Site, cfg, tz, r, nil, q.Filters, []string{aggVisitors})
			if err != nil {
				return nil, err
			}
			total = sumVisitors(t)
		}
	}
	var convBase map[string]int64
	if slices.Contains(q.Metrics, "conversion_rate") {
		baseDims := slices.DeleteFunc(slices.Clone(q.Dimensions), func(d string) bool { return d == "event:goal" })
		t, err := e.fetch(ctx, cc, q.Site, cfg, tz, r, baseDims, withoutGoals(q.Filters), []string{aggVisitors})
		if err != nil {
			return nil, err
		}
		convBase = map[string]int64{}
		for _, g := range t {
			convBase[strings.Join(g.dims, "\x00")] = g.agg[aggVisitors]
		}
	}
	goalAt := slices.Index(q.Dimensions, "event:goal")
	metrics := func(g group) []any {
		out := make([]any, len(q.Metrics))
		for i, m := range q.Metrics {
			var base int64
			switch m {
			case "percentage":
				base = total
			case "conversion_rate":
				d := g.dims
				if goalAt >= 0 {
					d = slices.Delete(slices.Clone(d), goalAt, goalAt+1)
				}
				base = convBase[strings.Join(d, "\x00")]
			}
			out[i] = metricValue(m, g.agg, base, cfg.currency())
		}
		return out
	}

	var rows []Row
	for _, g := range groups {
		rows = append(rows, Row{Metrics: metrics(g), Dimensions: g.dims})
	}
	if len(q.Dimensions) == 0 && len(rows) == 0 {
		rows = append(rows, Row{Metrics: metrics(group{agg: map[string]int64{}}), Dimensions: []string{}})
	}
	sortRows(rows, q)

	meta := map[string]any{}
	if q.TotalRows {
		meta["total_rows"] = len(rows)
	}
	if q.TimeLabels {
		d := q.Dimensions[slices.IndexFunc(q.Dimensions, isTimeDim)]
		meta["time_labels"] = timeLabels(r, granularity(d, r), loc)
	}
	if q.Offset >= len(rows) {
		rows = []Row{}
	} else {
		rows = rows[q.Offset:min(len(rows), q.Offset+q.Limit)]
	}

	echo := map[string]any{
		"site_id":    q.Site,
		"metrics":    q.Metrics,
		"date_range": []string{r.Start.In(loc).Format(time.RFC3339), r.End.Add(-time.Second).In(loc).Format(time.RFC3339)},
		"dimensions": orEmpty(q.Dimensions),
		"filters":    filtersJSON(q.Filters),
		"order_by":   ordersJSON(effectiveOrder(q)),
		"include":    map[string]any{"time_labels": q.TimeLabels, "total_rows": q.TotalRows},
		"pagination": map[string]int{"limit": q.Limit, "offset": q.Offset},
		"timezone":   tz,
	}

	if q.Comparison != "" && !slices.ContainsFunc(q.Dimensions, isTimeDim) {
		cr := comparisonRange(r, q.Comparison, loc)
		cg, err := e.fetch(ctx, cc, q.Site, cfg, tz, cr, q.Dimensions, q.Filters, aggs)
		if err != nil {
			return nil, err
		}
		byKey := map[string]group{}
		for _, g := range cg {
			byKey[strings.Join(g.dims, "\x00")] = g
		}
		ctotal := sumVisitors(cg)
		for i := range rows {
			g, ok := byKey[strings.Join(rows[i].Dimensions, "\x00")]
			if !ok {
				g = group{dims: rows[i].Dimensions, agg: map[string]int64{}}
			}
			cm := make([]any, len(q.Metrics))
			change := make([]any, len(q.Metrics))
			for j, m := range q.Metrics {
				base := int64(0)
				if m == "percentage" {
					base = ctotal
				}
				cm[j] = metricValue(m, g.agg, base, cfg.currency())
				change[j] = changeOf(m, rows[i].Metrics[j], cm[j])
			}
			rows[i].Comparison = &Comparison{Dimensions: orEmpty(rows[i].Dimensions), Metrics: cm, Change: change}
		}
		echo["include"].(map[string]any)["comparisons"] = map[string]any{"mode": q.Comparison}
		meta["comparison_date_range"] = []string{cr.Start.In(loc).Format(time.RFC3339), cr.End.Add(-time.Second).In(loc).Format(time.RFC3339)}
	}
	for i := range rows {
		rows[i].Dimensions = orEmpty(rows[i].Dimensions)
	}
	return &Response{Results: orEmptyRows(rows), Meta: meta, Query: echo}, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orEmptyRows(r []Row) []Row {
	if r == nil {
		return []Row{}
	}
	return r
}

func sumVisitors(gs []group) int64 {
	var n int64
	for _, g := range gs {
		n += g.agg[aggVisitors]
	}
	return n
}

func aggsFor(metrics []string) []string {
	var out []string
	for _, m := range metrics {
		for _, a := range needs[m] {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// withoutGoals drops every top-level filter that mentions event:goal.
func withoutGoals(fs []Filter) []Filter {
	var out []Filter
	var has func(Filter) bool
	has = func(f Filter) bool {
		return f.Dimension == "event:goal" || slices.ContainsFunc(f.Children, has)
	}
	for _, f := range fs {
		if !has(f) {
			out = append(out, f)
		}
	}
	return out
}

func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}

// Revenue is a money figure as Plausible shows it.
type Revenue struct {
	Value    float64 `json:"value"`
	Currency string  `json:"currency"`
	Short    string  `json:"short"`
	Long     string  `json:"long"`
}

func revenue(micros int64, cur string) Revenue {
	// Whole cents from the integer, half away from zero: rounding
	// micros/1e6 as a float would turn 132.825 into 132.82.
	cents := micros / 10000
	if r := micros % 10000; r >= 5000 {
		cents++
	} else if r <= -5000 {
		cents--
	}
	v := float64(cents) / 100
	short := fmt.Sprintf("%.2f", v)
	if math.Abs(v) >= 1e6 {
		short = fmt.Sprintf("%.1fM", v/1e6)
	} else if math.Abs(v) >= 1e3 {
		short = fmt.Sprintf("%.1fK", v/1e3)
	}
	return Revenue{Value: v, Currency: cur, Short: cur + " " + short, Long: fmt.Sprintf("%s %.2f", cur, v)}
}

// metricValue computes a metric from a group's integer aggregates. Every
// derived figure is computed here, in one place, from exact integers.
func metricValue(m string, a map[string]int64, base int64, cur string) any {
	div := func(x, y int64) float64 {
		if y == 0 {
			return 0
		}
		return float64(x) / float64(y)
	}
	switch m {
	case "visitors", "visits", "pageviews", "events":
		return a[needs[m][0]]
	case "views_per_visit":
		return round(div(a[aggPageviews], a[aggVisits]), 2)
	case "bounce_rate":
		return int64(math.Round(100 * div(a[aggBounces], a[aggVisits])))
	case "visit_duration":
		return int64(math.Round(div(a[aggDuration], a[aggVisits])))
	case "percentage":
		return round(100*div(a[aggVisitors], base), 1)
	case "conversion_rate":
		return round(100*div(a[aggVisitors], base), 2)
	case "total_revenue":
		return revenue(a[aggRevenue], cur)
	case "average_revenue":
		if a[aggRevenueN] == 0 {
			return revenue(0, cur)
		}
		return revenue(int64(math.Round(div(a[aggRevenue], a[aggRevenueN]))), cur)
	}
	panic("BUG: metric " + m)
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case int64:
		return float64(v), true
	case float64:
		return v, true
	case Revenue:
		return v.Value, true
	}
	return 0, false
}

// changeOf is Plausible's change: percent for counts, points for rates.
func changeOf(m string, cur, prev any) any {
	c, _ := number(cur)
	p, _ := number(prev)
	switch m {
	case "bounce_rate", "percentage", "conversion_rate":
		return round(c-p, 1)
	}
	if p == 0 {
		if c == 0 {
			return int64(0)
		}
		return int64(100)
	}
	return int64(math.Round((c - p) / p * 100))
}

// effectiveOrder is order_by with the defaults filled in: a time dimension
// ascending, otherwise the first metric descending; the dimensions ascending
// break every tie so that pages never overlap.
func effectiveOrder(q *Query) []Order {
	out := slices.Clone(q.OrderBy)
	if len(out) == 0 {
		if i := slices.IndexFunc(q.Dimensions, isTimeDim); i >= 0 {
			out = append(out, Order{Field: q.Dimensions[i]})
		} else if len(q.Dimensions) > 0 {
			out = append(out, Order{Field: q.Metrics[0], Desc: true})
		}
	}
	return out
}

func sortRows(rows []Row, q *Query) {
	order := effectiveOrder(q)
	for _, d := range q.Dimensions {
		if !slices.ContainsFunc(order, func(o Order) bool { return o.Field == d }) {
			order = append(order, Order{Field: d})
		}
	}
	slices.SortStableFunc(rows, func(x, y Row) int {
		for _, o := range order {
			var c int
			if i := slices.Index(q.Metrics, o.Field); i >= 0 {
				a, _ := number(x.Metrics[i])
				b, _ := number(y.Metrics[i])
				c = cmp.Compare(a, b)
			} else {
				i := slices.Index(q.Dimensions, o.Field)
				c = cmp.Compare(x.Dimensions[i], y.Dimensions[i])
			}
			if o.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
}

func filtersJSON(fs []Filter) []any {
	out := []any{}
	for _, f := range fs {
		out = append(out, filterJSON(f))
	}
	return out
}

func filterJSON(f Filter) any {
	switch f.Op {
	case "and", "or":
		return []any{f.Op, filtersJSON(f.Children)}
	case "not":
		return []any{f.Op, filterJSON(f.Children[0])}
	}
	if !f.CaseSensitive {
		return []any{f.Op, f.Dimension, f.Values, map[string]bool{"case_sensitive": false}}
	}
	return []any{f.Op, f.Dimension, f.Values}
}

func ordersJSON(os []Order) [][]string {
	out := [][]string{}
	for _, o := range os {
		d := "asc"
		if o.Desc {
			d = "desc"
		}
		out = append(out, []string{o.Field, d})
	}
	return out
}

// covCache holds the coverage of each range one Run asks about.
type covCache map[[2]int64]*coverage

func (cc covCache) get(ctx context.Context, e *Engine, site string, r Range) (*coverage, error) {
	key := [2]int64{r.Start.Unix(), r.End.Unix()}
	if c, ok := cc[key]; ok {
		return c, nil
	}
	c, err := e.coverageFor(ctx, site, r)
	if err != nil {
		return nil, err
	}
	cc[key] = c
	return c, nil
}

// fetch runs one statement and returns its groups.
func (e *Engine) fetch(ctx context.Context, cc covCache, site string, cfg SiteConfig, tz string, r Range, dims []string, filters []Filter, aggs []string) ([]group, error) {
	if len(filters) == 0 && len(dims) == 1 && isTimeDim(dims[0]) && !slices.ContainsFunc(aggs, func(a string) bool { return !slices.Contains(hourAggs, a) }) {
		if out, ok, err := e.fetchHours(ctx, cc, site, cfg, tz, r, dims, aggs); err != nil || ok {
			return out, err
		}
	}
	b := &builder{db: e.db, site: site, cfg: cfg, tz: tz, r: r, dims: dims, filters: filters, aggs: aggs}
	if routeOf(dims, filters, aggs) != routeRaw || propsRoute(dims, filters, aggs) {
		c, err := cc.get(ctx, e, site, r)
		if err != nil {
			return nil, err
		}
		b.cov = c
	}
	out, ok, err := e.run(ctx, b.build())
	if err != nil || ok {
		return out, err
	}
	// A group spanned several rows on one day: the sums would count some
	// visitors twice. The same query again, without sums.
	e.resummed.Add(1)
	b2 := &builder{db: e.db, site: site, cfg: cfg, tz: tz, r: r, dims: dims, filters: filters, aggs: aggs, cov: b.cov, noSums: true}
	out, _, err = e.run(ctx, b2.build())
	return out, err
}

// run runs one statement and returns its groups, and false when the
// statement checks its sums and they are not exact.
func (e *Engine) run(ctx context.Context, p plan) ([]group, bool, error) {
	if p.via != viaRaw {
		e.routed.Add(1)
		e.routedBy[p.via].Add(1)
	}
	rows, err := e.conn.Query(ctx, p.SQL, p.Args...)
	if err != nil {
		return nil, false, fmt.Errorf("cannot run query: %w", err)
	}
	defer rows.Close()
	var out []group
	n := len(p.Dims) + len(p.Aggs)
	if p.check {
		n++
	}
	dest := make([]any, n)
	strs := make([]string, len(p.Dims))
	ints := make([]int64, n-len(p.Dims))
	for i := range strs {
		dest[i] = &strs[i]
	}
	for i := range ints {
		dest[len(strs)+i] = &ints[i]
	}
	exact := true
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, false, fmt.Errorf("cannot read query result: %w", err)
		}
		if p.check && ints[len(ints)-1] > 1 {
			exact = false
		}
		g := group{dims: slices.Clone(strs), agg: make(map[string]int64, len(p.Aggs))}
		for i, a := range p.Aggs {
			g.agg[a] = ints[i]
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("cannot read query result: %w", err)
	}
	return out, exact, nil
}

func (e *Engine) firstEvent(ctx context.Context, site string) (time.Time, error) {
	var n int64
	q := fmt.Sprintf("SELECT toInt64(min(ts)) FROM %s.events WHERE site = @site", e.db)
	if err := e.conn.QueryRow(ctx, q, named("site", site)).Scan(&n); err != nil {
		return time.Time{}, fmt.Errorf("cannot find the first event: %w", err)
	}
	if n <= 0 {
		return time.Time{}, nil
	}
	return time.Unix(n, 0), nil
}

// Realtime counts the visitors of the last five minutes.
func (e *Engine) Realtime(ctx context.Context, site string) (int64, error) {
	var n uint64
	now := e.now()
	q := fmt.Sprintf("SELECT uniqExact(visitor_id) FROM %s.events WHERE site = @site AND ts >= toDateTime(@from) AND ts <= toDateTime(@to)", e.db)
	err := e.conn.QueryRow(ctx, q, named("site", site), named("from", now.Add(-5*time.Minute).Unix()), named("to", now.Unix())).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("cannot count realtime visitors: %w", err)
	}
	return int64(n), nil
}
