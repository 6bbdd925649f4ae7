package sink

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/VictoriaMetrics/metrics"

	"turf/internal/chtest"
)

// killConn stands for a turf process killed with SIGKILL in its first
// insert: at that moment it copies the spool directory as the kill leaves
// it (the in-flight note written, the checkpoint not moved), after the
// rows landed or before they were sent, and from then on the process is
// gone: no later insert reaches ClickHouse.
type killConn struct {
	driver.Conn
	dir, copy string
	afterSend bool // the insert lands before the kill
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
	if b.c.afterSend {
		if err := b.Batch.Send(); err != nil {
			return err
		}
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

// dropNote rewrites the checkpoint in the 20-byte format of before the
// in-flight note, keeping its commit position.
func dropNote(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, "checkpoint")
	b, err := os.ReadFile(path)
	if err != nil || len(b) != 40 {
		t.Fatalf("checkpoint left by the kill: %d bytes (%v), want 40 (with a note)", len(b), err)
	}
	b = binary.LittleEndian.AppendUint32(b[:16:16], crc32.Checksum(b[:16], crc32.MakeTable(crc32.Castagnoli)))
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestReplayCutsTheNotedRun: a process inserting its first run of 10 (of 30
// spooled events) is killed; the next one, on the same spool with another
// batch size, cuts the replayed head exactly as the note says, whether the
// insert had landed (it is passed over) or not (it is sent as the same run
// of 10), and stores every event once. Without the note (a checkpoint from
// before notes) the head is cut by the new batch size.
func TestReplayCutsTheNotedRun(t *testing.T) {
	for _, tc := range []struct {
		name      string
		landed    bool
		batch     int
		dropNote  bool
		wantFirst uint64 // rows in the batch of the first event
		wantSkip  uint64 // turf_events_already_stored_total of the new process
	}{
		{name: "landed, larger batches", landed: true, batch: 30, wantFirst: 10, wantSkip: 10},
		{name: "landed, smaller batches", landed: true, batch: 4, wantFirst: 10, wantSkip: 10},
		{name: "not landed, larger batches", batch: 30, wantFirst: 10},
		{name: "not landed, smaller batches", batch: 4, wantFirst: 10},
		{name: "not landed, no note", batch: 30, dropNote: true, wantFirst: 30},
		{name: "not landed, no note, smaller batches", batch: 4, dropNote: true, wantFirst: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := chtest.New(t)
			dir := t.TempDir()
			conn := &killConn{Conn: db.Conn, dir: dir, copy: t.TempDir(), afterSend: tc.landed}
			old, err := New(conn, db.Name, Config{Dir: dir, BatchSize: 10, FlushInterval: time.Hour, QueueSize: 1000, SyncInterval: 50 * time.Millisecond}, metrics.NewSet(), t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			// Spooled before the flush loop starts, so the first run is
			// cut from all 30.
			ts := time.Now().UTC()
			addN(t, old, 0, 30, ts)
			go old.Run()
			for deadline := time.Now().Add(10 * time.Second); !conn.dead.Load(); time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("no insert within 10s")
				}
			}
			if conn.copyErr != nil {
				t.Fatal(conn.copyErr)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_ = old.Close(ctx) // the "dead" process; its spool is not used again
			var want uint64
			if tc.landed {
				want = 10
			}
			checkExactly(t, db, want)
			if tc.dropNote {
				dropNote(t, conn.copy)
			}

			set := metrics.NewSet()
			s := startOn(t, db, Config{Dir: conn.copy, BatchSize: tc.batch, FlushInterval: 10 * time.Millisecond, QueueSize: 1000}, set)
			addN(t, s, 30, 35, ts)
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			checkExactly(t, db, 35)
			first := db.Count(t, fmt.Sprintf("SELECT count() FROM %s.events WHERE batch_id IN (SELECT batch_id FROM %[1]s.events WHERE pathname = '/p/0')", db.Name))
			if first != tc.wantFirst {
				t.Errorf("the replayed head was cut to %d events, want %d", first, tc.wantFirst)
			}
			if got := metric(set, "turf_events_already_stored_total"); got != tc.wantSkip {
				t.Errorf("already stored = %d, want %d", got, tc.wantSkip)
			}
			if got := metric(set, "turf_events_inserted_total"); got != 35-tc.wantSkip {
				t.Errorf("inserted = %d, want %d", got, 35-tc.wantSkip)
			}
		})
	}
}
