-- The number of events of each site and UTC day, kept as they are inserted:
-- the materialized view adds each inserted block's counts, and
-- SummingMergeTree adds the rows up as parts merge. The query side compares
-- it with the count each rollup build recorded (query/rollup.Valid) and so
-- reads a row per day instead of counting every event of the range: that
-- check is what a dashboard's first load paid, about 7 s at 100M events.
-- The rollup job compares it with the events themselves on every pass and
-- adds a correcting row (events may be negative) where they differ: a block
-- the view missed or counted twice, an erased or expired day, or the events
-- that arrived between this view's creation and the count below.
CREATE TABLE IF NOT EXISTS {{.DB}}.event_days {{.OnCluster}}
(
    site   String,
    day    Date,
    events Int64
)
ENGINE = {{.SummingEngine "event_days" "events"}}
PARTITION BY toYYYYMM(day)
ORDER BY (site, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS {{.DB}}.event_days_mv {{.OnCluster}} TO {{.Local "event_days"}}
AS SELECT site, toDate(ts, 'UTC') AS day, toInt64(count()) AS events FROM {{.Local "events"}} GROUP BY site, day;

-- The events stored before the view: counted once, through the Distributed
-- tables on a cluster (this statement runs on one node).
INSERT INTO {{.DB}}.event_days (site, day, events) SELECT site, toDate(ts, 'UTC') AS day, toInt64(count()) AS events FROM {{.DB}}.events GROUP BY site, day
