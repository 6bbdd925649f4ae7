package schema

import "strings"

// Every table turf creates, by the name its migration gives it. Code that
// builds a statement names a table only through these constants and Table,
// so a table is spelled one way everywhere.
const (
	Events = "events"
	// Engagements holds the tracker's engagement beacons (scroll depth,
	// engaged time), which are never events (0028_engagements).
	Engagements = "engagements"
	Salts       = "salts"
	Migrations  = "schema_migrations"
	APIKeys     = "api_keys"
	LinkKeys    = "link_keys" // newsletter link signing keys (internal/linksign)

	Users    = "dashboard_users"
	Sessions = "dashboard_sessions"
	Shares   = "dashboard_shares"
	Roles    = "dashboard_roles"   // admin or viewer, per user
	Invites  = "dashboard_invites" // one-time invitation and reset links

	// Settings made in the dashboard (0036, 0037): shared state, polled by
	// every instance.
	SettingsSites = "settings_sites"
	SettingsGoals = "settings_goals"
	SettingsAudit = "settings_audit"

	Visits     = "visits"
	VisitStats = "visit_stats"
	HourStats  = "hour_stats"
	EventStats = "event_stats"
	EventProps = "event_props"
	RollupDays = "rollup_days"
	// EventDays is the number of events of each site and UTC day, added to
	// by a materialized view as events are inserted (0042_event_days), so
	// the query side checks its rollups without counting the events.
	EventDays = "event_days"
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

// Rollups is RollupTables as a set, for lookups by name, and event_days:
// every table derived from the events, which retention expires and erases
// with them and an export leaves out.
var Rollups = func() map[string]bool {
	m := map[string]bool{EventDays: true}
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
	"utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "country", "region", "city", "browser", "browser_version", "os", "os_version",
	"device", "ip_prefix", "props_keys", "props_values", "revenue_micros", "revenue_currency", "interactive", "batch_id",
}

// EventInsert is the INSERT statement's head for EventColumns into db's
// events table.
func EventInsert(db string) string {
	return "INSERT INTO " + Table(db, Events) + " (" + strings.Join(EventColumns, ", ") + ")"
}

// EngagementColumns is the engagements table's column list as the
// collector's engagement sink inserts it, in the order of its batch columns.
var EngagementColumns = []string{"site", "ts", "visitor_id", "hostname", "pathname", "scroll_depth", "engagement_ms", "batch_id"}

// EngagementInsert is the INSERT statement's head for EngagementColumns
// into db's engagements table.
func EngagementInsert(db string) string {
	return "INSERT INTO " + Table(db, Engagements) + " (" + strings.Join(EngagementColumns, ", ") + ")"
}

// RawTables hold one row per visitor action, with visitor ids: never an
// aggregate that an operator may keep longer (retention/tables.go).
var RawTables = map[string]bool{Events: true, Engagements: true}

// ShardKeys names the tables that are sharded on a cluster, with their
// sharding keys. On a cluster such a table's migration creates the
// Replicated table under Local's name (events_local) on every node and a
// Distributed table under the plain name (events) over all shards, so every
// statement that names Table(db, Events) reads and writes the whole cluster
// without knowing it is one. Events and visits are sharded by visitor_id
// (already a keyed hash of site, address and browser for one UTC day), so a
// visitor's day, and so each visit, is on one shard (engagements too, so a
// visit's scroll depth and time on page are next to its events) and visits and uniques
// are exact per shard; the day tables by site and day. A data table missing
// here is not lost: it is created like the shared-state tables, replicated
// to every node (correct answers, no scaling). Add new data tables here.
var ShardKeys = map[string]string{
	Events:      "visitor_id",
	Engagements: "visitor_id",
	Visits:      "visitor_id",
	VisitStats:  "cityHash64(site, day)",
	HourStats:   "cityHash64(site, day)",
	EventStats:  "cityHash64(site, day)",
	EventProps:  "cityHash64(site, day)",
	RollupDays:  "cityHash64(site, day)",
	// The view writes each node's own inserts to its own shard; only the
	// rollup job's corrections go through the Distributed table.
	EventDays: "cityHash64(site, day)",
}

// LocalSuffix ends the name of a sharded table's Replicated part on a
// cluster.
const LocalSuffix = "_local"

// Local is the full name of the table that holds name's rows on this node:
// the Replicated part of a sharded table on a cluster (`db`.events_local),
// else the table itself. Mutations, DROP PARTITION and system.parts name it;
// reads and inserts name Table.
func Local(db, name, cluster string) string {
	if cluster != "" && ShardKeys[name] != "" {
		return Table(db, name+LocalSuffix)
	}
	return Table(db, name)
}

// OnCluster is " ON CLUSTER `cluster`", or "" on a single node.
func OnCluster(cluster string) string {
	if cluster == "" {
		return ""
	}
	return " ON CLUSTER " + quoteIdent(cluster)
}
