package query

import (
	"context"
	"fmt"
	"slices"
	"time"

	"turf/query/plan"
	"turf/query/rollup"
	"turf/schema"
)

// The hour_stats route: time series from hour_stats. A query for visitors, page views or events
// per day, week or month, without filters, is answered per UTC day: a
// built day whose part in a bucket is the whole day, a head [0, h) or a
// tail [h, 24) reads its hour_stats rows (visitor ids change every UTC day,
// so the parts add up); the other days' parts are counted from the raw
// events in one statement. The time zone must move bucket edges only by
// whole hours, and the range must start and end on one; otherwise, or when
// a bucket holds a part strictly inside a day, the query takes the usual
// path.

// hourPart is one bucket's share of one UTC day: hours [from, to).
type hourPart struct {
	label    string
	day      time.Time
	from, to int
}

// hourParts cuts r into its buckets' parts of UTC days, or reports false.
func hourParts(r Range, gran string, loc *time.Location) ([]hourPart, bool) {
	if gran == "hour" || !r.Start.Equal(r.Start.Truncate(time.Hour)) || !r.End.Equal(r.End.Truncate(time.Hour)) {
		return nil, false
	}
	var out []hourPart
	for t := r.Start.UTC(); t.Before(r.End); t = t.Add(time.Hour) {
		if _, off := t.In(loc).Zone(); off%3600 != 0 {
			return nil, false
		}
		label, day, h := bucketLabel(t, gran, loc, r.Start), rollup.UTCDay(t), t.Hour()
		if n := len(out); n > 0 && out[n-1].label == label && out[n-1].day.Equal(day) && out[n-1].to == h {
			out[n-1].to = h + 1
			continue
		}
		out = append(out, hourPart{label: label, day: day, from: h, to: h + 1})
	}
	return out, true
}

// fetchHours answers a time series from hour_stats; false when it cannot.
func (x *run) fetchHours(ctx context.Context, cov *coverage, r Range, sh plan.Shape) ([]group, bool, error) {
	parts, ok := hourParts(r, granularity(sh.Dims[0], r), x.loc)
	if !ok {
		return nil, false, nil
	}
	days, builds, raw, ok := hourDays(cov, parts)
	if !ok {
		return nil, false, nil
	}
	rows, err := x.e.hourRows(ctx, x.q.Site, days, builds)
	if err != nil {
		return nil, false, err
	}
	sums := map[string]map[string]int64{}
	var labels []string
	add := func(label, agg string, n int64) {
		if sums[label] == nil {
			sums[label] = map[string]int64{}
			labels = append(labels, label)
		}
		sums[label][agg] += n
	}
	addHours(parts, rows, add)
	if len(raw) > 0 {
		if err := x.rawBuckets(ctx, r, sh.Dims[0], raw, add); err != nil {
			return nil, false, err
		}
	}
	// Buckets without events are left out, as on the raw route.
	var out []group
	for _, l := range labels {
		s := sums[l]
		if s[plan.AggEvents] == 0 {
			continue
		}
		g := group{dims: []string{l}, agg: map[string]int64{}}
		for _, a := range sh.Aggs {
			g.agg[a] = s[a]
		}
		out = append(out, g)
	}
	return out, true, nil
}

// hourDays sorts the parts' days into the built ones hour_stats answers
// (with their builds) and the raw ones, or reports false: a part strictly
// inside a built day, or no built day at all.
func hourDays(cov *coverage, parts []hourPart) ([]time.Time, []uint64, []time.Time, bool) {
	built := map[time.Time]uint64{}
	for i, d := range cov.days {
		built[d] = cov.builds[i]
	}
	for i, d := range cov.edges {
		built[d] = cov.edgeBuilds[i]
	}
	var days []time.Time
	var builds []uint64
	var raw []time.Time // unbuilt days, read from the events
	for _, p := range parts {
		id, ok := built[p.day]
		switch {
		case !ok:
			if !slices.ContainsFunc(raw, p.day.Equal) {
				raw = append(raw, p.day)
			}
		case p.from > 0 && p.to < 24:
			return nil, nil, nil, false
		default:
			if !slices.ContainsFunc(days, p.day.Equal) {
				days, builds = append(days, p.day), append(builds, id)
			}
		}
	}
	return days, builds, raw, len(days) > 0
}

// addHours hands each part's figures from hour_stats to add.
func addHours(parts []hourPart, rows map[time.Time]*[24]hourRow, add func(label, agg string, n int64)) {
	for _, p := range parts {
		hs, ok := rows[p.day]
		if !ok {
			continue // unbuilt, or a built day without rows: nothing happened
		}
		var visitors int64
		switch {
		case p.from == 0 && p.to == 24:
			visitors = hs[0].from
		case p.from == 0:
			visitors = hs[p.to].until
		default:
			visitors = hs[p.from].from
		}
		var pv, ev int64
		for h := p.from; h < p.to; h++ {
			pv += hs[h].pageviews
			ev += hs[h].events
		}
		add(p.label, plan.AggVisitors, visitors)
		add(p.label, plan.AggPageviews, pv)
		add(p.label, plan.AggEvents, ev)
	}
}

// hourRow is one row of hour_stats.
type hourRow struct{ from, until, pageviews, events int64 }

// hourRows reads the hour_stats rows of the given days and builds.
func (e *Engine) hourRows(ctx context.Context, site string, days []time.Time, builds []uint64) (map[time.Time]*[24]hourRow, error) {
	b := &builder{db: e.db, site: site}
	q := fmt.Sprintf("SELECT toString(day), hour, toInt64(visitors_from), toInt64(visitors_until), toInt64(pageviews), toInt64(events) FROM %s WHERE %s",
		b.table(schema.HourStats), b.daysWhere(days, builds))
	e.count(site, plan.HourStats)
	res, err := e.conn.Query(ctx, q, b.List...)
	if err != nil {
		return nil, fmt.Errorf("cannot run query: %w", err)
	}
	defer res.Close()
	rows := map[time.Time]*[24]hourRow{}
	for res.Next() {
		var d string
		var h uint8
		var hr hourRow
		if err := res.Scan(&d, &h, &hr.from, &hr.until, &hr.pageviews, &hr.events); err != nil {
			return nil, fmt.Errorf("cannot read query result: %w", err)
		}
		day, err := time.Parse(time.DateOnly, d)
		if err != nil || h > 23 {
			return nil, fmt.Errorf("BUG: hour_stats row %s %d", d, h)
		}
		if rows[day] == nil {
			rows[day] = new([24]hourRow)
		}
		rows[day][h] = hr
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("cannot read query result: %w", err)
	}
	return rows, nil
}

// rawBuckets counts the unbuilt days' part of each bucket from the raw
// events, in one statement, and hands each bucket's figures to add.
func (x *run) rawBuckets(ctx context.Context, r Range, dim string, days []time.Time, add func(label, agg string, n int64)) error {
	b := &builder{db: x.e.db, site: x.q.Site, cfg: x.cfg, tz: x.tz, r: r, cov: &coverage{}}
	for _, d := range days {
		b.cov.raw = append(b.cov.raw, [2]time.Time{d, d.Add(24 * time.Hour)})
	}
	q := fmt.Sprintf("SELECT %s AS d0, toInt64(%s), toInt64(%s), toInt64(%s)\nFROM %s\nWHERE site = %s AND %s AND (%s) AND %s\nGROUP BY d0",
		b.dimExpr(dim), b.aggExpr(plan.AggVisitors), b.aggExpr(plan.AggPageviews), b.aggExpr(plan.AggEvents),
		b.table(schema.Events), b.arg(x.q.Site), b.InRange(r.Start, r.End), b.windowCond(), plan.HumanEvents)
	res, err := x.e.conn.Query(ctx, q, b.List...)
	if err != nil {
		return fmt.Errorf("cannot run query: %w", err)
	}
	defer res.Close()
	for res.Next() {
		var label string
		var v, pv, ev int64
		if err := res.Scan(&label, &v, &pv, &ev); err != nil {
			return fmt.Errorf("cannot read query result: %w", err)
		}
		add(label, plan.AggVisitors, v)
		add(label, plan.AggPageviews, pv)
		add(label, plan.AggEvents, ev)
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("cannot read query result: %w", err)
	}
	return nil
}
