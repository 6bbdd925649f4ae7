-- One-time links that let a person set their own password: an invitation
-- (kind 'invite': the account is made on use, with the role and sites an
-- admin chose) or a reset (kind 'reset': an existing user's new password).
-- Only SHA-256 of the random token is stored. A link works once (used = 1
-- after) and until expires. Newest row per hash wins.
CREATE TABLE IF NOT EXISTS {{.DB}}.dashboard_invites {{.OnCluster}}
(
    invite_hash String,
    kind        String,
    username    String,
    role        String,
    sites       Array(String),
    created_by  String,
    created     DateTime,
    expires     DateTime,
    used        UInt8,
    version     UInt64
)
ENGINE = {{.ReplacingEngine "dashboard_invites" "version"}}
ORDER BY invite_hash
