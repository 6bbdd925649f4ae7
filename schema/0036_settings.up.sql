-- Settings made in the dashboard, shared by every instance through this
-- database: each instance (query side and collector) polls them every few
-- seconds. Every change is a new row with a higher version; readers take the
-- newest row per key with argMax. Flags given to `turf serve` (--site,
-- --site-timezone, --goal, --retention-site) seed these rows at start-up and
-- win over them (see README, "Settings and flags").
--
-- These are settings, not measurements: retention lists them as
-- configuration (retention/tables.go), so they are erased with their site but
-- never expire.
--
-- settings_sites: the sites whose events are stored. retention is a period
-- like 13mo, '' for the configured default.
CREATE TABLE IF NOT EXISTS {{.DB}}.settings_sites {{.OnCluster}}
(
    site      String,
    timezone  String,
    retention String,
    created   DateTime,
    deleted   UInt8,
    version   UInt64
)
ENGINE = {{.ReplacingEngine "settings_sites" "version"}}
ORDER BY site;

-- settings_goals: a site's goals, written as --goal writes them (an event
-- name, "Visit /path" or "Visit /path/*"), and the currency of their revenue
-- (ISO 4217, '' for none).
CREATE TABLE IF NOT EXISTS {{.DB}}.settings_goals {{.OnCluster}}
(
    site     String,
    goal     String,
    currency String,
    created  DateTime,
    deleted  UInt8,
    version  UInt64
)
ENGINE = {{.ReplacingEngine "settings_goals" "version"}}
ORDER BY (site, goal)
