package query

import (
	"context"
	"fmt"
	"slices"

	"github.com/ClickHouse/clickhouse-go/v2"

	"turf/query/plan"
)

// fetch answers one shape over range r: it looks up what the rollup tables
// cover of r when a rollup route could answer, asks the planner for the
// route, and runs that route's statement. A checked statement whose sums
// are inexact, or hour_stats that cannot cut the buckets, is planned again
// with that route ruled out.
func (x *run) fetch(ctx context.Context, r Range, s plan.Shape) ([]group, error) {
	var cov *coverage
	c := plan.Cover{}
	if plan.Rollups(s) {
		var err error
		if cov, err = x.cov.get(ctx, x.e, x.q.Site, r); err != nil {
			return nil, err
		}
		c = cov.cover()
	}
	for {
		route := plan.Decide(s, c)
		if route == plan.HourStats {
			out, ok, err := x.fetchHours(ctx, cov, r, s)
			if err != nil || ok {
				return out, err
			}
			c.NoHours = true
			continue
		}
		b := &builder{db: x.e.db, site: x.q.Site, cfg: x.cfg, tz: x.tz, r: r, dims: s.Dims, filters: s.Filters, aggs: s.Aggs, cov: cov, noSums: c.NoSums}
		out, exact, err := x.e.exec(ctx, x.q.Site, b.buildRoute(route))
		if err != nil || exact {
			return out, err
		}
		// A group spanned several rows on one day: the sums would count
		// some visitors twice. Planned again, without sums.
		x.e.resummed.Add(1)
		c.NoSums = true
	}
}

// exec runs one statement and returns its groups, and false when the
// statement checks its sums and they are not exact.
func (e *Engine) exec(ctx context.Context, site string, p statement) ([]group, bool, error) {
	e.count(site, p.route)
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

func named(name string, v any) any { return clickhouse.Named(name, v) }
