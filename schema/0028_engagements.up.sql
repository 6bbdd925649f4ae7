-- One row per engagement beacon (Plausible's tracker sends one when a page is
-- left, hidden or loses focus): the page's deepest scroll so far and the time
-- the visitor was engaged with it since the previous beacon. Kept apart from
-- the events table so that an engagement is never an event, a page view or
-- an interaction, and visits, bounces and durations stay as they were. It
-- has the site column and a DateTime ts partition like events, so retention
-- (retention/tables.go Discover) expires and erases it with no extra code;
-- it holds visitor ids, so it is raw data, never an aggregate.
-- scroll_depth is a percentage 0..100, or 255 when the beacon had none.
CREATE TABLE IF NOT EXISTS {{.DB}}.engagements {{.OnCluster}}
(
    site          String,
    ts            DateTime,
    visitor_id    UInt64,
    hostname      String,
    pathname      String,
    scroll_depth  UInt8,
    engagement_ms UInt32,
    batch_id      String
)
ENGINE = {{.Engine "engagements"}}
PARTITION BY toYYYYMM(ts)
ORDER BY (site, toDate(ts), visitor_id, ts)
