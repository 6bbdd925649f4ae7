-- Who changed which setting when: one row per change made in the dashboard
-- (or seeded from a flag, actor 'flag'). Staff activity, not visitor data:
-- no site column, so retention neither expires nor erases it.
CREATE TABLE IF NOT EXISTS {{.DB}}.settings_audit {{.OnCluster}}
(
    ts      DateTime,
    actor   String,
    action  String,
    target  String,
    detail  String
)
ENGINE = {{.Engine "settings_audit"}}
ORDER BY ts
