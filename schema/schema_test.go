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
	twins := map[string]bool{}
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
			if strings.Contains(s, "ON CLUSTER") || strings.Contains(s, "Replicated") || strings.Contains(s, "Distributed") {
				t.Errorf("%d: single-node SQL mentions a cluster: %s", m.Version, s)
			}
		}
		for _, s := range cluster {
			if !strings.HasPrefix(s, "CREATE TABLE") {
				continue
			}
			if !strings.Contains(s, "ON CLUSTER `c1`") {
				t.Errorf("%d: cluster SQL lacks ON CLUSTER: %s", m.Version, s)
			}
			name := strings.Fields(strings.TrimPrefix(s, "CREATE TABLE IF NOT EXISTS "))[0]
			name = strings.TrimPrefix(name, "`turf`.")
			base := strings.TrimSuffix(name, schema.LocalSuffix)
			switch {
			case strings.Contains(s, "ENGINE = Distributed("):
				want := "ENGINE = Distributed(`c1`, `turf`, " + name + schema.LocalSuffix + ", " + schema.ShardKeys[name] + ")"
				if !strings.Contains(s, want) {
					t.Errorf("%d: Distributed twin of %s: %s, want %s", m.Version, name, s, want)
				}
				twins[name] = true
			case schema.ShardKeys[base] != "":
				if name == base || !strings.Contains(s, "('/clickhouse/tables/{shard}/turf/"+base+"', '{replica}'") {
					t.Errorf("%d: sharded table %s must be %s%s with a per-shard Keeper path: %s", m.Version, base, base, schema.LocalSuffix, s)
				}
			default:
				if !strings.Contains(s, "('/clickhouse/tables/all/turf/"+name+"', '{shard}-{replica}'") {
					t.Errorf("%d: shared table %s must be replicated to every node: %s", m.Version, name, s)
				}
			}
		}
	}
	for name := range schema.ShardKeys {
		if !twins[name] {
			t.Errorf("sharded table %s has no Distributed twin", name)
		}
	}
}

// TestRenderClusterAlter: an ALTER of a sharded table reaches its local part,
// and a column change the Distributed twin too (recreated: 18.16 refuses
// ALTER ON CLUSTER on a Distributed table); other tables are left alone.
func TestRenderClusterAlter(t *testing.T) {
	for _, c := range []struct{ sql, want string }{
		{"ALTER TABLE {{.DB}}.events {{.OnCluster}} ADD COLUMN region String",
			"ALTER TABLE `turf`.events_local ON CLUSTER `c1` ADD COLUMN region String|" +
				"DROP TABLE IF EXISTS `turf`.events ON CLUSTER `c1`|" +
				"CREATE TABLE IF NOT EXISTS `turf`.events ON CLUSTER `c1` AS `turf`.events_local ENGINE = Distributed(`c1`, `turf`, events_local, visitor_id)"},
		{"ALTER TABLE {{.DB}}.visits {{.OnCluster}} DELETE WHERE site = 'a'",
			"ALTER TABLE `turf`.visits_local ON CLUSTER `c1` DELETE WHERE site = 'a'"},
		{"ALTER TABLE {{.DB}}.salts {{.OnCluster}} ADD COLUMN x String",
			"ALTER TABLE `turf`.salts ON CLUSTER `c1` ADD COLUMN x String"},
	} {
		got, err := schema.Render(c.sql, schema.Options{DB: "turf", Cluster: "c1"})
		if err != nil {
			t.Fatal(err)
		}
		if g := strings.Join(got, "|"); g != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.sql, g, c.want)
		}
		single, _ := schema.Render(c.sql, schema.Options{DB: "turf"})
		if len(single) != 1 || strings.Contains(single[0], "_local") {
			t.Errorf("single node: %q", single)
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
