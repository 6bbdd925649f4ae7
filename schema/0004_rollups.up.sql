-- Pre-aggregated copies of finished UTC days, built from the raw events by the
-- query side's rollup job (query/rollup). The events table stays the source
-- of truth: every build is tagged with a random build id, and a day is only
-- read from here while its marker in rollup_days names that build and records
-- the same event count the events table still holds for the day. Late events
-- (a replayed spool) change the count, so readers fall back to the raw events
-- until the job has rebuilt the day; a crashed or racing build leaves rows no
-- marker names, which nobody reads and the job deletes later.

-- One row per visit (a run of one visitor's events with no gap over 30
-- minutes), with the values of its first event (exit_page: its last). The
-- times of its events and page views let a range that starts or ends inside
-- the day count only its events in the range.
CREATE TABLE IF NOT EXISTS {{.DB}}.visits {{.OnCluster}}
(
    site            String,
    day             Date,
    build           UInt64,
    visitor_id      UInt64,
    start           DateTime,
    duration        Int64,
    bounce          UInt8,
    pageviews       UInt64,
    events          UInt64,
    entry_page      String,
    exit_page       String,
    referrer        String,
    source          String,
    channel         String,
    utm_source      String,
    utm_medium      String,
    utm_campaign    String,
    utm_content     String,
    utm_term        String,
    country         String,
    device          String,
    browser         String,
    browser_version String,
    os              String,
    os_version      String,
    event_times     Array(DateTime),
    pageview_times  Array(DateTime)
)
ENGINE = {{.Engine "visits"}}
PARTITION BY toYYYYMM(day)
ORDER BY (site, day, build, visitor_id, start);

-- Per day and value of one visit dimension (dim '' holds the day's totals):
-- the day's distinct visitors, visits and their sums. Visitor ids change
-- every UTC day, so the distinct visitors of several days are the sum of
-- each day's: no uniq state is needed to add days up.
CREATE TABLE IF NOT EXISTS {{.DB}}.visit_stats {{.OnCluster}}
(
    site      String,
    day       Date,
    build     UInt64,
    dim       String,
    value     String,
    visitors  UInt64,
    visits    UInt64,
    bounces   UInt64,
    duration  Int64,
    pageviews UInt64,
    events    UInt64
)
ENGINE = {{.Engine "visit_stats"}}
PARTITION BY toYYYYMM(day)
ORDER BY (site, day, build, dim, value);

-- Per day and UTC hour: the day's visitors with an event at or after the
-- hour and those with one before it, and the page views and events within
-- the hour. Any range or time bucket that starts or ends on a whole hour
-- cuts a day into such a tail or head, so visitors per day, week or month in
-- any whole-hour time zone add up from these rows.
CREATE TABLE IF NOT EXISTS {{.DB}}.hour_stats {{.OnCluster}}
(
    site           String,
    day            Date,
    build          UInt64,
    hour           UInt8,
    visitors_from  UInt64,
    visitors_until UInt64,
    pageviews      UInt64,
    events         UInt64
)
ENGINE = {{.Engine "hour_stats"}}
PARTITION BY toYYYYMM(day)
ORDER BY (site, day, build, hour);

-- Per day, event name, property key and value: the day's distinct
-- visitors of events with that property, and their number.
CREATE TABLE IF NOT EXISTS {{.DB}}.event_props {{.OnCluster}}
(
    site   String,
    day    Date,
    build  UInt64,
    name   String,
    key    String,
    value  String,
    uniq   UInt64,
    events UInt64
)
ENGINE = {{.Engine "event_props"}}
PARTITION BY toYYYYMM(day)
ORDER BY (site, day, build, key, name, value);

-- Per day, event name, hostname and page (level 0), per name and page over
-- every hostname (level 1, hostname ''), per name (level 2, hostname and
-- pathname '') and per page over every name and hostname (level 3, name and
-- hostname ''): the day's distinct visitors as a count (summed over days
-- when each group of a query is one row a day) and, at level 0 only (the
-- others hold an empty one), as an exact uniq state (merged when the counts
-- do not add up), and the numbers of page views and events.
CREATE TABLE IF NOT EXISTS {{.DB}}.event_stats {{.OnCluster}}
(
    site     String,
    day      Date,
    build    UInt64,
    level    UInt8,
    name     String,
    hostname String,
    pathname String,
    uniq      UInt64,
    visitors  AggregateFunction(uniqExact, UInt64),
    pageviews UInt64,
    events    UInt64
)
ENGINE = {{.Engine "event_stats"}}
PARTITION BY toYYYYMM(day)
ORDER BY (site, day, build, level, name, hostname, pathname);

-- One row per finished build: the day's event count it was built from.
CREATE TABLE IF NOT EXISTS {{.DB}}.rollup_days {{.OnCluster}}
(
    site   String,
    day    Date,
    build  UInt64,
    events UInt64,
    built  DateTime
)
ENGINE = {{.Engine "rollup_days"}}
PARTITION BY toYYYYMM(day)
ORDER BY (site, day, build)
