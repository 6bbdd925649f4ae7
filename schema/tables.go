package schema

import "strings"

// Every table turf creates, by the name its migration gives it. Code that
// builds a statement names a table only through these constants and Table,
// so a table is spelled one way everywhere.
const (
	Events     = "events"
	Salts      = "salts"
	Migrations = "schema_migrations"
	APIKeys    = "api_keys"
	LinkKeys   = "link_keys" // newsletter link signing keys (collector/newsletter)

	Users    = "dashboard_users"
	Sessions = "dashboard_sessions"
	Shares   = "dashboard_shares"

	Visits     = "visits"
	VisitStats = "visit_stats"
	HourStats  = "hour_stats"
	EventStats = "event_stats"
	EventProps = "event_props"
	RollupDays = "rollup_days"
)

// Table is a table's full name in database db, as statements write it:
// `db`.name. Both are turf's own identifiers (ValidIdent), so the quoting
// never needs escaping.
func Table(db, name string) string { return quoteIdent(db) + "." + name }

// RollupTables are the tables the query side's rollup job (query/rollup)
// rebuilds from events (0004_rollups), the marker table rollup_days first:
// a cleanup deletes markers before the rows they name. visits and
// event_stats hold the day's visitor ids (one per visit, or inside uniq
// states), and visit_stats, hour_stats and event_props counts of a single
// day's visitors, so they are not aggregates in the privacy sense: they
// expire with the raw events, and an export leaves them out because they
// are copies of what the events export already holds.
var RollupTables = []string{RollupDays, Visits, VisitStats, HourStats, EventStats, EventProps}

// Rollups is RollupTables as a set, for lookups by name.
var Rollups = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range RollupTables {
		m[t] = true
	}
	return m
}()

// EventColumns is the events table's column list as the collector's sink
// inserts it (18.16 needs an explicit list), in the order the sink's batch
// columns hold them; anything else that inserts events uses it too.
var EventColumns = []string{
	"site", "ts", "name", "visitor_id", "hostname", "pathname", "referrer_host", "referrer_path", "source", "channel",
	"utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "country", "browser", "browser_version", "os", "os_version",
	"device", "ip_prefix", "props_keys", "props_values", "revenue_micros", "revenue_currency", "interactive", "batch_id",
}

// EventInsert is the INSERT statement's head for EventColumns into db's
// events table.
func EventInsert(db string) string {
	return "INSERT INTO " + Table(db, Events) + " (" + strings.Join(EventColumns, ", ") + ")"
}
