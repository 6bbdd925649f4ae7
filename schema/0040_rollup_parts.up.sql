-- A finished UTC day cut where the site's own day starts (rollup_days.cut,
-- seconds after UTC midnight; 0: not cut). Besides the whole day's rows
-- (part 0), visit_stats, event_stats and event_props hold the day's head
-- (part 1: before the cut) and tail (part 2: from the cut), so a range of
-- whole days in the site's time zone, whose first and last UTC days it cuts
-- there, is per-day counts only (query/rollup.Format 2). Visitor ids live
-- for one UTC day, so a head and a tail of different days add up exactly.
ALTER TABLE {{.DB}}.rollup_days {{.OnCluster}} ADD COLUMN cut UInt32 DEFAULT 0;
ALTER TABLE {{.DB}}.visit_stats {{.OnCluster}} ADD COLUMN part UInt8 DEFAULT 0 AFTER build;
ALTER TABLE {{.DB}}.event_stats {{.OnCluster}} ADD COLUMN part UInt8 DEFAULT 0 AFTER build;
ALTER TABLE {{.DB}}.event_props {{.OnCluster}} ADD COLUMN part UInt8 DEFAULT 0 AFTER build
