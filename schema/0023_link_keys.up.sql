-- The HMAC keys that sign newsletter links and open pixels (collector/newsletter),
-- shared by every instance writing to this database, so a link made on one
-- instance (or by `turf link create`) is accepted by all. The earliest key
-- (ties broken by its bytes) signs; every stored key verifies. No site
-- column: a key is not a site's data, so retention never expires it and old
-- newsletters keep working.
CREATE TABLE IF NOT EXISTS {{.DB}}.link_keys {{.OnCluster}}
(
    key     String,
    created DateTime
)
ENGINE = {{.Engine "link_keys"}}
ORDER BY (created, key)
