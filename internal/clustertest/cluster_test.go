package clustertest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/schema"
)

const clusterName = "turf_cluster"

// TestReplicatedSchema migrates a two-replica cluster through one replica and
// checks what --clickhouse-cluster promises: every table exists on every
// replica with a Replicated engine, data written to one replica can be read
// from the other, and migrating again changes nothing.
func TestReplicatedSchema(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	start := time.Now()
	c := Require(t, ctx, clusterName, 2)
	t.Logf("ZooKeeper and 2 ClickHouse replicas up in %s", time.Since(start).Round(time.Millisecond))

	const db = "turf"
	conns := make([]driver.Conn, len(c.Nodes))
	for i, n := range c.Nodes {
		conn, _, err := schema.Open(n.DSN(db))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conns[i] = conn
	}

	start = time.Now()
	opts := schema.Options{DB: db, Cluster: clusterName}
	if err := schema.Migrate(ctx, conns[0], opts, t.Logf); err != nil {
		t.Fatalf("migrate through r1: %v", err)
	}
	t.Logf("migrated ON CLUSTER in %s", time.Since(start).Round(time.Millisecond))

	// Migrate waits for each ON CLUSTER statement to be done on every host,
	// so both replicas must have the tables now, without polling.
	want := []string{schema.Events, schema.Migrations, schema.Salts, schema.EventDays}
	var first []string
	for i, conn := range conns {
		engines := tableEngines(t, ctx, conn, db)
		var names []string
		for name, engine := range engines {
			names = append(names, name)
			if schema.ShardKeys[name] != "" {
				if engine != "Distributed" {
					t.Errorf("r%d: %s.%s has engine %s, want Distributed (over %s%s)", i+1, db, name, engine, name, schema.LocalSuffix)
				}
				continue
			}
			if engine == "MaterializedView" {
				continue // it writes to a table checked here (event_days_mv)
			}
			if !strings.HasPrefix(engine, "Replicated") {
				t.Errorf("r%d: %s.%s has engine %s, want a Replicated one", i+1, db, name, engine)
			}
		}
		slices.Sort(names)
		for _, w := range want {
			if _, ok := engines[w]; !ok {
				t.Errorf("r%d: table %s.%s is missing (have %v)", i+1, db, w, names)
			}
		}
		if i == 0 {
			first = names
		} else if !slices.Equal(names, first) {
			t.Errorf("r%d has tables %v, r1 has %v", i+1, names, first)
		}
	}

	// The migrations table is replicated too: r2 learns what was applied
	// through r1, so a later `turf migrate` pointed at r2 does nothing.
	all, err := schema.All()
	if err != nil {
		t.Fatal(err)
	}
	clean := fmt.Sprintf("SELECT count() FROM (SELECT version, argMax(dirty, seq) AS d FROM %s.%s GROUP BY version) WHERE d = 0", db, schema.Migrations)
	WaitCount(t, ctx, conns[1], clean, uint64(len(all)))

	// An event written to r1 the way the sink writes (a batch with an
	// explicit column list, which 18.16 needs) must reach r2.
	batchID := fmt.Sprintf("clustertest-%d", time.Now().UnixNano())
	b, err := conns[0].PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (site, ts, name, visitor_id, pathname, props_keys, props_values, interactive, batch_id)", db, schema.Events))
	if err != nil {
		t.Fatalf("prepare insert on r1: %v", err)
	}
	if err := b.Append("example.com", time.Now().UTC().Truncate(time.Second), "pageview", uint64(42), "/", []string{}, []string{}, uint8(1), batchID); err != nil {
		t.Fatalf("append on r1: %v", err)
	}
	if err := b.Send(); err != nil {
		t.Fatalf("insert on r1: %v", err)
	}
	start = time.Now()
	WaitCount(t, ctx, conns[1], fmt.Sprintf("SELECT count() FROM %s.%s WHERE batch_id = '%s'", db, schema.Events, batchID), 1)
	t.Logf("event replicated to r2 in %s", time.Since(start).Round(time.Millisecond))

	// Running Migrate again, through either replica, must apply nothing: no
	// log line and no new row in the migrations table.
	rows := fmt.Sprintf("SELECT count() FROM %s.%s", db, schema.Migrations)
	before := Count(t, ctx, conns[0], rows)
	for i, conn := range conns {
		var applied []string
		logf := func(format string, args ...any) { applied = append(applied, fmt.Sprintf(format, args...)) }
		if err := schema.Migrate(ctx, conn, opts, logf); err != nil {
			t.Fatalf("second migrate through r%d: %v", i+1, err)
		}
		if len(applied) > 0 {
			t.Errorf("second migrate through r%d was not a no-op: %q", i+1, applied)
		}
	}
	if after := Count(t, ctx, conns[0], rows); after != before {
		t.Errorf("second migrate changed %s from %d rows to %d", schema.Migrations, before, after)
	}
}

// tableEngines maps each table of db on one server to its engine.
func tableEngines(t *testing.T, ctx context.Context, conn driver.Conn, db string) map[string]string {
	t.Helper()
	rows, err := conn.Query(ctx, "SELECT name, engine FROM system.tables WHERE database = ?", db)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			t.Fatalf("list tables: %v", err)
		}
		out[name] = engine
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("list tables: %v", err)
	}
	return out
}
