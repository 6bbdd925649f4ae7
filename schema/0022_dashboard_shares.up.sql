-- Read-only share links, one site each. The link carries "<share_id>-<secret>";
-- only SHA-256 of it is stored. Revoking writes a newer row with revoked = 1.
CREATE TABLE IF NOT EXISTS {{.DB}}.dashboard_shares {{.OnCluster}}
(
    share_id   String,
    token_hash String,
    site       String,
    name       String,
    created    DateTime,
    revoked    UInt8,
    version    UInt64
)
ENGINE = {{.ReplacingEngine "dashboard_shares" "version"}}
ORDER BY share_id
