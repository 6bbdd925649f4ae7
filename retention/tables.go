package retention

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/schema"
)

// Table is one of turf's tables that holds rows of a site. Tables are found
// in system.tables rather than listed here, so that a table another part of
// turf adds later (a pre-aggregated rollup, a materialised view's inner
// table) is covered by retention, erasure and export without anyone
// remembering to register it.
type Table struct {
	Name         string
	Engine       string
	PartitionKey string // "" when the table is not partitioned
	TimeColumn   string // "" when no Date/DateTime column exists: erased, never expired
	TimeType     string // ClickHouse type of TimeColumn
	// Aggregate is true for every table but the raw ones (schema.RawTables:
	// events, engagements) and the rollups that hold visitor ids: such
	// tables may be kept longer when the operator asks for it
	// (--retention-aggregates).
	Aggregate bool
	// Rollup marks the copies rebuilt from events (schema.Rollups): expired
	// and erased like the events, left out of exports.
	Rollup bool
	// Config marks tables of settings rather than of measurements (share
	// links, ...): they are erased with their site but never expire and are
	// not exported.
	Config  bool
	Columns []Column
	// Local and Cluster are set for a sharded table on a cluster: Name is
	// the Distributed table every read goes through, Local the Replicated
	// table on each shard that DROP PARTITION and DELETE change, ON CLUSTER
	// Cluster. Tables replicated to every node leave them empty: a change on
	// one node is replicated to all.
	Local   string
	Cluster string
}

// configTables hold settings that name a site. Any other table with a site
// column is taken for data, so a new table is expired unless someone says
// otherwise: a forgotten entry here costs a setting, a forgotten data table
// would cost the visitors' privacy.
var configTables = map[string]bool{
	schema.APIKeys:  true,
	schema.Users:    true,
	schema.Sessions: true,
	schema.Shares:   true,
	// Sites and goals set in the dashboard: a site's settings outlive its
	// oldest events, and go with `turf site erase`.
	schema.SettingsSites: true,
	schema.SettingsGoals: true,
}

// Column is a column's name and ClickHouse type.
type Column struct{ Name, Type string }

// timeNames rank the candidates when a table has several time columns and
// none is in its partition key.
var timeNames = []string{"ts", "time", "timestamp", "hour", "day", "date"}

// Discover lists every MergeTree-family table of db with a `site` column.
// Views are skipped: their rows live in a table that is listed itself.
func Discover(ctx context.Context, conn driver.Conn, db string) ([]Table, error) {
	rows, err := conn.Query(ctx, "SELECT name, engine, partition_key, engine_full FROM system.tables WHERE database = ? AND (engine LIKE '%MergeTree%' OR engine = 'Distributed')", db)
	if err != nil {
		return nil, fmt.Errorf("cannot list the tables of %s: %w", db, err)
	}
	tables := map[string]*Table{}
	type twin struct{ name, cluster string }
	twins := map[string]twin{} // local table -> its Distributed table
	for rows.Next() {
		t := &Table{}
		var full string
		if err := rows.Scan(&t.Name, &t.Engine, &t.PartitionKey, &full); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cannot list the tables of %s: %w", db, err)
		}
		if t.Engine == "Distributed" {
			if cluster, local, ok := schema.ParseDistributed(full); ok {
				twins[local] = twin{t.Name, cluster}
			}
			continue
		}
		if k := strings.TrimSpace(t.PartitionKey); k == "tuple()" {
			t.PartitionKey = ""
		}
		tables[t.Name] = t
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list the tables of %s: %w", db, err)
	}
	rows, err = conn.Query(ctx, "SELECT table, name, type FROM system.columns WHERE database = ?", db)
	if err != nil {
		return nil, fmt.Errorf("cannot list the columns of %s: %w", db, err)
	}
	for rows.Next() {
		var table string
		var c Column
		if err := rows.Scan(&table, &c.Name, &c.Type); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cannot list the columns of %s: %w", db, err)
		}
		if t := tables[table]; t != nil {
			t.Columns = append(t.Columns, c)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list the columns of %s: %w", db, err)
	}
	var out []Table
	for _, t := range tables {
		if !hasSiteColumn(t.Columns) {
			continue
		}
		if tw, ok := twins[t.Name]; ok {
			t.Local, t.Name, t.Cluster = t.Name, tw.name, tw.cluster
		}
		t.TimeColumn, t.TimeType = pickTimeColumn(t.Columns, t.PartitionKey)
		t.Rollup = schema.Rollups[t.Name]
		t.Aggregate = !schema.RawTables[t.Name] && !t.Rollup
		t.Config = configTables[t.Name]
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func hasSiteColumn(cols []Column) bool {
	for _, c := range cols {
		if c.Name == "site" && (c.Type == "String" || c.Type == "LowCardinality(String)") {
			return true
		}
	}
	return false
}

// isTime reports Date, DateTime and DateTime64 columns, with or without a
// time zone.
func isTime(typ string) bool { return strings.HasPrefix(typ, "Date") }

var word = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)

// pickTimeColumn prefers the column the table is partitioned by, so that
// expiry follows the partitions and whole ones can be dropped.
func pickTimeColumn(cols []Column, partitionKey string) (string, string) {
	inKey := map[string]bool{}
	for _, w := range word.FindAllString(partitionKey, -1) {
		inKey[w] = true
	}
	var cands []Column
	for _, c := range cols {
		if isTime(c.Type) {
			if inKey[c.Name] {
				return c.Name, c.Type
			}
			cands = append(cands, c)
		}
	}
	for _, n := range timeNames {
		for _, c := range cands {
			if c.Name == n {
				return c.Name, c.Type
			}
		}
	}
	if len(cands) > 0 {
		return cands[0].Name, cands[0].Type
	}
	return "", ""
}

// quoteIdent quotes a table or column name; .inner. tables need it.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// quoteString makes a ClickHouse string literal.
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func fullName(db string, t Table) string { return quoteIdent(db) + "." + quoteIdent(t.Name) }

// localName is the table that changes take: the shards' Replicated part of a
// sharded table, else the table itself.
func localName(db string, t Table) string {
	if t.Local != "" {
		return quoteIdent(db) + "." + quoteIdent(t.Local)
	}
	return fullName(db, t)
}

// systemTable reads a system table of every shard for a sharded table (one
// replica each: they hold the same parts), else of this node.
func systemTable(t Table, name string) string {
	if t.Cluster != "" {
		return "cluster(" + quoteString(t.Cluster) + ", system, " + name + ")"
	}
	return "system." + name
}

// storedName is the name a table has in system.parts and system.mutations.
func storedName(t Table) string {
	if t.Local != "" {
		return t.Local
	}
	return t.Name
}
