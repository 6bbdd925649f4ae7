-- A dashboard user's role: 'admin' (may change settings, users, share links
-- and API keys, and sees every site) or 'viewer' (reads the sites of the
-- user's list in dashboard_users, every site when the list is empty). A table
-- of its own rather than a column, so dashboard_users keeps its shape on every
-- server and cluster layout. A user without a row here is a viewer: nobody
-- gains rights by an upgrade. Newest row per username wins, as for users.
CREATE TABLE IF NOT EXISTS {{.DB}}.dashboard_roles {{.OnCluster}}
(
    username String,
    role     String,
    version  UInt64
)
ENGINE = {{.ReplacingEngine "dashboard_roles" "version"}}
ORDER BY username
