-- One row per accepted event, already anonymised and enriched by the collector.
-- Partitioned by month so retention can drop whole partitions; ordered by site and
-- day first because every dashboard query is "one site, a range of days", then by
-- visitor and time so visits (runs of one visitor's events) are contiguous.
CREATE TABLE IF NOT EXISTS {{.DB}}.events {{.OnCluster}}
(
    site            String,
    ts              DateTime,
    name            String,
    visitor_id      UInt64,
    hostname        String,
    pathname        String,
    referrer_host   String,
    referrer_path   String,
    source          String,
    channel         String,
    utm_source      String,
    utm_medium      String,
    utm_campaign    String,
    utm_content     String,
    utm_term        String,
    country         String,
    browser         String,
    browser_version String,
    os              String,
    os_version      String,
    device          String,
    ip_prefix       String,
    props_keys      Array(String),
    props_values    Array(String),
    revenue_micros  Int64,
    revenue_currency String,
    interactive     UInt8,
    batch_id        String
)
ENGINE = {{.Engine "events"}}
PARTITION BY toYYYYMM(ts)
ORDER BY (site, toDate(ts), visitor_id, ts)
