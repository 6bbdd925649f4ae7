// Package query answers questions about the collected events over HTTP, in
// the shape of Plausible's Stats API v2. It reads ClickHouse and nothing
// else; the collector writes it. See docs/query.md for what every number
// means.
//
// A query passes, in order: api.go (the one pipeline: authorize, rate
// limit, parse, run, map errors), request.go (validation against the
// vocabulary of package plan), run.go (Engine.Run's named steps), fetch.go
// (each statement planned by plan.Decide and run), the route's builder file
// route_<name>.go with builder.go, and, for visits, query/sql. The rollup
// tables those routes read are written by query/rollup.
package query

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/VictoriaMetrics/metrics"

	"turf/query/plan"
	qsql "turf/query/sql"
	"turf/schema"
)

// SiteConfig is what the query side knows about a site.
type SiteConfig struct {
	// Timezone names the IANA zone time buckets and date ranges are in;
	// empty means UTC.
	Timezone string
	// Goals are the site's goals in the --goal flag's syntax
	// (plan.ParseGoal): custom event names, "Visit /path" for page views of
	// a path pattern (* and ** wildcards), each optionally with
	// ";currency=EUR". Without any, the event:goal dimension is empty and a
	// goal filter is refused.
	Goals []string
}

// goals are the parsed Goals (NewEngine checked them).
func (s SiteConfig) goals() []plan.GoalDef {
	var out []plan.GoalDef
	for _, g := range s.Goals {
		if x, err := plan.ParseGoal(g); err == nil {
			out = append(out, x)
		}
	}
	return out
}

// Engine runs validated queries against ClickHouse.
type Engine struct {
	conn driver.Conn
	db   string // the database's name, unquoted
	// sites is replaced whole by SetSites when settings change (the
	// dashboard's, polled from ClickHouse), so a query sees one version.
	sites atomic.Pointer[siteTable]
	now   func() time.Time
	// markers, when set, shares the rollup check between queries.
	markers *markerCache
	// debugf, when set, logs every statement's route.
	debugf func(format string, args ...any)
	// routed counts the statements that read the rollup tables, routedBy
	// every statement by its route, and resummed the checked statements
	// planned again without sums: the metric Routes reports (and tests
	// check that the fast paths are taken).
	routed   atomic.Int64
	routedBy [plan.NumRoutes]atomic.Int64
	resummed atomic.Int64
	// parted counts the statements that read a day's head or tail rows.
	parted atomic.Int64
}

// Routes reports how many statements each route answered since the start,
// by plan.Route name, as "resummed" how many checked statements were
// planned again without sums, and as "parts" how many read a day's head or
// tail rows.
func (e *Engine) Routes() map[string]int64 {
	out := map[string]int64{"resummed": e.resummed.Load(), "parts": e.parted.Load()}
	for r := range plan.NumRoutes {
		out[r.String()] = e.routedBy[r].Load()
	}
	return out
}

// count records that a statement took route r.
func (e *Engine) count(site string, r plan.Route) {
	if r != plan.Raw {
		e.routed.Add(1)
	}
	e.routedBy[r].Add(1)
	if e.debugf != nil {
		e.debugf("query: site %s: route %s", site, r)
	}
}

// NewEngine checks the site configuration and returns an engine over the
// events table in database db.
func NewEngine(conn driver.Conn, db string, sites map[string]SiteConfig, now func() time.Time) (*Engine, error) {
	if now == nil {
		now = time.Now
	}
	e := &Engine{conn: conn, db: db, now: now}
	if err := e.SetSites(sites); err != nil {
		return nil, err
	}
	return e, nil
}

// siteTable is the per-site configuration with the time zones loaded.
type siteTable struct {
	sites map[string]SiteConfig
	locs  map[string]*time.Location
}

// SetSites replaces the per-site configuration; queries already running
// finish with the old one.
func (e *Engine) SetSites(sites map[string]SiteConfig) error {
	t := &siteTable{sites: sites, locs: map[string]*time.Location{}}
	for site, c := range sites {
		for _, g := range c.Goals {
			if _, err := plan.ParseGoal(g); err != nil {
				return fmt.Errorf("site %s: %w", site, err)
			}
		}
		if c.Timezone == "" {
			continue
		}
		loc, err := time.LoadLocation(c.Timezone)
		if err != nil {
			return fmt.Errorf("invalid time zone %q for site %s: %w", c.Timezone, site, err)
		}
		t.locs[site] = loc
	}
	e.sites.Store(t)
	return nil
}

// Zone is the time zone of a site's date ranges (UTC unless configured):
// the rollup job cuts its builds where the site's day starts
// (rollup.Job.Zone).
func (e *Engine) Zone(site string) *time.Location {
	_, loc, _ := e.site(site)
	return loc
}

func (e *Engine) site(s string) (SiteConfig, *time.Location, string) {
	t := e.sites.Load()
	c := t.sites[s]
	if loc, ok := t.locs[s]; ok {
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
		n += g.agg[plan.AggVisitors]
	}
	return n
}

func (e *Engine) firstEvent(ctx context.Context, site string) (time.Time, error) {
	var n int64
	q := fmt.Sprintf("SELECT toInt64(min(ts)) FROM %s WHERE site = @site", schema.Table(e.db, schema.Events))
	if err := e.conn.QueryRow(ctx, q, named("site", site)).Scan(&n); err != nil {
		return time.Time{}, fmt.Errorf("cannot find the first event: %w", err)
	}
	if n <= 0 {
		return time.Time{}, nil
	}
	return time.Unix(n, 0), nil
}

// Realtime counts the visitors of the last five minutes (to now
// inclusive). The key hint keeps 18.16 to those days instead of the whole
// month's partition, which the dashboard asked it to read on every load.
func (e *Engine) Realtime(ctx context.Context, site string) (int64, error) {
	var n uint64
	now := e.now()
	var a qsql.Args
	q := fmt.Sprintf("SELECT uniqExact(visitor_id) FROM %s WHERE site = %s AND %s AND %s", schema.Table(e.db, schema.Events), a.Bind(site),
		a.TSRange(now.Add(-5*time.Minute), now.Add(time.Second)), plan.HumanEvents)
	err := e.conn.QueryRow(ctx, q, a.List...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("cannot count realtime visitors: %w", err)
	}
	return int64(n), nil
}

// RegisterMetrics exports the statements answered by each route as
// turf_query_statements_total{route="..."}, and the checked statements
// planned again without sums as turf_query_resummed_total.
func (e *Engine) RegisterMetrics(set *metrics.Set) {
	for r := range plan.NumRoutes {
		set.NewGauge(`turf_query_statements_total{route="`+r.String()+`"}`, func() float64 { return float64(e.routedBy[r].Load()) })
	}
	set.NewGauge("turf_query_resummed_total", func() float64 { return float64(e.resummed.Load()) })
	set.NewGauge("turf_query_day_parts_total", func() float64 { return float64(e.parted.Load()) })
}
