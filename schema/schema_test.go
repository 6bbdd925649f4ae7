package schema_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"turf/internal/chtest"
	"turf/schema"
)

func TestMain(m *testing.M) { chtest.Main(m) }

func TestMigrateIsIdempotent(t *testing.T) {
	db := chtest.New(t) // migrates once
	ctx := context.Background()
	var logs []string
	logf := func(f string, a ...any) { logs = append(logs, f) }
	if err := schema.Migrate(ctx, db.Conn, schema.Options{DB: db.Name}, logf); err != nil {
		t.Fatal(err)
	}
	if len(logs) != 0 {
		t.Fatalf("second run applied something: %v", logs)
	}
	all, _ := schema.All()
	n := db.Count(t, "SELECT count() FROM "+db.Name+".schema_migrations WHERE dirty = 0")
	if n != uint64(len(all)) {
		t.Fatalf("clean migration records = %d, want %d", n, len(all))
	}
	for _, tbl := range []string{schema.Events, schema.Salts} {
		if db.Count(t, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", db.Name, tbl) != 1 {
			t.Errorf("table %s missing", tbl)
		}
	}
}

func TestDirtyMigrationIsReapplied(t *testing.T) {
	db := chtest.New(t)
	ctx := context.Background()
	b, err := db.Conn.PrepareBatch(ctx, "INSERT INTO "+db.Name+".schema_migrations (version, dirty, seq, applied)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint32(1), uint8(1), uint64(1)<<63, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	var logs []string
	if err := schema.Migrate(ctx, db.Conn, schema.Options{DB: db.Name}, func(f string, a ...any) { logs = append(logs, f) }); err != nil {
		t.Fatal(err)
	}
	if len(logs) != 2 || !strings.Contains(logs[0], "interrupted") {
		t.Fatalf("want an 'interrupted' and an 'applied' log line, got %q", logs)
	}
}

func TestRenderCluster(t *testing.T) {
	all, err := schema.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		single, err := schema.Render(m.SQL, schema.Options{DB: "turf"})
		if err != nil {
			t.Fatal(err)
		}
		cluster, err := schema.Render(m.SQL, schema.Options{DB: "turf", Cluster: "c1"})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range single {
			if strings.Contains(s, "ON CLUSTER") || strings.Contains(s, "Replicated") {
				t.Errorf("%d: single-node SQL mentions a cluster: %s", m.Version, s)
			}
		}
		for _, s := range cluster {
			if strings.HasPrefix(s, "CREATE TABLE") && (!strings.Contains(s, "ON CLUSTER `c1`") || !strings.Contains(s, "Replicated") || !strings.Contains(s, "('/clickhouse/tables/{shard}/turf/")) {
				t.Errorf("%d: cluster SQL lacks ON CLUSTER or Replicated engine: %s", m.Version, s)
			}
		}
	}
}

func TestInvalidNames(t *testing.T) {
	for _, bad := range []string{"", "a-b", "x;DROP", "1abc"} {
		if schema.ValidIdent(bad) {
			t.Errorf("ValidIdent(%q) = true", bad)
		}
	}
	if _, _, err := schema.Open("clickhouse://127.0.0.1:9/bad-name"); err == nil {
		t.Error("Open accepted a database name with a dash")
	}
}
