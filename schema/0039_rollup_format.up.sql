-- The format of a build's rows (query/rollup.Format). Readers use only
-- markers of the current format, so a build made before its tables gained
-- rows (format 1: visit_stats' rows within a value of another dimension,
-- plan.WithinPairs) is read raw until the job has built the day again,
-- never as zero. Markers written before this migration read 0.
ALTER TABLE {{.DB}}.rollup_days {{.OnCluster}} ADD COLUMN format UInt16 DEFAULT 0
