package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"turf/collector/sink"
	"turf/internal/chtest"
	"turf/schema"
)

func TestMain(m *testing.M) {
	// The first-hour test runs this binary as the turf command itself.
	if os.Getenv(runAsTurf) == "1" {
		main()
		os.Exit(0)
	}
	chtest.Main(m)
}

// TestEraseDrainsSpool: events a stopped turf left in its spool are
// delivered before the erase, so the erase removes them too.
func TestEraseDrainsSpool(t *testing.T) {
	db := chtest.New(t)
	dataDir := t.TempDir()
	// A turf whose ClickHouse never answers: everything stays spooled.
	dead, _, err := schema.Open("clickhouse://127.0.0.1:1/" + db.Name)
	if err != nil {
		t.Fatal(err)
	}
	snk, err := sink.New(dead, db.Name, sink.Config{Dir: filepath.Join(dataDir, "spool"), BatchSize: 100, FlushInterval: time.Hour,
		QueueSize: 100, InsertTimeout: 200 * time.Millisecond}, metrics.NewSet(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	go snk.Run()
	now := time.Now().UTC().Truncate(time.Second)
	for i, site := range []string{"gone.example", "gone.example", "kept.example"} {
		if err := snk.Add(sink.Event{Site: site, TS: now, Name: "pageview", VisitorID: uint64(i), Pathname: "/"}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = snk.Close(ctx) // leaves the events in the spool, as a stopped turf does
	if n := db.Count(t, "SELECT count() FROM "+db.Name+".events"); n != 0 {
		t.Fatalf("%d events stored although ClickHouse was unreachable", n)
	}

	msg, running, err := drainSpool(context.Background(), db.Conn, db.Name, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if running || !strings.Contains(msg, "3 waiting events") {
		t.Fatalf("drainSpool = %q, running %v; want 3 events delivered", msg, running)
	}
	if n := db.Count(t, "SELECT count() FROM "+db.Name+".events WHERE site = 'gone.example'"); n != 2 {
		t.Fatalf("%d events of the site delivered, want 2", n)
	}
	// The erase proper runs through `turf site erase`.
	os.Setenv("TURF_DATA_DIR", dataDir)
	defer os.Unsetenv("TURF_DATA_DIR")
	if err := runSite([]string{"erase", "gone.example", "--yes", "--clickhouse", db.DSN}); err != nil {
		t.Fatal(err)
	}
	if n := db.Count(t, "SELECT count() FROM "+db.Name+".events WHERE site = 'gone.example'"); n != 0 {
		t.Fatalf("%d rows of the erased site remain", n)
	}
	if n := db.Count(t, "SELECT count() FROM "+db.Name+".events WHERE site = 'kept.example'"); n != 1 {
		t.Fatalf("other site: %d rows, want 1", n)
	}
}
