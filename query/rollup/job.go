// Package rollup is the job that copies every finished UTC day of every
// site from the events table into the rollup tables (schema.RollupTables),
// so that dashboard queries read a row per visit, or a row per page and
// day, instead of rebuilding visits from the raw events at query time. It
// writes; package query only reads, through Valid and the builds it names.
package rollup

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	qsql "turf/query/sql"
	"turf/schema"
)

// How the job stays correct with late events and several turf instances:
//
//   - A build writes the day's rows under a fresh build id (its start time in
//     the high bits, random low bits), then checks that both tables saw the
//     same number of events, and only then records a marker in rollup_days:
//     (site, day, build, events, built, format).
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

// Job keeps the rollup tables in step with the events table.
type Job struct {
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
	// Zone is a site's time zone (nil: UTC), where builds cut the day
	// (see cut); nil for none.
	Zone func(site string) *time.Location
}

// New returns the job for database db.
func New(conn driver.Conn, db string, now func() time.Time, logf func(string, ...any)) *Job {
	if now == nil {
		now = time.Now
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Job{conn: conn, db: db, now: now, logf: logf, Grace: 15 * time.Minute, Recent: 7}
}

// Run makes a pass every interval until ctx ends.
func (r *Job) Run(ctx context.Context, interval time.Duration) {
	var lastFull time.Time
	for {
		now := r.now()
		since := UTCDay(now).AddDate(0, 0, -r.Recent)
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

// UTCDay is the UTC day t is in.
func UTCDay(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

func named(name string, v any) any { return clickhouse.Named(name, v) }

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

func (r *Job) state(ctx context.Context, since, until time.Time) (*dayState, error) {
	s := &dayState{counts: map[siteDay]uint64{}, markers: map[siteDay][]marker{}, builds: map[siteDay][]uint64{}}
	sinceDay := since.Format(time.DateOnly)
	scan := func(q string, row func(k siteDay, vals []any), dest ...any) error {
		rows, err := r.conn.Query(ctx, q, named("since", since.Unix()), named("until", until.Unix()), named("sinceDay", sinceDay), named("untilDay", until.Format(time.DateOnly)),
			named("sinceHint", qsql.HintDay(since, -1)), named("untilHint", qsql.HintDay(until, 1)))
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
	if err := scan(fmt.Sprintf("SELECT site, toString(toDate(ts, 'UTC')) AS day, count() FROM %s WHERE toDate(ts) >= toDate(@sinceHint) AND toDate(ts) <= toDate(@untilHint) AND ts >= toDateTime(@since) AND ts < toDateTime(@until) GROUP BY site, day", schema.Table(r.db, schema.Events)),
		func(k siteDay, _ []any) { s.counts[k] = n }, &n); err != nil {
		return nil, err
	}
	if err := scan(fmt.Sprintf("SELECT site, toString(day), build, events, built FROM %s WHERE day >= toDate(@sinceDay) AND day < toDate(@untilDay) AND format >= %d", schema.Table(r.db, schema.RollupDays), Format),
		func(k siteDay, _ []any) { s.markers[k] = append(s.markers[k], marker{b, n, built}) }, &b, &n, &built); err != nil {
		return nil, err
	}
	if err := scan(buildsQuery(r.db),
		func(k siteDay, _ []any) { s.builds[k] = append(s.builds[k], b) }, &b); err != nil {
		return nil, err
	}
	return s, nil
}

// buildsQuery lists the builds with rows in any rollup table but the
// markers.
func buildsQuery(db string) string {
	var parts []string
	for _, t := range schema.RollupTables {
		if t != schema.RollupDays {
			parts = append(parts, fmt.Sprintf("SELECT DISTINCT site, day, build FROM %s WHERE day >= toDate(@sinceDay) AND day < toDate(@untilDay)", schema.Table(db, t)))
		}
	}
	return "SELECT site, toString(day), build FROM (" + strings.Join(parts, " UNION ALL ") + ") GROUP BY site, day, build"
}

// Pass builds every finished site-day from since on whose rollup is missing
// or stale, deletes superseded builds, and returns how many it built.
func (r *Job) Pass(ctx context.Context, since time.Time) (int, error) {
	now := r.now().UTC()
	until := UTCDay(now.Add(-r.Grace)) // days before this one are finished
	since = UTCDay(since)
	if !since.Before(until) {
		return 0, nil
	}
	// The tallies before the events: see correct.
	tallies, err := r.tallies(ctx, since, until)
	if err != nil {
		return 0, err
	}
	s, err := r.state(ctx, since, until)
	if err != nil {
		return 0, err
	}
	if err := r.correct(ctx, tallies, s.counts); err != nil {
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
func (r *Job) isBuilt(ctx context.Context, site string, day time.Time) (bool, error) {
	c, err := validRaw(ctx, r.conn, r.db, site, day, day.Add(24*time.Hour))
	if err != nil {
		return false, err
	}
	return c[day].Build != 0, nil
}

// cleanup deletes the rows and markers of builds nobody reads: those
// superseded by a valid build made long enough ago, and abandoned ones.
func (r *Job) cleanup(ctx context.Context, s *dayState, now time.Time) error {
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
		// On a cluster the rows live in each shard's local table: the
		// deletion runs there, on every shard.
		cluster, err := schema.ClusterOf(ctx, r.conn, r.db)
		if err != nil {
			return err
		}
		// Markers first: a marker never names a build whose rows are gone.
		for _, t := range schema.RollupTables {
			q := fmt.Sprintf("ALTER TABLE %s%s DELETE WHERE site = @site AND day = toDate(@day) AND has(@builds, build)", schema.Local(r.db, t, cluster), schema.OnCluster(cluster))
			if err := schema.ExecDDL(ctx, r.conn, cluster, 0, q, r.logf, named("site", k.site), named("day", k.day), named("builds", drop)); err != nil {
				return fmt.Errorf("cannot delete superseded rollups of %s on %s: %w", k.site, k.day, err)
			}
		}
	}
	return nil
}
