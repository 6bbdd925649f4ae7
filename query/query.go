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
	"turf/schema"
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
	db    string // the database's name, unquoted
	sites map[string]SiteConfig
	locs  map[string]*time.Location
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
}

// Routes reports how many statements each route answered since the start,
// by plan.Route name, and as "resummed" how many checked statements were
// planned again without sums.
func (e *Engine) Routes() map[string]int64 {
	out := map[string]int64{"resummed": e.resummed.Load()}
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
	e := &Engine{conn: conn, db: db, sites: sites, locs: map[string]*time.Location{}, now: now}
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

// Realtime counts the visitors of the last five minutes.
func (e *Engine) Realtime(ctx context.Context, site string) (int64, error) {
	var n uint64
	now := e.now()
	q := fmt.Sprintf("SELECT uniqExact(visitor_id) FROM %s WHERE site = @site AND ts >= toDateTime(@from) AND ts <= toDateTime(@to)", schema.Table(e.db, schema.Events))
	err := e.conn.QueryRow(ctx, q, named("site", site), named("from", now.Add(-5*time.Minute).Unix()), named("to", now.Unix())).Scan(&n)
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
}
