package query

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The rollup job: it copies every finished UTC day of every site into the
// visits and event_stats tables, so that dashboard queries read a row per
// visit, or a row per page and day, instead of rebuilding visits from the
// raw events at query time.
//
// How it stays correct with late events and several turf instances:
//
//   - A build writes the day's rows under a fresh build id (its start time in
//     the high bits, random low bits), then checks that both tables saw the
//     same number of events, and only then records a marker in rollup_days:
//     (site, day, build, events, built).
//   - Readers use a day only through a marker whose event count equals the
//     day's current count in the events table, and read only that build's
//     rows (coverage). Rows of unfinished, failed or racing builds are never
//     read. Late events change the count, so the day is read raw until it is
//     rebuilt; the numbers are never those of a stale build.
//   - Two instances building the same day at once both succeed; readers take
//     the newest valid marker. Each pass visits days in its own random order
//     and re-checks a day just before building it, so instances mostly split
//     the work.
//   - Superseded builds are deleted once a newer valid build is old enough
//     that no query can still be reading them.

// Rollups keeps the rollup tables in step with the events table.
type Rollups struct {
	conn driver.Conn
	db   string
	now  func() time.Time
	logf func(string, ...any)
	// Grace is how long after a UTC midnight the day before is built, so
	// that events still in flight land first. Default 15 minutes.
	Grace time.Duration
	// Recent is how many days back an ordinary pass looks; a full pass over
	// every day runs at start and once a day. Default 7.
	Recent int
}

// NewRollups returns the job for database db.
func NewRollups(conn driver.Conn, db string, now func() time.Time, logf func(string, ...any)) *Rollups {
	if now == nil {
		now = time.Now
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Rollups{conn: conn, db: db, now: now, logf: logf, Grace: 15 * time.Minute, Recent: 7}
}

// Run makes a pass every interval until ctx ends.
func (r *Rollups) Run(ctx context.Context, interval time.Duration) {
	var lastFull time.Time
	for {
		now := r.now()
		since := utcDay(now).AddDate(0, 0, -r.Recent)
		if now.Sub(lastFull) >= 24*time.Hour {
			since, lastFull = time.Unix(0, 0).UTC(), now
		}
		start := time.Now()
		n, err := r.Pass(ctx, since)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.logf("rollups: %v (retried in %s)", err, interval)
		case n > 0:
			r.logf("rollups: built %d site-days in %s", n, time.Since(start).Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

func utcDay(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

type siteDay struct {
	site string
	day  string // YYYY-MM-DD
}

type marker struct {
	build, events uint64
	built         time.Time
}

// dayState is what a pass knows about the site-days from since on.
type dayState struct {
	counts  map[siteDay]uint64
	markers map[siteDay][]marker
	builds  map[siteDay][]uint64 // builds with rows in visits or event_stats
}

// valid is the newest marker that matches the day's event count.
func (s *dayState) valid(k siteDay) (marker, bool) {
	var best marker
	ok := false
	for _, m := range s.markers[k] {
		if m.events == s.counts[k] && s.counts[k] > 0 && (!ok || m.built.After(best.built) || (m.built.Equal(best.built) && m.build > best.build)) {
			best, ok = m, true
		}
	}
	return best, ok
}

func (r *Rollups) state(ctx context.Context, since, until time.Time) (*dayState, error) {
	s := &dayState{counts: map[siteDay]uint64{}, markers: map[siteDay][]marker{}, builds: map[siteDay][]uint64{}}
	sinceDay := since.Format(time.DateOnly)
	scan := func(q string, row func(k siteDay, vals []any), dest ...any) error {
		rows, err := r.conn.Query(ctx, q, named("since", since.Unix()), named("until", until.Unix()), named("sinceDay", sinceDay), named("untilDay", until.Format(time.DateOnly)),
			named("sinceHint", hintDay(since, -1)), named("untilHint", hintDay(until, 1)))
		if err != nil {
			return fmt.Errorf("cannot read the state of the rollups: %w", err)
		}
		defer rows.Close()
		var k siteDay
		for rows.Next() {
			if err := rows.Scan(append([]any{&k.site, &k.day}, dest...)...); err != nil {
				return fmt.Errorf("cannot read the state of the rollups: %w", err)
			}
			row(k, dest)
		}
		return rows.Err()
	}
	var n, b uint64
	var built time.Time
	if err := scan(fmt.Sprintf("SELECT site, toString(toDate(ts, 'UTC')) AS day, count() FROM %s.events WHERE toDate(ts) >= toDate(@sinceHint) AND toDate(ts) <= toDate(@untilHint) AND ts >= toDateTime(@since) AND ts < toDateTime(@until) GROUP BY site, day", r.db),
		func(k siteDay, _ []any) { s.counts[k] = n }, &n); err != nil {
		return nil, err
	}
	if err := scan(fmt.Sprintf("SELECT site, toString(day), build, events, built FROM %s.rollup_days WHERE day >= toDate(@sinceDay) AND day < toDate(@untilDay)", r.db),
		func(k siteDay, _ []any) { s.markers[k] = append(s.markers[k], marker{b, n, built}) }, &b, &n, &built); err != nil {
		return nil, err
	}
	if err := scan(fmt.Sprintf("SELECT site, toString(day), build FROM (SELECT DISTINCT site, day, build FROM %s.visits WHERE day >= toDate(@sinceDay) AND day < toDate(@untilDay) UNION ALL SELECT DISTINCT site, day, build FROM %s.visit_stats WHERE day >= toDate(@sinceDay) AND day < toDate(@untilDay) UNION ALL SELECT DISTINCT site, day, build FROM %s.hour_stats WHERE day >= toDate(@sinceDay) AND day < toDate(@untilDay) UNION ALL SELECT DISTINCT site, day, build FROM %s.event_stats WHERE day >= toDate(@sinceDay) AND day < toDate(@untilDay) UNION ALL SELECT DISTINCT site, day, build FROM %s.event_props WHERE day >= toDate(@sinceDay) AND day < toDate(@untilDay)) GROUP BY site, day, build", r.db, r.db, r.db, r.db, r.db),
		func(k siteDay, _ []any) { s.builds[k] = append(s.builds[k], b) }, &b); err != nil {
		return nil, err
	}
	return s, nil
}

// Pass builds every finished site-day from since on whose rollup is missing
// or stale, deletes superseded builds, and returns how many it built.
func (r *Rollups) Pass(ctx context.Context, since time.Time) (int, error) {
	now := r.now().UTC()
	until := utcDay(now.Add(-r.Grace)) // days before this one are finished
	since = utcDay(since)
	if !since.Before(until) {
		return 0, nil
	}
	s, err := r.state(ctx, since, until)
	if err != nil {
		return 0, err
	}
	var todo []siteDay
	for k := range s.counts {
		if _, ok := s.valid(k); !ok {
			todo = append(todo, k)
		}
	}
	// Instances running at once start at different days.
	mrand.Shuffle(len(todo), func(i, j int) { todo[i], todo[j] = todo[j], todo[i] })
	built := 0
	// A first pass over a large database takes minutes: say so, and how far.
	const many = 10
	if len(todo) >= many {
		r.logf("rollups: %d site-days to build", len(todo))
	}
	reported := time.Now()
	for _, k := range todo {
		if len(todo) >= many && time.Since(reported) >= 30*time.Second {
			r.logf("rollups: built %d of %d site-days", built, len(todo))
			reported = time.Now()
		}
		day, _ := time.Parse(time.DateOnly, k.day)
		if ok, err := r.isBuilt(ctx, k.site, day); err != nil {
			return built, err
		} else if ok {
			continue // another instance was quicker
		}
		if err := r.BuildDay(ctx, k.site, day); err != nil {
			return built, err
		}
		built++
	}
	return built, r.cleanup(ctx, s, now)
}

// isBuilt reports whether a site-day has a build that matches its events.
func (r *Rollups) isBuilt(ctx context.Context, site string, day time.Time) (bool, error) {
	c, err := loadCoverage(ctx, r.conn, r.db, site, day, day.Add(24*time.Hour))
	if err != nil {
		return false, err
	}
	return len(c) > 0, nil
}

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

// BuildDay rebuilds one site's UTC day.
func (r *Rollups) BuildDay(ctx context.Context, site string, day time.Time) error {
	day = utcDay(day)
	start := r.now()
	id := newBuildID(start)
	b := &builder{db: "`" + r.db + "`", site: site, tz: "UTC", r: Range{Start: day, End: day.Add(24 * time.Hour), Dates: true},
		dims: visitDims, times: true}
	cols := []string{"site", "day", "build", "visitor_id", "start", "duration", "bounce", "pageviews", "events", "event_times", "pageview_times"}
	sel := []string{"toString(" + b.arg(site) + ")", "toDate(" + b.arg(day.Format(time.DateOnly)) + ")", "toUInt64(" + b.arg(id) + ")",
		"visitor_id", "v_start", "v_duration", "v_bounce", "p_pageviews", "p_events", "v_event_times", "v_pageview_times"}
	for _, d := range visitDims {
		cols = append(cols, strings.TrimPrefix(d, "visit:"))
		sel = append(sel, visitAlias(d))
	}
	q := fmt.Sprintf("INSERT INTO %s.visits (%s)\nSELECT %s\nFROM (%s)", b.db, strings.Join(cols, ", "), strings.Join(sel, ", "), b.visitRows())
	if err := r.conn.Exec(ctx, q, b.args...); err != nil {
		return fmt.Errorf("cannot build the visits of %s on %s: %w", site, day.Format(time.DateOnly), err)
	}
	args := []any{named("site", site), named("day", day.Format(time.DateOnly)), named("build", id), named("from", day.Unix()), named("to", day.Add(24*time.Hour).Unix()),
		named("fromHint", hintDay(day, -1)), named("toHint", hintDay(day, 1))}
	// The day's events; the hint bounds on toDate(ts) let 18.16 use the key.
	const dayEvents = "site = @site AND toDate(ts) >= toDate(@fromHint) AND toDate(ts) <= toDate(@toHint) AND ts >= toDateTime(@from) AND ts < toDateTime(@to)"
	pairs := []string{"('', '')"}
	for _, d := range visitDims {
		pairs = append(pairs, fmt.Sprintf("(%s, %s)", quoteLiteral(d), strings.TrimPrefix(d, "visit:")))
	}
	for _, ins := range []struct{ what, sql string }{
		// Per visit dimension and value (and '' for the day), from the
		// visits just built: the values the query side's dimensions read.
		{"visit stats", "INSERT INTO %[1]s.visit_stats (site, day, build, dim, value, visitors, visits, bounces, duration, pageviews, events)\n" +
			"SELECT site, day, build, tupleElement(kv, 1) AS k, tupleElement(kv, 2) AS v, toUInt64(uniqExact(visitor_id)), toUInt64(count()), toUInt64(sum(bounce)), toInt64(sum(duration)), toUInt64(sum(pageviews)), toUInt64(sum(events))\n" +
			"FROM %[1]s.visits ARRAY JOIN [" + strings.Join(pairs, ", ") + "] AS kv\nWHERE site = @site AND day = toDate(@day) AND build = @build\nGROUP BY site, day, build, k, v"},
		// Every property an event has (its first value, as the query side
		// reads it). Before event_stats, so that the check below covers it.
		{"event properties", "INSERT INTO %[1]s.event_props (site, day, build, name, key, value, uniq, events)\n" +
			"SELECT toString(@site), toDate(@day), toUInt64(@build), name, props_keys[i] AS k, props_values[i] AS v, toUInt64(uniqExact(visitor_id)), toUInt64(count())\n" +
			"FROM %[1]s.events ARRAY JOIN arrayEnumerate(props_keys) AS i\n" +
			"WHERE " + dayEvents + " AND indexOf(props_keys, props_keys[i]) = i\nGROUP BY name, k, v"},
		// event_stats at its four levels (see the schema).
		{"event stats", "INSERT INTO %[1]s.event_stats (site, day, build, level, name, hostname, pathname, uniq, visitors, pageviews, events)\n" +
			"SELECT toString(@site), toDate(@day), toUInt64(@build), tupleElement(k, 1) AS l, tupleElement(k, 2) AS n, tupleElement(k, 3) AS h, tupleElement(k, 4) AS p, " +
			"toUInt64(uniqExact(visitor_id)), uniqExactStateIf(visitor_id, l = 0), toUInt64(countIf(name = 'pageview')), toUInt64(count())\n" +
			"FROM %[1]s.events ARRAY JOIN [(toUInt8(0), name, hostname, pathname), (toUInt8(1), name, '', pathname), (toUInt8(2), name, '', ''), (toUInt8(3), '', '', pathname)] AS k\n" +
			"WHERE " + dayEvents + "\nGROUP BY l, n, h, p"},
		// Each visitor's first and last hour of the day, and the events per hour.
		{"hour stats", "INSERT INTO %[1]s.hour_stats (site, day, build, hour, visitors_from, visitors_until, pageviews, events)\n" +
			"SELECT toString(@site), toDate(@day), toUInt64(@build), h, vf, vu, pv, ev FROM (\n" +
			"SELECT h, toUInt64(countIf(last_hour >= h)) AS vf, toUInt64(countIf(first_hour < h)) AS vu FROM (\n" +
			"SELECT visitor_id, min(toHour(ts, 'UTC')) AS first_hour, max(toHour(ts, 'UTC')) AS last_hour FROM %[1]s.events WHERE " + dayEvents + " GROUP BY visitor_id\n" +
			") ARRAY JOIN arrayMap(x -> toUInt8(x), range(24)) AS h GROUP BY h\n" +
			") AS visitor_hours ALL LEFT JOIN (\n" +
			"SELECT toUInt8(toHour(ts, 'UTC')) AS h, toUInt64(countIf(name = 'pageview')) AS pv, toUInt64(count()) AS ev FROM %[1]s.events WHERE " + dayEvents + " GROUP BY h\n" +
			") AS event_hours USING h"},
	} {
		if err := r.conn.Exec(ctx, fmt.Sprintf(ins.sql, b.db), args...); err != nil {
			return fmt.Errorf("cannot build the %s of %s on %s: %w", ins.what, site, day.Format(time.DateOnly), err)
		}
	}
	// Each insert read the events on its own: only record the build when
	// they all saw the same events.
	var nv, nvs, nh, ns uint64
	q = fmt.Sprintf("SELECT (SELECT sum(events) FROM %[1]s.visits WHERE site = @site AND day = toDate(@day) AND build = @build), "+
		"(SELECT sum(events) FROM %[1]s.visit_stats WHERE site = @site AND day = toDate(@day) AND build = @build AND dim = ''), "+
		"(SELECT sum(events) FROM %[1]s.hour_stats WHERE site = @site AND day = toDate(@day) AND build = @build), "+
		"(SELECT sum(events) FROM %[1]s.event_stats WHERE site = @site AND day = toDate(@day) AND build = @build AND level = 0)", b.db)
	if err := r.conn.QueryRow(ctx, q, args...).Scan(&nv, &nvs, &nh, &ns); err != nil {
		return fmt.Errorf("cannot check the build of %s on %s: %w", site, day.Format(time.DateOnly), err)
	}
	if nv != ns || nv != nvs || nv != nh {
		r.logf("rollups: events of %s on %s changed during the build; it is retried on the next pass", site, day.Format(time.DateOnly))
		return nil
	}
	if r.now().Sub(start) > maxBuild {
		return fmt.Errorf("building %s on %s took longer than %s; not recorded", site, day.Format(time.DateOnly), maxBuild)
	}
	batch, err := r.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.rollup_days (site, day, build, events, built)", b.db))
	if err != nil {
		return fmt.Errorf("cannot record the build of %s on %s: %w", site, day.Format(time.DateOnly), err)
	}
	defer batch.Close()
	if err := batch.Append(site, day, id, nv, r.now()); err != nil {
		return fmt.Errorf("cannot record the build of %s on %s: %w", site, day.Format(time.DateOnly), err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("cannot record the build of %s on %s: %w", site, day.Format(time.DateOnly), err)
	}
	return nil
}

// cleanup deletes the rows and markers of builds nobody reads: those
// superseded by a valid build made long enough ago, and abandoned ones.
func (r *Rollups) cleanup(ctx context.Context, s *dayState, now time.Time) error {
	for k, builds := range s.builds {
		keep, ok := s.valid(k)
		if ok && now.Sub(keep.built) < supersededAge {
			continue
		}
		var drop []uint64
		for _, b := range builds {
			if (!ok || b != keep.build) && now.Sub(buildTime(b)) > abandonedAge {
				drop = append(drop, b)
			}
		}
		for _, m := range s.markers[k] {
			if (!ok || m.build != keep.build) && now.Sub(buildTime(m.build)) > abandonedAge && !slices.Contains(drop, m.build) {
				drop = append(drop, m.build)
			}
		}
		if len(drop) == 0 {
			continue
		}
		// Markers first: a marker never names a build whose rows are gone.
		for _, t := range []string{"rollup_days", "visits", "visit_stats", "hour_stats", "event_stats", "event_props"} {
			q := fmt.Sprintf("ALTER TABLE %s.%s DELETE WHERE site = @site AND day = toDate(@day) AND has(@builds, build)", "`"+r.db+"`", t)
			if err := r.conn.Exec(ctx, q, named("site", k.site), named("day", k.day), named("builds", drop)); err != nil {
				return fmt.Errorf("cannot delete superseded rollups of %s on %s: %w", k.site, k.day, err)
			}
		}
	}
	return nil
}

// loadCoverage returns, for each UTC day in [from, to) with a build that
// matches the site's current events, the newest such build.
func loadCoverage(ctx context.Context, conn driver.Conn, db, site string, from, to time.Time) (map[time.Time]uint64, error) {
	q := fmt.Sprintf(`SELECT toString(day), argMax(build, (built, build)) FROM (
SELECT day, build, events, built FROM %[1]s.rollup_days WHERE site = @site AND day >= toDate(@fromDay) AND day < toDate(@toDay)
) AS markers ALL INNER JOIN (
SELECT toDate(ts, 'UTC') AS day, count() AS events FROM %[1]s.events WHERE site = @site AND toDate(ts) >= toDate(@fromHint) AND toDate(ts) <= toDate(@toHint) AND ts >= toDateTime(@from) AND ts < toDateTime(@to) GROUP BY day
) AS counted USING (day, events)
GROUP BY day`, "`"+db+"`")
	rows, err := conn.Query(ctx, q, named("site", site), named("fromDay", from.Format(time.DateOnly)), named("toDay", to.Format(time.DateOnly)),
		named("from", from.Unix()), named("to", to.Unix()),
		named("fromHint", hintDay(from, -1)), named("toHint", hintDay(to, 1)))
	if err != nil {
		return nil, fmt.Errorf("cannot read the rollup markers: %w", err)
	}
	defer rows.Close()
	out := map[time.Time]uint64{}
	for rows.Next() {
		var d string
		var b uint64
		if err := rows.Scan(&d, &b); err != nil {
			return nil, fmt.Errorf("cannot read the rollup markers: %w", err)
		}
		t, err := time.Parse(time.DateOnly, d)
		if err != nil {
			return nil, fmt.Errorf("BUG: rollup day %q: %w", d, err)
		}
		out[t] = b
	}
	return out, rows.Err()
}

// coverageFor works out which days of r the rollup tables answer: the
// built days fully inside r, and the built days r starts or ends inside
// (edges), which the visits table answers from its event times.
func (e *Engine) coverageFor(ctx context.Context, site string, r Range) (*coverage, error) {
	b := &builder{r: r}
	ws, we := b.widened()
	c := &coverage{}
	if ws.Before(we) {
		built, err := e.markers.get(ctx, site, ws, we, func() (map[time.Time]uint64, error) {
			return loadCoverage(ctx, e.conn, strings.Trim(e.db, "`"), site, ws, we)
		})
		if err != nil {
			return nil, err
		}
		for d := ws; d.Before(we); d = d.Add(24 * time.Hour) {
			id, ok := built[d]
			switch {
			case !ok:
			case !d.Before(r.Start) && !d.Add(24*time.Hour).After(r.End):
				c.days = append(c.days, d)
				c.builds = append(c.builds, id)
			default:
				c.edges = append(c.edges, d)
				c.edgeBuilds = append(c.edgeBuilds, id)
			}
		}
	}
	// The raw windows: the widened range without the full days, and
	// without the edges too.
	c.raw = subtractDays(ws, we, c.days)
	both := append(slices.Clone(c.days), c.edges...)
	slices.SortFunc(both, time.Time.Compare)
	c.bare = subtractDays(ws, we, both)
	return c, nil
}

// subtractDays returns [from, to) without the given ascending UTC days, as
// intervals.
func subtractDays(from, to time.Time, days []time.Time) [][2]time.Time {
	var out [][2]time.Time
	at := from
	for _, d := range days {
		if at.Before(d) {
			out = append(out, [2]time.Time{at, d})
		}
		at = d.Add(24 * time.Hour)
	}
	if at.Before(to) {
		out = append(out, [2]time.Time{at, to})
	}
	return out
}

// quoteLiteral writes one of turf's own dimension names as a string literal.
func quoteLiteral(s string) string {
	if strings.ContainsAny(s, `'\`) {
		panic("BUG: quote in dimension name " + s)
	}
	return "'" + s + "'"
}
