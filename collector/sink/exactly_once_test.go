package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/VictoriaMetrics/metrics"

	"turf/internal/chtest"
)

func TestEventRecordRoundTrip(t *testing.T) {
	full := Event{Site: "example.com", TS: time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC), Name: "Signup",
		VisitorID: 1<<63 + 5, Hostname: "example.com", Pathname: "/p/ä", ReferrerHost: "t.co", ReferrerPath: "/x",
		Source: "Twitter", Channel: "Social", UTMSource: "s", UTMMedium: "m", UTMCampaign: "c", UTMContent: "co",
		UTMTerm: "te", Country: "NL", Browser: "Firefox", BrowserVersion: "121", OS: "Linux", OSVersion: "",
		Device: "Desktop", IPPrefix: netip.MustParsePrefix("203.0.113.0/24"), PropKeys: []string{"plan", ""}, PropValues: []string{"pro", "x"},
		RevenueMicros: -1500000, RevenueCurrency: "EUR", Interactive: true,
		Region: "North Holland", City: "Amsterdam", ScrollDepth: 255, EngagementMS: 1<<32 - 1}
	for _, e := range []Event{full, {TS: time.Unix(0, 0).UTC()}, {Site: "a", TS: time.Unix(1e9, 0).UTC(), PropKeys: []string{}, PropValues: []string{}},
		{TS: time.Unix(5, 0).UTC(), IPPrefix: netip.MustParsePrefix("2001:db8:ab::/48")}} {
		rec := e.encode(nil)
		got, err := decodeEvent(rec, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(e.PropKeys) == 0 {
			e.PropKeys, e.PropValues = nil, nil // empty and nil are stored alike
		}
		if e.IPPrefix.IsValid() {
			e.ipPrefixText = e.IPPrefix.String() // what the column is made of
		}
		if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", e) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", got, e)
		}
	}
	rec := full.encode(nil)
	for cut := range len(rec) {
		if _, err := decodeEvent(rec[:cut], nil); err == nil {
			t.Fatalf("a record cut at %d of %d decoded", cut, len(rec))
		}
	}
	if _, err := decodeEvent(append(bytes.Clone(rec), 0), nil); err == nil {
		t.Fatal("trailing bytes accepted")
	}
	bad := bytes.Clone(rec)
	bad[0] = 9
	if _, err := decodeEvent(bad, nil); err == nil {
		t.Fatal("unknown version accepted")
	}
}

func metric(set *metrics.Set, name string) uint64 {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for line := range strings.Lines(b.String()) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var n uint64
			fmt.Sscan(v, &n)
			return n
		}
	}
	return 0
}

func addN(t *testing.T, s *Sink, from, to int, ts time.Time) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := s.Add(ev(i, ts)); err != nil {
			t.Fatal(err)
		}
	}
}

func checkExactly(t *testing.T, db *chtest.DB, n uint64) {
	t.Helper()
	if got := db.Count(t, "SELECT count() FROM "+db.Name+".events"); got != n {
		t.Fatalf("rows = %d, want %d", got, n)
	}
	if got := db.Count(t, "SELECT uniqExact(pathname) FROM "+db.Name+".events"); got != n {
		t.Fatalf("distinct events = %d, want %d", got, n)
	}
}

// TestReplayAfterLostCheckpoint is a kill -9 between an insert and its
// checkpoint, many times over: the next start replays records ClickHouse
// already has, with other batch boundaries (another batch size, a month
// change in the middle). Batch ids make every one land once.
func TestReplayAfterLostCheckpoint(t *testing.T) {
	db := chtest.New(t)
	dir := t.TempDir()
	s := startOn(t, db, Config{Dir: dir, BatchSize: 7, FlushInterval: time.Hour, QueueSize: 1000}, metrics.NewSet())
	endOfMonth := time.Date(2026, 4, 30, 23, 59, 0, 0, time.UTC)
	addN(t, s, 0, 50, endOfMonth)
	addN(t, s, 50, 100, endOfMonth.Add(2*time.Minute))
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkExactly(t, db, 100)

	// As if every checkpoint since the start had been lost.
	if err := os.Remove(filepath.Join(dir, "checkpoint")); err != nil {
		t.Fatal(err)
	}
	set := metrics.NewSet()
	s = startOn(t, db, Config{Dir: dir, BatchSize: 30, FlushInterval: 10 * time.Millisecond, QueueSize: 1000}, set)
	addN(t, s, 100, 110, endOfMonth.Add(3*time.Minute))
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkExactly(t, db, 110)
	if got := metric(set, "turf_events_already_stored_total"); got != 100 {
		t.Fatalf("already stored = %d, want 100", got)
	}
	if got := metric(set, "turf_events_inserted_total"); got != 10 {
		t.Fatalf("inserted = %d, want 10", got)
	}
}

// flakyConn makes Send report a failure after the server has taken the
// rows: the one case a retry would double without the batch-id check.
type flakyConn struct {
	driver.Conn
	lieAfterSend atomic.Int32 // this many Sends succeed but report an error
	failPrepare  atomic.Bool  // ClickHouse "down"
}

func (c *flakyConn) PrepareBatch(ctx context.Context, q string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	if c.failPrepare.Load() {
		return nil, errors.New("dial tcp: connection refused")
	}
	b, err := c.Conn.PrepareBatch(ctx, q, opts...)
	if err != nil {
		return nil, err
	}
	return &flakyBatch{Batch: b, c: c}, nil
}

type flakyBatch struct {
	driver.Batch
	c *flakyConn
}

func (b *flakyBatch) Send() error {
	if err := b.Batch.Send(); err != nil {
		return err
	}
	if b.c.lieAfterSend.Add(-1) >= 0 {
		return errors.New("read: connection reset by peer")
	}
	return nil
}

func TestUnknownOutcomeIsNotRetriedBlindly(t *testing.T) {
	db := chtest.New(t)
	conn := &flakyConn{Conn: db.Conn}
	conn.lieAfterSend.Store(3)
	set := metrics.NewSet()
	s, err := New(conn, db.Name, Config{Dir: t.TempDir(), BatchSize: 10, FlushInterval: time.Hour, QueueSize: 1000}, set, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	go s.Run()
	addN(t, s, 0, 45, time.Now().UTC())
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkExactly(t, db, 45)
	if got := metric(set, "turf_events_already_stored_total"); got != 30 {
		t.Fatalf("already stored = %d, want 30 (three batches of ten)", got)
	}
	if got := metric(set, "turf_insert_errors_total"); got != 3 {
		t.Fatalf("insert errors = %d, want 3", got)
	}
}

// TestOutageSpoolsAndRestartReplays: ClickHouse is unreachable for the
// whole life of one process; its shutdown deadline passes with everything
// still spooled; the next process stores it all.
func TestOutageSpoolsAndRestartReplays(t *testing.T) {
	db := chtest.New(t)
	dir := t.TempDir()
	conn := &flakyConn{Conn: db.Conn}
	conn.failPrepare.Store(true)
	s, err := New(conn, db.Name, Config{Dir: dir, BatchSize: 10, FlushInterval: 10 * time.Millisecond, QueueSize: 1000, InsertTimeout: time.Second}, metrics.NewSet(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	go s.Run()
	addN(t, s, 0, 200, time.Now().UTC())
	time.Sleep(300 * time.Millisecond)
	if status, _ := s.Health(); status != "degraded" {
		t.Fatalf("health during the outage = %s, want degraded", status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %s with a 500ms deadline", d)
	}
	checkExactly(t, db, 0)

	set := metrics.NewSet()
	s = startOn(t, db, Config{Dir: dir, BatchSize: 10, FlushInterval: 10 * time.Millisecond, QueueSize: 1000}, set)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkExactly(t, db, 200)
	if got := metric(set, "turf_events_replayed_total"); got != 200 {
		t.Fatalf("replayed = %d, want 200", got)
	}
	if status, _ := s.Health(); status != "ok" {
		t.Fatalf("health after the replay = %s", status)
	}
	s.Close(context.Background())
}

// TestPoisonBatchIsSetAside: while the table lacks a column every insert is
// refused for good; those batches go to dead/, and the ones after them are
// stored once the column is back.
func TestPoisonBatchIsSetAside(t *testing.T) {
	db := chtest.New(t)
	dir := t.TempDir()
	set := metrics.NewSet()
	s := startOn(t, db, Config{Dir: dir, BatchSize: 5, FlushInterval: 10 * time.Millisecond, QueueSize: 1000}, set)
	defer s.Close(context.Background())
	ctx := context.Background()
	if err := db.Conn.Exec(ctx, "ALTER TABLE "+db.Name+".events DROP COLUMN revenue_currency"); err != nil {
		t.Fatal(err)
	}
	addN(t, s, 0, 10, time.Now().UTC())
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := metric(set, "turf_events_dead_lettered_total"); got != 10 {
		t.Fatalf("dead-lettered = %d, want 10", got)
	}
	notes, _ := filepath.Glob(filepath.Join(dir, "dead", "*.txt"))
	if len(notes) != 2 {
		t.Fatalf("%d dead-letter notes, want 2", len(notes))
	}
	note, _ := os.ReadFile(notes[0])
	if !strings.Contains(string(note), "revenue_currency") {
		t.Fatalf("dead-letter note lacks the reason: %s", note)
	}
	if err := db.Conn.Exec(ctx, "ALTER TABLE "+db.Name+".events ADD COLUMN revenue_currency String AFTER revenue_micros"); err != nil {
		t.Fatal(err)
	}
	addN(t, s, 10, 20, time.Now().UTC())
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	checkExactly(t, db, 10)
}
