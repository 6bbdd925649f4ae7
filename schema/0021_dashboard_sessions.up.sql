-- Logged-in dashboard sessions. Only SHA-256 of the session cookie's value is
-- stored, so a copy of this table logs nobody in. Logging out writes a newer
-- row with revoked = 1. Rows outlive their expiry harmlessly (18.16 has no
-- TTL); readers ignore expired sessions.
CREATE TABLE IF NOT EXISTS {{.DB}}.dashboard_sessions {{.OnCluster}}
(
    session_hash String,
    username     String,
    created      DateTime,
    expires      DateTime,
    revoked      UInt8,
    version      UInt64
)
ENGINE = {{.ReplacingEngine "dashboard_sessions" "version"}}
ORDER BY session_hash
