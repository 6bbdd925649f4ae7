package rollup

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"turf/schema"
)

// The query side learns each day's number of events from event_days, the
// tally a materialized view keeps as events are inserted (0042), so that a
// dashboard's rollup check reads a row a day. A view can be off: a block
// whose insert failed after the events were written, a block counted again
// (a retried insert the events table deduplicated and a view did not), events
// erased or expired, and those inserted while the migration counted the
// older ones. A tally above the events only makes the day read raw; one
// below could make a stale build look valid. So each pass compares the
// tallies of its days with the events and adds the difference. The
// tallies are read first: an insert between the two reads is then in the
// events' count and in the tally twice (the view's row and the
// correction), too high, never too low, and the next pass takes it back.

// tallies reads event_days for the site-days in [since, until).
func (r *Job) tallies(ctx context.Context, since, until time.Time) (map[siteDay]int64, error) {
	rows, err := r.conn.Query(ctx, fmt.Sprintf("SELECT site, toString(day), sum(events) FROM %s WHERE day >= toDate(@since) AND day < toDate(@until) GROUP BY site, day", schema.Table(r.db, schema.EventDays)),
		named("since", since.Format(time.DateOnly)), named("until", until.Format(time.DateOnly)))
	if err != nil {
		return nil, fmt.Errorf("cannot read the event tallies: %w", err)
	}
	defer rows.Close()
	out := map[siteDay]int64{}
	for rows.Next() {
		var k siteDay
		var n int64
		if err := rows.Scan(&k.site, &k.day, &n); err != nil {
			return nil, fmt.Errorf("cannot read the event tallies: %w", err)
		}
		out[k] = n
	}
	return out, rows.Err()
}

// correct adds to event_days what makes each tally equal the events'
// count, read after it.
func (r *Job) correct(ctx context.Context, tallies map[siteDay]int64, counts map[siteDay]uint64) error {
	diff := map[siteDay]int64{}
	for k, n := range counts {
		if d := int64(n) - tallies[k]; d != 0 {
			diff[k] = d
		}
	}
	for k, t := range tallies {
		if _, ok := counts[k]; !ok && t != 0 {
			diff[k] = -t // no events (left) on that day
		}
	}
	if len(diff) == 0 {
		return nil
	}
	// Synchronous on a cluster: a correction still queued in the
	// Distributed table at the next pass would be made a second time.
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_distributed_sync": 1}))
	b, err := r.conn.PrepareBatch(ctx, "INSERT INTO "+schema.Table(r.db, schema.EventDays)+" (site, day, events)")
	if err != nil {
		return fmt.Errorf("cannot correct the event tallies: %w", err)
	}
	defer b.Abort()
	for k, d := range diff {
		day, err := time.Parse(time.DateOnly, k.day)
		if err != nil {
			return fmt.Errorf("BUG: tally day %q: %w", k.day, err)
		}
		if err := b.Append(k.site, day, d); err != nil {
			return fmt.Errorf("cannot correct the event tallies: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot correct the event tallies: %w", err)
	}
	r.logf("rollups: corrected the event tally of %d site-days", len(diff))
	return nil
}
