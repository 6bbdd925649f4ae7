-- Pre-aggregated copies of finished UTC days, built from the raw events by the
-- query side's rollup job (query/rollup.go). The events table stays the source
-- of truth: every build is tagged with a random build id, and a day is only
-- read from here while its marker in rollup_days names that build and records
-- the same event count the events table still holds for the day. Late events
-- (a replayed spool) change the count, so readers fall back to the raw events
-- until the job has rebuilt the day; a crashed or racing build leaves rows no
-- marker names, which nobody reads and the job deletes later.

-- One row per visit (a run of one visitor's events with no gap over 30
-- minutes), with the values of its first event (exit_page: its last).
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
    os_version      String
)
ENGINE = {{.Engine "visits"}}
PARTITION BY toYYYYMM(day)
ORDER BY (site, day, build, visitor_id, start);

-- Per day, event name, hostname and page: the distinct visitor ids (as an
-- exact uniq state, so that days and pages merge without double counting)
-- and the number of events.
CREATE TABLE IF NOT EXISTS {{.DB}}.event_stats {{.OnCluster}}
(
    site     String,
    day      Date,
    build    UInt64,
    name     String,
    hostname String,
    pathname String,
    visitors AggregateFunction(uniqExact, UInt64),
    events   UInt64
)
ENGINE = {{.Engine "event_stats"}}
PARTITION BY toYYYYMM(day)
ORDER BY (site, day, build, name, hostname, pathname);

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
