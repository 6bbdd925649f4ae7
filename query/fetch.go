package query

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/query/plan"
)

// fetch answers one shape over range r: it looks up what the rollup tables
// cover of r when a rollup route could answer, asks the planner for the
// route, and runs that route's statement. A checked statement whose sums
// are inexact, or hour_stats that cannot cut the buckets, is planned again
// with that route ruled out.
func (x *run) fetch(ctx context.Context, r Range, s plan.Shape) ([]group, error) {
	if slices.Contains(s.Dims, plan.Goal) && len(x.cfg.goals()) == 0 {
		return nil, nil // no goals, no goal rows (ClickHouse would group the constant '' into one)
	}
	if x.scrollGoals(s) {
		return x.fetchScrollGoals(ctx, r, s)
	}
	if hasEngagement(s) {
		return x.fetchEngaged(ctx, r, s)
	}
	return x.fetchPlanned(ctx, r, s)
}

// fetchPlanned answers a shape of the events table by the planned route.
func (x *run) fetchPlanned(ctx context.Context, r Range, s plan.Shape) ([]group, error) {
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
		b := &builder{db: x.e.db, site: x.q.Site, cfg: x.cfg, tz: x.tz, r: r, dims: s.Dims, filters: s.Filters, aggs: s.Aggs, machines: s.Machines, cov: cov, noSums: c.NoSums, rev: x.rev}
		st := b.buildRoute(route)
		if err := x.fitsQuerySize(st); err != nil {
			return nil, err
		}
		out, exact, err := x.e.exec(ctx, x.q.Site, st)
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
	if p.parts {
		e.parted.Add(1)
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

func named(name string, v any) any { return clickhouse.Named(name, v) }

// MaxQuerySize is ClickHouse's default max_query_size: the server refuses
// a longer statement text with a syntax error, which would be a bare 500.
const MaxQuerySize = 262144

// fitsQuerySize refuses, with a 400 naming the filter with the most value
// bytes, a statement whose text would pass MaxQuerySize once its bound
// values are written in (clickhouse-go binds them as escaped literals;
// 18.16 has no server-side parameters). The validation limits (1000 values
// a filter, 100 filters) still allow far more than that.
func (x *run) fitsQuerySize(st statement) error {
	n := len(st.SQL)
	for _, a := range st.Args {
		if nv, ok := a.(driver.NamedValue); ok {
			n += literalSize(nv.Value)
		}
	}
	if n <= MaxQuerySize {
		return nil
	}
	path, best := "#/filters", -1
	var walk func(f Filter, p string) // paths as parseFilter names them
	walk = func(f Filter, p string) {
		switch {
		case f.Op == "not":
			walk(f.Children[0], p+"/1")
		case len(f.Children) > 0:
			for i, c := range f.Children {
				walk(c, fmt.Sprintf("%s/1/%d", p, i))
			}
		default:
			if sz := literalSize(f.Values); sz > best {
				path, best = p+"/2", sz
			}
		}
	}
	for i, f := range x.q.Filters {
		walk(f, fmt.Sprintf("#/filters/%d", i))
	}
	return badf("%s: the filter values make the query about %d bytes, over ClickHouse's max_query_size of %d; use fewer or shorter values", path, n, MaxQuerySize)
}

// literalSize is how long v is as a literal in the statement's text, at
// most: quotes around a string, a backslash before each quote or backslash.
func literalSize(v any) int {
	switch v := v.(type) {
	case string:
		return len(v) + 2 + strings.Count(v, "'") + strings.Count(v, `\`)
	case []string:
		n := 2
		for _, s := range v {
			n += literalSize(s) + 2
		}
		return n
	}
	return 24
}
