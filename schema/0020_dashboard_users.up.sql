-- People who may log in to the dashboard. The password is stored as a bcrypt
-- hash only. Every change (creation, new password, deletion) is a new row with
-- a higher version and readers take the newest row per username with argMax,
-- as for api_keys. An empty sites list means every site. Sessions made before
-- sessions_after are no longer valid: a new password logs everyone out.
CREATE TABLE IF NOT EXISTS {{.DB}}.dashboard_users {{.OnCluster}}
(
    username       String,
    password_hash  String,
    sites          Array(String),
    created        DateTime,
    sessions_after DateTime,
    deleted        UInt8,
    version        UInt64
)
ENGINE = {{.ReplacingEngine "dashboard_users" "version"}}
ORDER BY username
