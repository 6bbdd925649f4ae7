-- event_props holds machine events too (machine = 1: newsletter opens and
-- clicks by mail privacy proxies and link scanners, plan.MachineProp), so the
-- Newsletters panel's machine counts are per-day counts as well
-- (query/rollup.Format 3). Every other reader takes machine = 0. Rows written
-- before this migration are people's, as they were.
ALTER TABLE {{.DB}}.event_props {{.OnCluster}} ADD COLUMN machine UInt8 DEFAULT 0 AFTER part
