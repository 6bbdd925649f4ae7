package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"turf/internal/chserver"
	"turf/internal/clustertest"
	"turf/query"
	"turf/query/rollup"
	"turf/schema"
)

// compareCluster loads the same events into one node and into 2 shards × 2
// replicas on loopback (all on this machine, so the cluster's shards share
// its cores: the figure is the cost of the Distributed reads, merging and
// GLOBAL subqueries, not the gain of more machines) and prints the median
// time of each dashboard query on both, raw and with rollups.
func compareCluster(ctx context.Context, counts string, days, runs int) error {
	dir, err := os.MkdirTemp("", "turf-bench-cluster-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	single, err := chserver.Start(ctx, filepath.Join(dir, "single"))
	if err != nil {
		return err
	}
	defer single.Stop()
	c, err := clustertest.StartSharded(ctx, dir, "turf_bench", 2, 2)
	if err != nil {
		return err
	}
	defer c.Stop()
	const db = "turf_bench"
	one, _, err := schema.Open(single.DSN(db))
	if err != nil {
		return err
	}
	many, _, err := schema.Open("clickhouse://" + c.Addr(0) + "/" + db)
	if err != nil {
		return err
	}
	end := time.Date(2024, 6, 30, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return end.Add(-12 * time.Hour) }
	for _, cs := range strings.Split(counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(cs))
		if err != nil {
			return err
		}
		type side struct {
			name    string
			conn    driver.Conn
			opts    schema.Options
			drop    string
			opt     string
			raw, ru []time.Duration
		}
		sides := []*side{
			{name: "one node", conn: one, opts: schema.Options{DB: db}, drop: "DROP DATABASE IF EXISTS " + db,
				opt: "OPTIMIZE TABLE " + schema.Table(db, schema.Events) + " FINAL"},
			// 18.16 refuses OPTIMIZE ... ON CLUSTER on a Replicated table
			// ("Unknown log entry type"): it runs on one replica per shard
			// below, and replicates.
			{name: "2×2 cluster", conn: many, opts: schema.Options{DB: db, Cluster: c.Name}, drop: "DROP DATABASE IF EXISTS " + db + " ON CLUSTER turf_bench",
				opt: "SELECT 1"},
		}
		for _, s := range sides {
			if err := s.conn.Exec(ctx, s.drop); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			if err := schema.Migrate(ctx, s.conn, s.opts, func(string, ...any) {}); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			t0 := time.Now()
			// Synchronous through the Distributed table: loaded means on
			// every shard.
			lctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_distributed_sync": 1}))
			if err := loadInto(lctx, s.conn, db, n, days, end, s.opt); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			if s.opts.Cluster != "" {
				for i := 0; i < len(c.Nodes); i += c.Replicas {
					if err := optimizeOn(ctx, c.Addr(i), "OPTIMIZE TABLE "+schema.Local(db, schema.Events, c.Name)+" FINAL"); err != nil {
						return err
					}
				}
			}
			fmt.Printf("%s: %d events loaded in %s\n", s.name, n, time.Since(t0).Round(time.Millisecond))
			eng, err := query.NewEngine(s.conn, db, nil, now)
			if err != nil {
				return err
			}
			s.raw = timeDashboard(ctx, eng, runs)
			if _, err := rollup.New(s.conn, db, now, func(string, ...any) {}).Pass(ctx, time.Unix(0, 0)); err != nil {
				return fmt.Errorf("%s rollups: %w", s.name, err)
			}
			s.ru = timeDashboard(ctx, eng, runs)
		}
		fmt.Printf("\n%d events over %d days, median of %d runs\n", n, days, runs)
		fmt.Printf("  %-32s %10s %10s %7s   %10s %10s %7s\n", "query", "raw 1", "raw 2×2", "ratio", "rollup 1", "rollup 2×2", "ratio")
		var t [4]time.Duration
		for i, q := range dashboard {
			a, b, x, y := sides[0].raw[i], sides[1].raw[i], sides[0].ru[i], sides[1].ru[i]
			t[0], t[1], t[2], t[3] = t[0]+a, t[1]+b, t[2]+x, t[3]+y
			fmt.Printf("  %-32s %8d ms %8d ms %6.2fx   %8d ms %8d ms %6.2fx\n", q.name, a.Milliseconds(), b.Milliseconds(), ratio(b, a), x.Milliseconds(), y.Milliseconds(), ratio(y, x))
		}
		fmt.Printf("  %-32s %8d ms %8d ms %6.2fx   %8d ms %8d ms %6.2fx\n", "whole dashboard", t[0].Milliseconds(), t[1].Milliseconds(), ratio(t[1], t[0]), t[2].Milliseconds(), t[3].Milliseconds(), ratio(t[3], t[2]))
	}
	return nil
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(max(b, time.Millisecond)) }

func optimizeOn(ctx context.Context, addr, stmt string) error {
	conn, _, err := schema.Open("clickhouse://" + addr + "/default")
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("%s on %s: %w", stmt, addr, err)
	}
	return nil
}
