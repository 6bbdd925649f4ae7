package faulttest

import (
	"context"
	"os"
	"testing"
	"time"

	"turf/internal/chserver"
)

// TestFaults is the short form of the fault-injection run (bench/faults has
// the long one): a steady numbered load through a ClickHouse outage, slow
// inserts, kill -9s of turf mid-flush and a full spool, then every 202'd
// event must be in ClickHouse exactly once.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault injection takes about a minute")
	}
	if _, err := chserver.FindBinary(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ClickHouse is required under CI=true: %v", err)
		}
		t.Skip(err)
	}
	c := Short(t.TempDir())
	c.Logf = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := Run(ctx, c)
	if rep != nil {
		t.Logf("\n%s", rep)
	}
	if err != nil {
		if rep != nil {
			if b, rerr := os.ReadFile(rep.TurfLog); rerr == nil {
				t.Logf("turf's log:\n%s", b)
			}
		}
		t.Fatal(err)
	}
	if !rep.OK() {
		if b, err := os.ReadFile(rep.TurfLog); err == nil {
			t.Logf("turf's log:\n%s", b)
		}
		t.Fatal("turf broke its promise")
	}
	if rep.RefusedSpoolFull == 0 || rep.Kills != c.Kills {
		t.Fatalf("a fault did not happen: %d refusals with a full spool, %d kills", rep.RefusedSpoolFull, rep.Kills)
	}
}
