package schema_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"turf/internal/chtest"
	"turf/schema"
)

// 0029 adds columns, and 18.16 has no ADD COLUMN IF NOT EXISTS: a run
// interrupted after its ALTERs (marked dirty) is applied again over the
// columns it already added, and rows written before it read "(not set)".
func TestAddColumnMigrationIsReapplied(t *testing.T) {
	db := chtest.New(t)
	ctx := context.Background()
	ev, err := db.Conn.PrepareBatch(ctx, "INSERT INTO "+db.Name+".events (site, ts, name, batch_id)")
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Append("a", time.Now(), "pageview", "x"); err != nil {
		t.Fatal(err)
	}
	if err := ev.Send(); err != nil {
		t.Fatal(err)
	}
	b, err := db.Conn.PrepareBatch(ctx, "INSERT INTO "+db.Name+".schema_migrations (version, dirty, seq, applied)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint32(29), uint8(1), uint64(1)<<63, time.Now()); err != nil {
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
	if n := db.Count(t, "SELECT count() FROM "+db.Name+".events WHERE region = '(not set)' AND city = '(not set)'"); n != 1 {
		t.Errorf("%d old rows read (not set), want 1", n)
	}
	// Any other failure still fails the migration.
	if err := db.Conn.Exec(ctx, "ALTER TABLE "+db.Name+".events ADD COLUMN region UInt8"); err == nil {
		t.Fatal("a duplicate column was accepted")
	}
}
