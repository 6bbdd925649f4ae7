package rollup

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"turf/query/plan"
	qsql "turf/query/sql"
	"turf/schema"
)

// newBuildID is the build's start time in seconds, shifted left 24 bits,
// with 24 random bits below: unique, and its age can be read from it.
func newBuildID(now time.Time) uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return uint64(now.Unix())<<24 | binary.LittleEndian.Uint64(b[:])&(1<<24-1)
}

func buildTime(id uint64) time.Time { return time.Unix(int64(id>>24), 0) }

// maxBuild bounds a build's duration: a build that took longer records no
// marker, since the cleanup may already have taken it for an abandoned one.
const (
	maxBuild      = 30 * time.Minute
	abandonedAge  = time.Hour        // rows of a build without a valid marker this old are deleted
	supersededAge = 10 * time.Minute // a newer valid build this old means nobody reads older ones
)

// BuildDay rebuilds one site's UTC day: the visits first, the other
// tables from them and from the events, then, when every table saw the same
// events, the marker that lets readers use the build.
func (r *Job) BuildDay(ctx context.Context, site string, day time.Time) error {
	day = UTCDay(day)
	// On a cluster the rollup tables are Distributed: every insert returns
	// only once each shard has its rows, so checkBuild counts them all and
	// the marker never names rows still on their way (no effect on one node).
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_distributed_sync": 1}))
	start := r.now()
	id := newBuildID(start)
	if err := r.buildVisits(ctx, site, day, id); err != nil {
		return err
	}
	cut := r.cut(site, day)
	end := day.Add(24 * time.Hour)
	args := func(part int, from, to time.Time) []any {
		return []any{named("site", site), named("day", day.Format(time.DateOnly)), named("build", id), named("part", uint8(part)),
			named("from", from.Unix()), named("to", to.Unix()), named("fromHint", qsql.HintDay(day, -1)), named("toHint", qsql.HintDay(day, 1))}
	}
	if err := r.buildTables(ctx, site, day, args(0, day, end), true); err != nil {
		return err
	}
	if cut > 0 {
		at := day.Add(cut)
		if err := r.buildTables(ctx, site, day, args(1, day, at), false); err != nil {
			return err
		}
		if err := r.buildTables(ctx, site, day, args(2, at, end), false); err != nil {
			return err
		}
	}
	n, same, err := r.checkBuild(ctx, site, day, args(0, day, end))
	if err != nil || !same {
		return err
	}
	if r.now().Sub(start) > maxBuild {
		return fmt.Errorf("building %s on %s took longer than %s; not recorded", site, day.Format(time.DateOnly), maxBuild)
	}
	return r.record(ctx, site, day, id, n, cut)
}

// cut is where the site's own day starts inside the UTC day, as a
// duration after UTC midnight, or 0 when it starts at UTC midnight or the
// job knows no time zone for the site. A date range of whole days in the
// site's time zone cuts its first and last UTC day there; the build's head
// and tail rows answer those (schema 0040).
func (r *Job) cut(site string, day time.Time) time.Duration {
	if r.Zone == nil {
		return 0
	}
	loc := r.Zone(site)
	if loc == nil {
		return 0
	}
	end := day.Add(24 * time.Hour)
	y, m, d := end.Add(-time.Second).In(loc).Date()
	midnight := time.Date(y, m, d, 0, 0, 0, 0, loc)
	if !midnight.After(day) || !midnight.Before(end) {
		return 0
	}
	return midnight.Sub(day).Truncate(time.Second)
}

// buildVisits writes the day's visits, made by the one definition of a
// visit the query side's raw path reads too (qsql.Visits).
func (r *Job) buildVisits(ctx context.Context, site string, day time.Time, id uint64) error {
	var a qsql.Args
	dims := plan.VisitDims()
	cols := []string{"site", "day", "build", "visitor_id", "start", "duration", "bounce", "pageviews", "events", "event_times", "pageview_times"}
	sel := []string{"toString(" + a.Bind(site) + ")", "toDate(" + a.Bind(day.Format(time.DateOnly)) + ")", "toUInt64(" + a.Bind(id) + ")",
		"visitor_id", "v_start", "v_duration", "v_bounce", "p_pageviews", "p_events", "v_event_times", "v_pageview_times"}
	for _, d := range dims {
		cols = append(cols, strings.TrimPrefix(d, "visit:"))
		sel = append(sel, plan.VisitAlias(d))
	}
	end := day.Add(24 * time.Hour)
	v := qsql.Visits{DB: r.db, Site: site, Dims: dims, Window: a.TSRange(day, end), From: day, To: end, Times: true}
	q := fmt.Sprintf("INSERT INTO %s (%s)\nSELECT %s\nFROM (%s)", schema.Table(r.db, schema.Visits), strings.Join(cols, ", "), strings.Join(sel, ", "), v.Rows(&a))
	if err := r.conn.Exec(ctx, q, a.List...); err != nil {
		return fmt.Errorf("cannot build the visits of %s on %s: %w", site, day.Format(time.DateOnly), err)
	}
	return nil
}

// The day's events; the hint bounds on toDate(ts) let 18.16 use the key.
// Machine events are left out of every rollup table (plan.HumanEvents) but
// event_props, which holds them apart (machine = 1): other queries that read
// them go to the raw events.
const (
	dayAllEvents = "site = @site AND toDate(ts) >= toDate(@fromHint) AND toDate(ts) <= toDate(@toHint) AND ts >= toDateTime(@from) AND ts < toDateTime(@to)"
	dayEvents    = dayAllEvents + " AND " + plan.HumanEvents
)

// tableBuilds are the inserts after the visits', in order; in their text
// %[1]s is visit_stats, %[2]s visits, %[3]s event_props, %[4]s events,
// %[5]s event_stats and %[6]s hour_stats.
func tableBuilds() []struct{ what, sql string } {
	pairs := []string{"('', '')"}
	for _, d := range plan.VisitDims() {
		pairs = append(pairs, fmt.Sprintf("(%s, %s)", quoteLiteral(d), strings.TrimPrefix(d, "visit:")))
	}
	for _, p := range plan.WithinPairs {
		pairs = append(pairs, fmt.Sprintf("(concat(%s, %s), %s)", quoteLiteral(plan.WithinKey(p.Dim, p.Within, "")),
			strings.TrimPrefix(p.Within, "visit:"), strings.TrimPrefix(p.Dim, "visit:")))
	}
	return []struct{ what, sql string }{
		// Per visit dimension and value (and '' for the day), and per
		// value within each value of another (plan.WithinPairs), from the
		// visits just built: the values the query side's dimensions read.
		// A part counts the visits with an event in it, and only their
		// events in it, as a range cut there does (query's visits route).
		{"visit stats", "INSERT INTO %[1]s (site, day, build, part, dim, value, visitors, visits, bounces, duration, pageviews, events)\n" +
			"SELECT site, day, build, toUInt8(@part), tupleElement(kv, 1) AS k, tupleElement(kv, 2) AS v, toUInt64(uniqExact(visitor_id)), toUInt64(count()), toUInt64(sum(bounce)), toInt64(sum(duration)), toUInt64(sum(pv)), toUInt64(sum(ev))\n" +
			"FROM (SELECT *, arrayCount(t -> t >= toDateTime(@from) AND t < toDateTime(@to), pageview_times) AS pv, arrayCount(t -> t >= toDateTime(@from) AND t < toDateTime(@to), event_times) AS ev\n" +
			"FROM %[2]s WHERE site = @site AND day = toDate(@day) AND build = @build)\n" +
			"ARRAY JOIN [" + strings.Join(pairs, ", ") + "] AS kv\nWHERE ev > 0\nGROUP BY site, day, build, k, v"},
		// Every property an event has (its first value, as the query side
		// reads it). Before event_stats, so that the check below covers it.
		// Machine events apart (m), each with its machine prop among
		// the others: their count is part of the marker's.
		{"event properties", "INSERT INTO %[3]s (site, day, build, part, machine, name, key, value, uniq, events)\n" +
			"SELECT toString(@site), toDate(@day), toUInt64(@build), toUInt8(@part), m, name, props_keys[i] AS k, props_values[i] AS v, toUInt64(uniqExact(visitor_id)), toUInt64(count())\n" +
			"FROM (SELECT *, toUInt8(" + plan.MachineEvents + ") AS m FROM %[4]s WHERE " + dayAllEvents + ") ARRAY JOIN arrayEnumerate(props_keys) AS i\n" +
			"WHERE indexOf(props_keys, props_keys[i]) = i\nGROUP BY m, name, k, v"},
		// event_stats at its four levels (see the schema).
		// The uniq states only for the whole day: the states route reads
		// no parts.
		{"event stats", "INSERT INTO %[5]s (site, day, build, part, level, name, hostname, pathname, uniq, visitors, pageviews, events)\n" +
			"SELECT toString(@site), toDate(@day), toUInt64(@build), toUInt8(@part), tupleElement(k, 1) AS l, tupleElement(k, 2) AS n, tupleElement(k, 3) AS h, tupleElement(k, 4) AS p, " +
			"toUInt64(uniqExact(visitor_id)), uniqExactStateIf(visitor_id, l = 0 AND @part = 0), toUInt64(countIf(name = 'pageview')), toUInt64(count())\n" +
			"FROM %[4]s ARRAY JOIN [(toUInt8(0), name, hostname, pathname), (toUInt8(1), name, '', pathname), (toUInt8(2), name, '', ''), (toUInt8(3), '', '', pathname)] AS k\n" +
			"WHERE " + dayEvents + "\nGROUP BY l, n, h, p"},
		// Each visitor's first and last hour of the day, and the events
		// per hour; whole days only (they cut at any hour already).
		{"hour stats", "INSERT INTO %[6]s (site, day, build, hour, visitors_from, visitors_until, pageviews, events)\n" +
			"SELECT toString(@site), toDate(@day), toUInt64(@build), h, vf, vu, pv, ev FROM (\n" +
			"SELECT h, toUInt64(countIf(last_hour >= h)) AS vf, toUInt64(countIf(first_hour < h)) AS vu FROM (\n" +
			"SELECT visitor_id, min(toHour(ts, 'UTC')) AS first_hour, max(toHour(ts, 'UTC')) AS last_hour FROM %[4]s WHERE " + dayEvents + " GROUP BY visitor_id\n" +
			") ARRAY JOIN arrayMap(x -> toUInt8(x), range(24)) AS h GROUP BY h\n" +
			") AS visitor_hours ALL LEFT JOIN (\n" +
			"SELECT toUInt8(toHour(ts, 'UTC')) AS h, toUInt64(countIf(name = 'pageview')) AS pv, toUInt64(count()) AS ev FROM %[4]s WHERE " + dayEvents + " GROUP BY h\n" +
			") AS event_hours USING h"},
	}
}

// buildTables writes visit_stats, event_props and event_stats for the part
// of the day args name, and with whole, hour_stats too.
func (r *Job) buildTables(ctx context.Context, site string, day time.Time, args []any, whole bool) error {
	for _, ins := range tableBuilds() {
		if ins.what == "hour stats" && !whole {
			continue
		}
		q := fmt.Sprintf(ins.sql, schema.Table(r.db, schema.VisitStats), schema.Table(r.db, schema.Visits), schema.Table(r.db, schema.EventProps),
			schema.Table(r.db, schema.Events), schema.Table(r.db, schema.EventStats), schema.Table(r.db, schema.HourStats))
		if err := r.conn.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("cannot build the %s of %s on %s: %w", ins.what, site, day.Format(time.DateOnly), err)
		}
	}
	return nil
}

// checkBuild reports whether the inserts, each of which read the events on
// its own, all saw the same events, and how many: the people's, and the
// machine events event_props holds (each has its machine prop once), which
// together are the count of all events readers compare with (Valid). The
// people's part is checked across the tables; event_props is built between
// visits and event_stats, so an event that arrived in between shows there.
// A machine event that arrived after event_props is not in the count, so
// the day reads raw until it is rebuilt.
func (r *Job) checkBuild(ctx context.Context, site string, day time.Time, args []any) (uint64, bool, error) {
	var nv, nvs, nh, ns, nm uint64
	const part = "(SELECT sum(events) FROM %s WHERE site = @site AND day = toDate(@day) AND build = @build%s)"
	q := "SELECT " + strings.Join([]string{
		fmt.Sprintf(part, schema.Table(r.db, schema.Visits), ""),
		fmt.Sprintf(part, schema.Table(r.db, schema.VisitStats), " AND part = 0 AND dim = ''"),
		fmt.Sprintf(part, schema.Table(r.db, schema.HourStats), ""),
		fmt.Sprintf(part, schema.Table(r.db, schema.EventStats), " AND part = 0 AND level = 0"),
		fmt.Sprintf(part, schema.Table(r.db, schema.EventProps), " AND part = 0 AND machine = 1 AND key = '"+plan.MachineProp+"'"),
	}, ", ")
	if err := r.conn.QueryRow(ctx, q, args...).Scan(&nv, &nvs, &nh, &ns, &nm); err != nil {
		return 0, false, fmt.Errorf("cannot check the build of %s on %s: %w", site, day.Format(time.DateOnly), err)
	}
	if nv != ns || nv != nvs || nv != nh {
		r.logf("rollups: events of %s on %s changed during the build; it is retried on the next pass", site, day.Format(time.DateOnly))
		return 0, false, nil
	}
	return nv + nm, true, nil
}

// record writes the marker that lets readers use build id.
func (r *Job) record(ctx context.Context, site string, day time.Time, id, events uint64, cut time.Duration) error {
	batch, err := r.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s (site, day, build, events, built, format, cut)", schema.Table(r.db, schema.RollupDays)))
	if err != nil {
		return fmt.Errorf("cannot record the build of %s on %s: %w", site, day.Format(time.DateOnly), err)
	}
	defer batch.Close()
	if err := batch.Append(site, day, id, events, r.now(), uint16(Format), uint32(cut/time.Second)); err != nil {
		return fmt.Errorf("cannot record the build of %s on %s: %w", site, day.Format(time.DateOnly), err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("cannot record the build of %s on %s: %w", site, day.Format(time.DateOnly), err)
	}
	return nil
}

// quoteLiteral writes one of turf's own dimension names as a string literal.
func quoteLiteral(s string) string {
	if strings.ContainsAny(s, `'\`) {
		panic("BUG: quote in dimension name " + s)
	}
	return "'" + s + "'"
}
