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
	// Aggregate is true for every table but the raw events and the rollups
	// that hold visitor ids: such tables may be kept longer when the operator
	// asks for it (--retention-aggregates).
	Aggregate bool
	// Rollup marks the copies rebuilt from events (schema.Rollups): expired
	// and erased like the events, left out of exports.
	Rollup bool
	// Config marks tables of settings rather than of measurements (share
	// links, ...): they are erased with their site but never expire and are
	// not exported.
	Config  bool
	Columns []Column
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
}

// Column is a column's name and ClickHouse type.
type Column struct{ Name, Type string }

// timeNames rank the candidates when a table has several time columns and
// none is in its partition key.
var timeNames = []string{"ts", "time", "timestamp", "hour", "day", "date"}

// Discover lists every MergeTree-family table of db with a `site` column.
// Views are skipped: their rows live in a table that is listed itself.
func Discover(ctx context.Context, conn driver.Conn, db string) ([]Table, error) {
	rows, err := conn.Query(ctx, "SELECT name, engine, partition_key FROM system.tables WHERE database = ? AND engine LIKE '%MergeTree%'", db)
	if err != nil {
		return nil, fmt.Errorf("cannot list the tables of %s: %w", db, err)
	}
	tables := map[string]*Table{}
	for rows.Next() {
		t := &Table{}
		if err := rows.Scan(&t.Name, &t.Engine, &t.PartitionKey); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cannot list the tables of %s: %w", db, err)
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
		t.TimeColumn, t.TimeType = pickTimeColumn(t.Columns, t.PartitionKey)
		t.Rollup = schema.Rollups[t.Name]
		t.Aggregate = t.Name != schema.Events && !t.Rollup
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
