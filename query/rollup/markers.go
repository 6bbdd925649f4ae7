package rollup

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	qsql "turf/query/sql"
	"turf/schema"
)

// Valid returns, for each UTC day in [from, to) with a build that
// matches the site's current events, the newest such build.
func Valid(ctx context.Context, conn driver.Conn, db, site string, from, to time.Time) (map[time.Time]uint64, error) {
	q := fmt.Sprintf(`SELECT toString(day), argMax(build, (built, build)) FROM (
SELECT day, build, events, built FROM %[1]s WHERE site = @site AND day >= toDate(@fromDay) AND day < toDate(@toDay)
) AS markers ALL INNER JOIN (
SELECT toDate(ts, 'UTC') AS day, count() AS events FROM %[2]s WHERE site = @site AND toDate(ts) >= toDate(@fromHint) AND toDate(ts) <= toDate(@toHint) AND ts >= toDateTime(@from) AND ts < toDateTime(@to) GROUP BY day
) AS counted USING (day, events)
GROUP BY day`, schema.Table(db, schema.RollupDays), schema.Table(db, schema.Events))
	rows, err := conn.Query(ctx, q, named("site", site), named("fromDay", from.Format(time.DateOnly)), named("toDay", to.Format(time.DateOnly)),
		named("from", from.Unix()), named("to", to.Unix()),
		named("fromHint", qsql.HintDay(from, -1)), named("toHint", qsql.HintDay(to, 1)))
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
