package rollup

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	qsql "turf/query/sql"
	"turf/schema"
)

// Format is the format of the rows a build writes. A marker of an older
// format names a build that lacks rows readers now expect; it is not
// valid, and the job builds the day again. 1: visit_stats' rows within a
// value of another dimension (plan.WithinPairs). 2: the head and tail rows
// of a day cut where the site's day starts (rollup_days.cut, part). 3:
// event_props holds machine events apart, and the marker counts them.
const Format = 3

// Built is a valid build of a day, and where it cut the day (0: not cut):
// its head rows (part 1) hold the events before day+Cut, its tail rows
// (part 2) those from it.
type Built struct {
	Build uint64
	Cut   time.Duration
}

// Valid returns, for each UTC day in [from, to) with events, the newest
// build that matches them and is of the current Format, or a zero Build
// when none does; a day it leaves out had no events when it looked (the
// query side reads nothing of it). A build matches when it counted as
// many events as the day has now, machine events included: the day's
// tally in event_days, a row a day, which the materialized view keeps as
// events arrive and the job corrects where it ever differs from the events
// (Job.correct). The last day is named inclusively: "day <
// toDate('2106-01-01')" compared with 18.16's 0000-00-00 and found no
// marker for a range ending 2105-12-31.
func Valid(ctx context.Context, conn driver.Conn, db, site string, from, to time.Time) (map[time.Time]Built, error) {
	counted := fmt.Sprintf("SELECT day, toUInt64(total) AS events FROM (SELECT day, sum(events) AS total FROM %s WHERE site = @site AND day >= toDate(@fromDay) AND day <= toDate(@lastDay) GROUP BY day) AS tallied WHERE total > 0", schema.Table(db, schema.EventDays))
	return valid(ctx, conn, db, site, from, to, counted)
}

// validRaw is Valid counting the events themselves, as the job does
// before it builds a day: its decisions never rest on the tally it
// corrects.
func validRaw(ctx context.Context, conn driver.Conn, db, site string, from, to time.Time) (map[time.Time]Built, error) {
	counted := fmt.Sprintf("SELECT toDate(ts, 'UTC') AS day, count() AS events FROM %s WHERE site = @site AND toDate(ts) >= toDate(@fromHint) AND toDate(ts) <= toDate(@toHint) AND ts >= toDateTime(@from) AND ts < toDateTime(@to) GROUP BY day", schema.Table(db, schema.Events))
	return valid(ctx, conn, db, site, from, to, counted)
}

// valid joins the day counts of the counted statement (day, events) with
// the markers.
func valid(ctx context.Context, conn driver.Conn, db, site string, from, to time.Time, counted string) (map[time.Time]Built, error) {
	q := fmt.Sprintf(`SELECT toString(day), argMax(build, (built, build)), argMax(cut, (built, build)) FROM (
%s
) AS counted ALL LEFT JOIN (
SELECT day, build, events, built, cut FROM %s WHERE site = @site AND day >= toDate(@fromDay) AND day <= toDate(@lastDay) AND format >= @format
) AS markers USING (day, events)
GROUP BY day`, counted, schema.Table(db, schema.RollupDays))
	rows, err := conn.Query(ctx, q, named("site", site), named("format", Format), named("fromDay", from.Format(time.DateOnly)), named("lastDay", qsql.HintDay(to, -1)),
		named("from", from.Unix()), named("to", to.Unix()),
		named("fromHint", qsql.HintDay(from, -1)), named("toHint", qsql.HintDay(to, 1)))
	if err != nil {
		return nil, fmt.Errorf("cannot read the rollup markers: %w", err)
	}
	defer rows.Close()
	out := map[time.Time]Built{}
	for rows.Next() {
		var d string
		var b uint64
		var cut uint32
		if err := rows.Scan(&d, &b, &cut); err != nil {
			return nil, fmt.Errorf("cannot read the rollup markers: %w", err)
		}
		t, err := time.Parse(time.DateOnly, d)
		if err != nil {
			return nil, fmt.Errorf("BUG: rollup day %q: %w", d, err)
		}
		out[t] = Built{b, time.Duration(cut) * time.Second}
	}
	return out, rows.Err()
}
