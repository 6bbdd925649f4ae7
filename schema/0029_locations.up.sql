-- Region and city of the visitor's network, from the operator's city .mmdb
-- (--geoip-city-db), never anything finer than a city. Without a city
-- database, or when it has no answer, the collector stores '(not set)', the
-- label Plausible shows; rows written before this migration read the same
-- default. 18.16 has no ADD COLUMN IF NOT EXISTS: Migrate takes a column
-- that is already there for an ADD COLUMN applied before a crash.
ALTER TABLE {{.DB}}.events {{.OnCluster}} ADD COLUMN region String DEFAULT '(not set)' AFTER country;
ALTER TABLE {{.DB}}.events {{.OnCluster}} ADD COLUMN city String DEFAULT '(not set)' AFTER region;
ALTER TABLE {{.DB}}.visits {{.OnCluster}} ADD COLUMN region String DEFAULT '(not set)' AFTER country;
ALTER TABLE {{.DB}}.visits {{.OnCluster}} ADD COLUMN city String DEFAULT '(not set)' AFTER region
