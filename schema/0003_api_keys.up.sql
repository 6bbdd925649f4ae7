-- Stats API keys. Only a SHA-256 of each key is stored; the key itself is
-- printed once when it is made. Every change (creation, revocation) is a new
-- row with a higher version; readers take the newest row per key_id with
-- argMax, so nothing depends on when ReplacingMergeTree merges.
CREATE TABLE IF NOT EXISTS {{.DB}}.api_keys {{.OnCluster}}
(
    key_id   String,
    key_hash String,
    sites    Array(String),
    name     String,
    created  DateTime,
    revoked  UInt8,
    version  UInt64
)
ENGINE = {{.ReplacingEngine "api_keys" "version"}}
ORDER BY key_id
