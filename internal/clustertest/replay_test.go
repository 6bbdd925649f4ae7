package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/VictoriaMetrics/metrics"

	"turf/collector/sink"
	"turf/internal/clustertest"
	"turf/schema"
)

// TestReplayAfterKillOnLaggingReplica is the race behind the flaky
// "got 250, want 240" of TestShardedCluster, made deterministic. A
// collector inserts its first run (10 of 30 spooled events) through r1 and
// is killed before its checkpoint moves; the collector started on the same
// spool counts that run through r2, which has not fetched the part
// (SYSTEM STOP FETCHES) and answers 0. It must send the same run of 10
// again, which r2's block deduplication drops (the block id is in
// ZooKeeper), not a run cut by its own batch size, which would be a new
// block: once r2 fetches again every event must be there once.
func TestReplayAfterKillOnLaggingReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := clustertest.RequireSharded(t, ctx, "turf_cluster", 1, 2)
	conns := make([]driver.Conn, len(c.Nodes))
	for i := range c.Nodes {
		conn, _, err := schema.Open("clickhouse://" + c.Addr(i) + "/" + db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conns[i] = conn
	}
	if err := schema.Migrate(ctx, conns[0], schema.Options{DB: db, Cluster: c.Name, DDLTimeout: 20 * time.Second}, t.Logf); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if err := conns[1].Exec(ctx, "SYSTEM STOP FETCHES turf.events_local"); err != nil {
		t.Fatal(err)
	}

	// The collector that is killed: connected to r1, batches of 10.
	dir := t.TempDir()
	kc := &killConn{Conn: conns[0], dir: dir, copy: t.TempDir()}
	old, err := sink.New(kc, db, sink.Config{Dir: dir, SyncInterval: 50 * time.Millisecond, BatchSize: 10, FlushInterval: time.Hour, QueueSize: 1000, InsertTimeout: 10 * time.Second},
		metrics.NewSet(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().UTC().Truncate(time.Second)
	for i := range 30 {
		if err := old.Add(replayEvent(i, ts)); err != nil {
			t.Fatal(err)
		}
	}
	go old.Run() // the 30 are spooled first, so its first run is 10 of them
	for deadline := time.Now().Add(30 * time.Second); !kc.dead.Load(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the collector inserted nothing within 30s")
		}
	}
	if kc.copyErr != nil {
		t.Fatal(kc.copyErr)
	}
	closeCtx, closeCancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer closeCancel()
	_ = old.Close(closeCtx) // "dead": its inserts fail, its spool is not used again

	// The race's premise: r1 has the run, and a count through r2 sees none.
	if n := clustertest.Count(t, ctx, conns[0], "SELECT count() FROM turf.events_local"); n != 10 {
		t.Fatalf("r1 holds %d events after the killed collector's insert, want its run of 10", n)
	}
	if n := clustertest.Count(t, ctx, conns[1], "SELECT count() FROM turf.events"); n != 0 {
		t.Fatalf("a count through r2 sees %d events, want 0 (r2 must lag)", n)
	}

	// The restarted collector, on the same spool, reaches r2 and cuts
	// batches of 25 (as turf serve in TestShardedCluster does).
	set := metrics.NewSet()
	s, err := sink.New(conns[1], db, sink.Config{Dir: kc.copy, SyncInterval: 50 * time.Millisecond, BatchSize: 25, FlushInterval: 10 * time.Millisecond, QueueSize: 1000, InsertTimeout: 10 * time.Second},
		set, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	go s.Run()
	flushCtx, flushCancel := context.WithTimeout(ctx, 30*time.Second)
	defer flushCancel()
	if err := s.Flush(flushCtx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}

	if err := conns[1].Exec(ctx, "SYSTEM START FETCHES turf.events_local"); err != nil {
		t.Fatal(err)
	}
	for i := range conns {
		syncReplica(t, ctx, conns[i], c.NodeName(i))
	}
	for i := range conns {
		stored := clustertest.Count(t, ctx, conns[i], "SELECT count() FROM turf.events_local")
		distinct := clustertest.Count(t, ctx, conns[i], "SELECT uniqExact(pathname) FROM turf.events_local")
		t.Logf("%s: %d events stored, %d distinct", c.NodeName(i), stored, distinct)
		if stored != 30 || distinct != 30 {
			t.Errorf("%s: %d events stored (%d distinct), want each of the 30 once", c.NodeName(i), stored, distinct)
		}
	}
}

func replayEvent(i int, ts time.Time) sink.Event {
	return sink.Event{Site: sites[0], TS: ts, Name: "pageview", VisitorID: uint64(i), Hostname: sites[0],
		Pathname: fmt.Sprintf("/replay/%d", i), IPPrefix: netip.MustParsePrefix("203.0.113.0/24"), Interactive: true}
}

// killConn stands for a collector killed with SIGKILL right after its first
// insert landed: in that moment it copies the spool directory as the kill
// leaves it (checkpoint not moved), and from then on no insert of that
// process reaches ClickHouse.
type killConn struct {
	driver.Conn
	dir, copy string
	dead      atomic.Bool
	copyErr   error
}

var errKilled = errors.New("killed (test)")

func (c *killConn) PrepareBatch(ctx context.Context, q string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	if c.dead.Load() {
		return nil, errKilled
	}
	b, err := c.Conn.PrepareBatch(ctx, q, opts...)
	if err != nil {
		return nil, err
	}
	return &killBatch{Batch: b, c: c}, nil
}

type killBatch struct {
	driver.Batch
	c *killConn
}

func (b *killBatch) Send() error {
	if err := b.Batch.Send(); err != nil {
		return err
	}
	b.c.copyErr = copySpool(b.c.dir, b.c.copy)
	b.c.dead.Store(true)
	return errKilled
}

// copySpool copies the spool's regular files (segments, checkpoint, id).
func copySpool(from, to string) error {
	ents, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o640); err != nil {
			return err
		}
	}
	return nil
}
