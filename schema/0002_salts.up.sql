-- Daily visitor-id salts, shared by every collector writing to this database.
-- One partition per day so a day's salt is destroyed with DROP PARTITION, which
-- removes the data parts from disk at once (a DELETE mutation would leave it
-- until the next merge).
CREATE TABLE IF NOT EXISTS {{.DB}}.salts {{.OnCluster}}
(
    day     Date,
    salt    String,
    created DateTime
)
ENGINE = {{.Engine "salts"}}
PARTITION BY day
ORDER BY (day, salt)
