package schema_test

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"turf/internal/chtest"
)

// TestCancelRightAfterSend pins what turf relies on everywhere it inserts:
// a batch's context may be cancelled as soon as Send returns (defer cancel())
// and the pooled connection stays usable. clickhouse-go before v2.51.0 could
// close the connection from its context watchdog after Send had returned it
// to the pool (clickhouse-go PR 2032), and the next statement on it failed
// with "use of closed network connection": the flake seen in the query and
// dashboard tests.
func TestCancelRightAfterSend(t *testing.T) {
	db := chtest.New(t)
	ctx := context.Background()
	if err := db.Conn.Exec(ctx, "CREATE TABLE "+db.Name+".cancel_probe (x UInt64) ENGINE = Memory"); err != nil {
		t.Fatal(err)
	}
	// One connection, so every statement reuses the one the batch released.
	// Not db.Conn: the modern leg's mirror would replay each insert on 26.x.
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{chtest.Server(t)}, MaxOpenConns: 1, MaxIdleConns: 1, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const rounds = 300
	for i := range rounds {
		bctx, cancel := context.WithCancel(ctx)
		b, err := conn.PrepareBatch(bctx, "INSERT INTO "+db.Name+".cancel_probe (x)")
		if err != nil {
			cancel()
			t.Fatalf("round %d: prepare: %v", i, err)
		}
		if err := b.Append(uint64(i)); err != nil {
			cancel()
			t.Fatalf("round %d: append: %v", i, err)
		}
		err = b.Send()
		cancel()
		if err != nil {
			t.Fatalf("round %d: send: %v", i, err)
		}
		var one uint8
		if err := conn.QueryRow(ctx, "SELECT toUInt8(1)").Scan(&one); err != nil || one != 1 {
			t.Fatalf("round %d: the statement after a batch whose context was cancelled right after Send: %v (got %d)", i, err, one)
		}
	}
	// Counted on this connection: its inserts bypass the modern leg's mirror.
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db.Name+".cancel_probe").Scan(&n); err != nil || n != rounds {
		t.Fatalf("stored %d rows (%v), want %d", n, err, rounds)
	}
}
