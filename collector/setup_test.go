package collector_test

import (
	"context"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"turf/collector"
	"turf/collector/sink"
	"turf/collector/visitor"
	"turf/internal/chtest"
)

// newCollector makes a collector whose sink writes to a fresh database on
// the real test server; the sink is closed (and flushed) when tb ends.
func newCollector(tb testing.TB, scfg sink.Config, ccfg collector.Config) (*collector.Collector, *sink.Sink, *metrics.Set, *chtest.DB) {
	tb.Helper()
	db := chtest.New(tb)
	set := metrics.NewSet()
	scfg.Dir = tb.TempDir()
	snk, err := sink.New(db.Conn, db.Name, scfg, set, tb.Logf)
	if err != nil {
		tb.Fatal(err)
	}
	go snk.Run()
	tb.Cleanup(func() {
		// tb.Context is cancelled by now; closing needs a live one to flush.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := snk.Close(ctx); err != nil {
			tb.Error(err)
		}
	})
	salts := visitor.NewStore(db.Conn, db.Name, time.Now, time.Minute, tb.Logf)
	c, err := collector.New(ccfg, collector.Deps{Sink: snk, Salts: salts, Metrics: set})
	if err != nil {
		tb.Fatal(err)
	}
	return c, snk, set, db
}
